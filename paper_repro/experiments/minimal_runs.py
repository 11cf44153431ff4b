"""Per-image experiment jobs: for one model, norm and MNIST test image, every target class gets a
Carlini–Wagner start (Carlini et al. Sec. 3), Pahlavan et al.'s closest-FGSM adversary (L∞) and a
certified minimal adversarial example from the exact engine; one JSONL record per target.

Records go to a checkpoint file as each target finishes, so an interrupted job resumes without
redoing finished targets (nothing finished is lost); the job's declared output is written last.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from paper_repro.attacks.carlini_wagner import CarliniWagnerL1, CarliniWagnerLinf
from paper_repro.attacks.closest_fgsm import ClosestFGSM
from paper_repro.errors import PaperReproError
from paper_repro.exact.search import Backend, Protocol, SolveOptions, minimal_adversarial
from paper_repro.exact.witnesses import records
from paper_repro.experiments.attack_starts import Starts, attack_images
from paper_repro.experiments.carlini_tables import switched_relus
from paper_repro.experiments.instance_record import InstanceInfo, InstanceRecord
from paper_repro.experiments.studies import Study
from paper_repro.models import MLP
from paper_repro.network import ReluNetwork
from paper_repro.query import Norm, Query


@dataclass(frozen=True)
class RunSettings:
    """How each instance is solved (the ``experiments`` config section).

    Attributes:
        backend: the complete engine (``bab`` by default).
        solve: tolerance, precision, protocol, timeout per instance.
        cw_linf, cw_l1: the Carlini–Wagner attacks giving the initial ``x′_init``.
        closest_fgsm: Pahlavan et al.'s closest iterated-FGSM search (L∞ runs only).
        untargeted: one untargeted query per image (key ``target`` = ``None``; its attack
            distances are the closest over the 9 targets) instead of one per target.
    """

    backend: Backend
    solve: SolveOptions
    cw_linf: CarliniWagnerLinf
    cw_l1: CarliniWagnerL1
    closest_fgsm: ClosestFGSM

    untargeted: bool = False

    @classmethod
    def from_config(cls, cfg: dict[str, Any], study: Study | None = None) -> RunSettings:
        """Settings from the validated config (``experiments`` and ``seed``); a ``study`` brings
        its own timeout, ``max_distance`` and targeted/untargeted queries."""
        ex = cfg["experiments"]
        solve = SolveOptions(
            tolerance=ex["tolerance"],
            precision=ex["precision"],
            protocol=Protocol(ex["protocol"]),
            timeout=study.timeout if study is not None else ex["timeout"],
            seed=cfg["seed"],
            max_distance=study.max_distance if study is not None else None,
        )
        return cls(
            backend=Backend(ex["backend"]),
            solve=solve,
            cw_linf=CarliniWagnerLinf(**ex["cw_linf"]),
            cw_l1=CarliniWagnerL1(**ex["cw_l1"]),
            closest_fgsm=ClosestFGSM(**ex["closest_fgsm"], seed=cfg["seed"]),
            untargeted=study is not None and study.untargeted,
        )


def run_image(
    network: ReluNetwork,
    model_name: str,
    x: np.ndarray,
    label: int,
    image: int,
    norm: Norm,
    settings: RunSettings,
    checkpoint: str | Path,
    provenance: dict[str, Any],
    progress: bool = False,
    starts: Callable[[], Starts] | None = None,
) -> list[dict[str, Any]]:
    """Solve every target ``t ≠ label`` (or, with ``settings.untargeted``, the one untargeted
    query) for one image; return the records (checkpointed).

    Args:
        network: the classifier (float64 view).
        model_name: e.g. ``"24x24_pgd"``, stored in each record's key.
        x: the image, ``[784]`` in [0, 1].
        label: its true class.
        image: its MNIST test index (key field).
        norm: L∞ or L1.
        settings: see :class:`RunSettings`.
        checkpoint: JSONL file that keeps finished targets across interruptions.
        provenance: versions, config, model hash — stored with every record.
        progress: a progress bar over the targets.
        starts: the image's attacks towards all 9 classes (e.g. from a
            :class:`~paper_repro.experiments.attack_starts.StartCache` batching a job's images);
            called only if some target is left to solve. Default: attack this image alone.
    """
    norm = Norm.parse(norm)
    model = torch_model(network)
    classes = [t for t in range(network.num_classes) if t != label]
    targets: list[int | None] = [None] if settings.untargeted else list(classes)
    # Checkpointed records are reused only if made by the same network, input and settings.
    fingerprint = hashlib.sha256(
        f"{network.digest()}|{np.asarray(x, np.float64).tobytes().hex()}|{settings!r}".encode()
    ).hexdigest()
    provenance = {**provenance, "run_fingerprint": fingerprint}

    def reusable() -> dict[tuple, dict[str, Any]]:
        return {
            k: r
            for k, r in records.load_finished(checkpoint).items()
            if r.get("provenance", {}).get("run_fingerprint") == fingerprint
        }

    done = reusable()

    def key(t: int | None) -> dict[str, Any]:
        target = None if t is None else int(t)
        return {"model": model_name, "norm": str(norm), "image": int(image), "target": target}

    todo = [t for t in targets if records.key_tuple(key(t)) not in done]
    if todo:
        pred = int(np.argmax(network.forward(x)))
        if starts is None:
            found_starts = attack_images(
                model, x[None], [label], network.num_classes, norm, settings
            )[0]
        else:
            found_starts = starts()
        if settings.untargeted:  # one query: start from the closest of the 9 targeted attacks
            cw_adv, cw_dist = _closest(found_starts.cw_adv, found_starts.cw_dist)
            if norm is Norm.LINF:
                fg_adv, fg_delta = _closest(found_starts.fg_adv, found_starts.fg_delta)
        else:
            mine = found_starts.rows(todo, label)
            cw_adv, cw_dist, fg_adv, fg_delta = (
                mine.cw_adv,
                mine.cw_dist,
                mine.fg_adv,
                mine.fg_delta,
            )
        bar = tqdm(todo, desc=f"{model_name} {norm} image {image}", disable=not progress)
        for i, t in enumerate(bar):
            start = cw_adv[i] if np.isfinite(cw_dist[i]) else None
            query = Query(network, x, label, t, norm)
            t0 = time.perf_counter()
            result = minimal_adversarial(query, settings.backend, settings.solve, initial=start)
            linf = norm is Norm.LINF
            found = linf and bool(np.isfinite(fg_delta[i]))
            info = InstanceInfo(
                label=int(label),
                prediction=pred,
                correct=pred == label,
                cw_distance=float(cw_dist[i]),
                cw_adv=None if start is None else start.astype(np.float32).tolist(),
                total_seconds=time.perf_counter() - t0,
                fgsm_delta=(float(fg_delta[i]) if found else float("inf")) if linf else None,
                fgsm_adv=fg_adv[i].astype(np.float32).tolist() if found else None,
                switched_relus=None
                if result.witness is None
                else int(switched_relus(network, x, result.witness)),
            )
            extra = {**result.extra, **info.as_extra()}
            result = dataclasses.replace(result, extra=extra)
            records.append_record(checkpoint, key(t), result, provenance)
        done = reusable()
    return [done[records.key_tuple(key(t))] for t in targets]


def _closest(adv: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The closest of per-target attack results (``[T, n]``, ``[T]``; ``inf`` where none) as
    one-row arrays ``[1, n]``, ``[1]``: an untargeted query's start."""
    best = int(np.argmin(np.where(np.isfinite(dist), dist, np.inf)))
    return adv[best : best + 1], dist[best : best + 1]


