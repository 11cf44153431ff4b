"""Inputs of the four notebooks: the pipeline's ``results/`` files, or a tiny real demo set.

The notebooks read what the pipeline writes (``results/instances/{model}/{norm}/{image}.jsonl``,
``results/certify/{model}.csv``, ``results/tables/accuracy.csv``). Run with their default
parameters (``pytest --nbval-lax notebooks``, a fresh clone without ``results/``), they instead
call :func:`experiment_inputs` with ``build_demo=True`` and a cache folder (``results/demo``):
the missing files are then *computed* there, in the same layout, by the same package functions
the pipeline uses — tiny models trained for an epoch or two on a few hundred ``mnist5k`` digits
(:func:`paper_repro.train.train_model`), :func:`~paper_repro.experiments.minimal_runs.run_image`
with a short per-instance timeout, and
:func:`~paper_repro.experiments.certify_runs.certify_split` on a few test images. Nothing is
made up; the numbers are just those of undertrained models and a small sample.

Concurrent notebooks (``pytest -n 2``) share the cache through a file lock. The cache records the
sha256 of the package's sources (:func:`paper_repro.provenance.source_sha256`) and is rebuilt from
scratch when they change, so a notebook never shows numbers of older code.
"""

from __future__ import annotations

import copy
import fcntl
import json
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from paper_repro.config import load_config, resolve_path
from paper_repro.errors import PaperReproError
from paper_repro.provenance import source_sha256

DEMO_DIR = "results/demo"
"""Default cache folder of the demo set, relative to the repository root."""

MARKER = "DEMO.json"
"""File in a demo folder that records how its contents were made (settings, timings)."""


@dataclass(frozen=True)
class DemoSettings:
    """How the demo set is made (small enough for ≤ ~1 min per notebook on one core).

    Attributes:
        n_train: mnist5k training digits used to train each model.
        vanilla_epochs: epochs of plain training.
        adv_epochs: epochs of each adversarial stage (pgd, alp), starting from the vanilla model.
        n_eval: test images of the accuracy table (clean, FGSM(0.2), PGD(0.1)).
        n_certify: test images certified per model (Wong–Kolter radii).
        timeout: seconds per (image, target) instance of the exact search.
        tolerance: ``upper − lower`` at which an instance counts as optimal (distance units).
        cw_linf_steps, cw_l1_steps, cw_l1_search: Carlini–Wagner effort (the search's start).
        fgsm_search_steps: binary-search steps of the closest-FGSM adversary.
    """

    n_train: int = 2000
    vanilla_epochs: int = 6
    adv_epochs: int = 2
    n_eval: int = 500
    n_certify: int = 12
    timeout: float = 1.0
    tolerance: float = 1e-3
    cw_linf_steps: int = 60
    cw_l1_steps: int = 100
    cw_l1_search: int = 4
    fgsm_search_steps: int = 10

    def overlay(self) -> dict[str, Any]:
        """Config overrides (``training``, ``experiments``) giving these settings."""
        e = self.adv_epochs
        return {
            "training": {
                "threads": 1,
                "vanilla": {"epochs": self.vanilla_epochs},
                "pgd": {"epochs": e, "ramp_epochs": e},
                "alp": {
                    "stages": [
                        {"eps": 0.3, "epochs": e, "ramp_epochs": e},
                        {"eps": 0.1, "epochs": e},
                    ]
                },
            },
            "experiments": {
                "timeout": self.timeout,
                "tolerance": self.tolerance,
                "cw_linf": {"steps": self.cw_linf_steps},
                "cw_l1": {"steps": self.cw_l1_steps, "binary_search_steps": self.cw_l1_search},
                "closest_fgsm": {"search_steps": self.fgsm_search_steps},
                "certify": {"n_test": self.n_certify},
            },
        }


@dataclass(frozen=True)
class ExperimentInputs:
    """Where a notebook's inputs are (pipeline layout under ``results_dir``).

    Attributes:
        results_dir: absolute folder (``results`` or a demo cache).
        models: model names ``{arch}_{method}``.
        norms: ``linf`` / ``l1``.
        images: MNIST test indices of the instance files.
        demo: whether the folder is a demo set built by :func:`make_demo_set`.
        info: the demo marker's contents (settings, seconds), empty for pipeline results.
        studies: the pipeline's study files (``instances/{study}/{model}/{norm}/{shard}.jsonl``,
            absolute); when given they replace the per-image layout.
    """

    results_dir: Path
    models: tuple[str, ...]
    norms: tuple[str, ...]
    images: tuple[int, ...]
    demo: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    studies: tuple[Path, ...] = ()

    def model_file(self, model: str) -> Path:
        return self.results_dir / "models" / f"{model}.pt"

    def instance_files(
        self, models: Sequence[str] | None = None, norms: Sequence[str] | None = None
    ) -> list[Path]:
        """``instances/{model}/{norm}/{image}.jsonl`` for the given (default: all) models/norms;
        the study files of those models and norms when the inputs are study files."""
        if self.studies:
            ms, ns = set(models or self.models), set(norms or self.norms)
            return [p for p in self.studies if p.parent.parent.name in ms and p.parent.name in ns]
        return [
            self.results_dir / "instances" / m / n / f"{i}.jsonl"
            for m in (models or self.models)
            for n in (norms or self.norms)
            for i in self.images
        ]

    def certify_files(self, models: Sequence[str] | None = None) -> list[Path]:
        return [self.results_dir / "certify" / f"{m}.csv" for m in (models or self.models)]

    @property
    def accuracy(self) -> Path:
        return self.results_dir / "tables" / "accuracy.csv"


def resolve_dir(path: str | Path) -> Path:
    """A folder given relative to the repository root (or absolute) → absolute path."""
    return resolve_path(path) if not Path(path).is_absolute() else Path(path)


def experiment_inputs(
    results_dir: str | Path,
    models: Sequence[str],
    norms: Sequence[str],
    images: Sequence[int],
    *,
    need: Sequence[str] = ("instances", "certify", "accuracy"),
    build_demo: bool = False,
    settings: DemoSettings | None = None,
    studies: Sequence[str | Path] | None = None,
) -> ExperimentInputs:
    """The inputs a notebook reads, checked to exist (built first when ``build_demo``).

    Args:
        results_dir: folder in the pipeline layout, relative to the repo root or absolute.
        models, norms, images: what the notebook reads (instance files are per model × norm ×
            image; certify files per model).
        need: which kinds of input to check: ``instances``, ``certify``, ``accuracy``.
        build_demo: compute the missing files in ``results_dir`` with :func:`make_demo_set`.
        settings: demo settings (default :class:`DemoSettings`).
        studies: the pipeline's study files to read instead of per-image files (``images`` is
            then ignored); relative paths are resolved under ``results_dir``'s parent.

    Raises:
        PaperReproError: unknown ``need`` entries, empty selections, or (without
            ``build_demo``) missing files — the message names the Snakemake target to build.
    """
    unknown = set(need) - {"instances", "certify", "accuracy"}
    if unknown:
        raise PaperReproError(f"unknown input kinds {sorted(unknown)}")
    if not models or not norms or not (images or studies):
        raise PaperReproError("need at least one model, one norm and one image")
    for n in norms:
        if n not in ("linf", "l1"):
            raise PaperReproError(f"unknown norm {n!r}: expected linf or l1")
    root = resolve_dir(results_dir)
    inputs = ExperimentInputs(
        root,
        tuple(models),
        tuple(norms),
        tuple(int(i) for i in images or ()),
        studies=tuple(p if Path(p).is_absolute() else root.parent / p for p in studies or ()),
    )
    missing = _missing(inputs, need)
    if build_demo and (missing or _stale(inputs.results_dir)):
        make_demo_set(inputs, need, settings or DemoSettings())
        missing = _missing(inputs, need)
    if missing:
        raise PaperReproError(
            f"{len(missing)} input file(s) missing, e.g. {missing[0]}: run the pipeline first "
            f"(snakemake --cores 2 {missing[0]}) or pass the demo parameters"
        )
    marker = inputs.results_dir / MARKER
    if marker.is_file():
        info = json.loads(marker.read_text())
        return ExperimentInputs(
            **{**asdict(inputs), "demo": True, "info": info, "studies": inputs.studies}
        )
    return inputs