def torch_model(network: ReluNetwork) -> MLP:
    from paper_repro.models import network_to_torch

    return network_to_torch(network, torch.float32)


def finish(recs: list[dict[str, Any]], out: str | Path) -> None:
    """Write the job's declared output: exactly ``recs`` (what :func:`run_image` returned, one
    record per target), atomically. The checkpoint may also hold records of earlier settings or
    repeated lines; the output never does."""
    keys = [records.key_tuple(r["key"]) for r in recs]
    if len(set(keys)) != len(keys):
        raise PaperReproError("two records for the same instance: the run's output is not unique")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    tmp.replace(out)


def load_records(paths: Iterable[str | Path]) -> pd.DataFrame:
    """All instance records of the given JSONL files as one DataFrame (one row per instance).

    Columns: the key (model, norm, image, target — ``None`` for untargeted queries), the result
    fields, the engine's diagnostics and the :class:`InstanceInfo` fields (label, correct,
    cw_distance, fgsm_delta, switched_relus, …), parsed through :class:`InstanceRecord`.
    """
    rows = [
        InstanceRecord.from_json(rec).row()
        for p in paths
        for rec in records.load_finished(p).values()
    ]
    if not rows:
        raise PaperReproError("no instance records found")
    return pd.DataFrame(rows).sort_values(["model", "norm", "image", "target"], ignore_index=True)