def _stale(folder: Path) -> bool:
    """Whether ``folder`` is a demo set made by other package code (its marker's ``code``)."""
    marker = folder / MARKER
    if not marker.is_file():
        return False
    return json.loads(marker.read_text()).get("code") != source_sha256()


def _wipe(folder: Path) -> None:
    """Delete a demo folder's contents (not its lock); only called on folders with a marker."""
    for child in folder.iterdir():
        if child.name == ".lock":
            continue
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def _missing(inputs: ExperimentInputs, need: Sequence[str]) -> list[Path]:
    paths: list[Path] = []
    if "instances" in need:
        paths += inputs.instance_files()
    if "certify" in need:
        paths += inputs.certify_files()
    missing = [p for p in paths if not p.is_file()]
    if "accuracy" in need and not _has_rows(inputs.accuracy, inputs.models):
        missing.append(inputs.accuracy)
    return missing


def _has_rows(table: Path, models: Sequence[str]) -> bool:
    """Whether the accuracy table exists and has a row for every model."""
    if not table.is_file():
        return False
    import pandas as pd

    return set(models) <= set(pd.read_csv(table)["model"])


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def demo_config(settings: DemoSettings) -> dict[str, Any]:
    """The repository config with the demo overrides (validated)."""
    from paper_repro.config import merge, validate

    return validate(merge(load_config(), settings.overlay()))


def make_demo_set(
    inputs: ExperimentInputs, need: Sequence[str], settings: DemoSettings
) -> dict[str, float]:
    """Compute the missing demo files of ``inputs`` (models first); return seconds per step.

    Refuses to write into a folder holding pipeline results (no demo marker but a ``models``
    subfolder), so a demo run never mixes with real results.
    """
    root = inputs.results_dir
    if (root / "models").is_dir() and not (root / MARKER).is_file():
        raise PaperReproError(f"{root} holds pipeline results, not a demo set: not writing there")
    torch.set_num_threads(1)
    cfg = demo_config(settings)
    timings: dict[str, float] = {}
    with _locked(root):
        marker = root / MARKER
        info = json.loads(marker.read_text()) if marker.is_file() else {}
        code = source_sha256()
        if info and info.get("code") != code:  # made by other code: rebuild from scratch
            _wipe(root)
            info = {}
        if info and info.get("settings") != asdict(settings):
            raise PaperReproError(
                f"{root} was built with other demo settings: delete the folder to rebuild"
            )
        for m in inputs.models:
            t0 = time.perf_counter()
            if not (root / "models" / f"{m}.pt").is_file():
                _ensure_model(root, m, cfg, settings)
                timings[f"model {m}"] = time.perf_counter() - t0
        split = test_split(cfg)
        if "accuracy" in need and not _has_rows(inputs.accuracy, inputs.models):
            t0 = time.perf_counter()
            _accuracy_table(inputs, cfg, split.head(settings.n_eval))
            timings["accuracy"] = time.perf_counter() - t0
        if "certify" in need:
            for m, out in zip(inputs.models, inputs.certify_files(), strict=True):
                if not out.is_file():
                    t0 = time.perf_counter()
                    _certify(inputs.model_file(m), out, cfg, split)
                    timings[f"certify {m}"] = time.perf_counter() - t0
        if "instances" in need:
            for m in inputs.models:
                for n in inputs.norms:
                    for i, out in zip(inputs.images, inputs.instance_files([m], [n]), strict=True):
                        if not out.is_file():
                            t0 = time.perf_counter()
                            _instances(inputs.model_file(m), m, n, i, out, cfg, split)
                            timings[f"instances {m} {n} {i}"] = time.perf_counter() - t0
        seconds = dict(info.get("seconds", {}))
        seconds.update(timings)
        marker.write_text(
            json.dumps({"settings": asdict(settings), "code": code, "seconds": seconds}, indent=1)
        )
    return timings


def test_split(cfg: dict[str, Any]) -> Any:
    """The evaluation split (:class:`paper_repro.data.Split`, ``[N, 784]``) a config names —
    the split whose indices the instance files' ``image`` fields refer to. Never downloads."""
    from paper_repro import data

    d = cfg["data"]
    return data.load_test(
        d["test_source"],
        data.config_dir(d),
        download=False,
        holdout=d["mnist5k_holdout"],
        seed=cfg["seed"],
    )


def _ensure_model(root: Path, name: str, cfg: dict[str, Any], s: DemoSettings) -> Path:
    """Train ``{arch}_{method}`` (its vanilla init first) on ``s.n_train`` digits, if missing."""
    from paper_repro import data, models, provenance
    from paper_repro.train import TrainOptions, train_model

    out = root / "models" / f"{name}.pt"
    if out.is_file():
        return out
    arch, _, method = name.partition("_")
    hidden = models.parse_arch(arch)
    options = TrainOptions.from_config(method, cfg["training"])
    init = None
    if options.init_from_vanilla:
        init, _ = models.load_model(_ensure_model(root, f"{arch}_vanilla", cfg, s))
    d = cfg["data"]
    split = data.load_train(
        d["train_source"],
        data.config_dir(d),
        download=False,
        holdout=d["mnist5k_holdout"],
        seed=cfg["seed"],
    ).head(s.n_train)
    model, info = train_model(hidden, options, split, cfg["seed"], init)
    meta = {
        "arch": arch,
        "method": options.method.value,
        "seed": cfg["seed"],
        "train_source": f"{split.name}[:{len(split)}]",
        "train_sha256": split.sha256,
        "demo": True,
        **info,
        **provenance.provenance(cfg),
    }
    models.save_model(model, out, meta)
    return out


def _accuracy_table(inputs: ExperimentInputs, cfg: dict[str, Any], split) -> None:
    from paper_repro import models, provenance
    from paper_repro.attacks.gradient import PGD
    from paper_repro.evaluate import evaluate_model, write_table

    ev = cfg["evaluation"]
    pgd = PGD(ev["pgd"]["eps"], ev["pgd"]["steps"], ev["pgd"]["step_size"])
    rows = []
    for m in inputs.models:
        cached = inputs.results_dir / "eval" / f"{m}.json"
        if cached.is_file():
            rows.append(json.loads(cached.read_text()))
            continue
        path = inputs.model_file(m)
        model, meta = models.load_model(path)
        row = evaluate_model(model, split, ev["fgsm_eps"], pgd, cfg["seed"])
        row.update(
            model=m,
            arch=meta.get("arch"),
            method=meta.get("method"),
            train_source=meta.get("train_source"),
            test_source=f"{split.name}[:{len(split)}]",
            train_seconds=meta.get("train_seconds"),
            onnx_clean_acc=None,
            model_sha256=provenance.model_sha256(path),
        )
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(row))
        rows.append(row)
    others = inputs.results_dir / "eval"
    done = {r["model"] for r in rows}
    rows += [json.loads(p.read_text()) for p in sorted(others.glob("*.json")) if p.stem not in done]
    write_table(rows, inputs.accuracy)


def _certify(model_path: Path, out: Path, cfg: dict[str, Any], split) -> None:
    from paper_repro.experiments.certify_runs import CertifySettings, certify_split
    from paper_repro.network import load_network

    c, pgd = cfg["experiments"]["certify"], cfg["evaluation"]["pgd"]
    settings = CertifySettings(
        tuple(c["eps"]), c["radius_tol"], pgd["steps"], pgd["step_size"], cfg["seed"]
    )
    part = split.head(c["n_test"])
    table = certify_split(load_network(model_path), part, settings)
    table.insert(0, "model", model_path.stem)
    table["test_source"] = part.name
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)


def _instances(
    model_path: Path, name: str, norm: str, image: int, out: Path, cfg: dict[str, Any], split
) -> None:
    from paper_repro.experiments.minimal_runs import RunSettings, finish, run_image
    from paper_repro.network import load_network
    from paper_repro.provenance import model_sha256, provenance

    if not 0 <= image < len(split):
        raise PaperReproError(f"image {image} is not an index of {split.name}")
    prov = {
        **provenance(copy.deepcopy(cfg)),
        "model_sha256": model_sha256(model_path),
        "test_split": split.name,
    }
    checkpoint = out.with_suffix(".partial")
    recs = run_image(
        load_network(model_path),
        name,
        split.images[image].astype("float64"),
        int(split.labels[image]),
        image,
        norm,
        RunSettings.from_config(cfg),
        checkpoint,
        prov,
    )
    finish(recs, out)
    checkpoint.unlink()
