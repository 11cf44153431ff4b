"""Per-model certification job (Wong & Kolter, Sec. 3.5 and Table 1): for each test image, the
largest L∞ radius certified by the dual network and by CROWN, clean / FGSM / PGD correctness and
the certificate at each ε of the robust error bound. One row per image, written as CSV.

:func:`certify_split` searches the radii of all images at once in torch float64
(:mod:`paper_repro.bounds.radius_batch`) and confirms every radius and every ``certified@ε`` with
the outward-rounded numpy certificate (:func:`paper_repro.bounds.radius.is_certified`);
:func:`certify_split_per_image` is the former per-image bisection, kept as the reference."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from paper_repro.attacks.gradient import FGSM, PGD
from paper_repro.bounds.radius import BoundMethod, RadiusOptions, certified_radius, is_certified
from paper_repro.bounds.radius_batch import confirm_certified, confirm_radii
from paper_repro.data import Split
from paper_repro.models import network_to_torch
from paper_repro.network import ReluNetwork


@dataclass(frozen=True)
class CertifySettings:
    """Attributes: eps — radii of the Table 1 rows; radius_tol — bisection width; pgd_steps and
    pgd_step_size — the PGD attack whose error is reported beside the bound; seed."""

    eps: tuple[float, ...]
    radius_tol: float = 1e-4
    pgd_steps: int = 40
    pgd_step_size: float = 0.01
    seed: int = 0


def _attack_table(network: ReluNetwork, data: Split, settings: CertifySettings) -> pd.DataFrame:
    """``index, label, prediction, correct`` and ``fgsm_correct@ε, pgd_correct@ε`` per ε (the
    attacks run on the whole split at once in float32: ``[N, 784]`` tensors, a few MB each)."""
    model = network_to_torch(network, torch.float32)
    x = torch.from_numpy(data.images)
    y = torch.from_numpy(data.labels)
    pred = np.argmax(network.forward(data.images.astype(np.float64)), axis=1)
    out = pd.DataFrame(
        {
            "index": np.arange(len(data)),
            "label": data.labels,
            "prediction": pred,
            "correct": pred == data.labels,
        }
    )
    gen = torch.Generator().manual_seed(settings.seed)
    for eps in settings.eps:
        x_fgsm = FGSM(eps)(model, x, y)
        x_pgd = PGD(eps, settings.pgd_steps, settings.pgd_step_size)(model, x, y, generator=gen)
        with torch.no_grad():
            fg = model(x_fgsm).argmax(1).numpy()
            pg = model(x_pgd).argmax(1).numpy()
        out[f"fgsm_correct@{eps:g}"] = fg == data.labels
        out[f"pgd_correct@{eps:g}"] = pg == data.labels
    return out


def certify_split(
    network: ReluNetwork, data: Split, settings: CertifySettings, progress: bool = False
) -> pd.DataFrame:
    """Certified radii and per-ε correctness for every image of ``data`` (``[N, 784]``).

    Columns: ``index, label, prediction, correct, radius_dual, radius_crown`` and, for each ε,
    ``fgsm_correct@ε, pgd_correct@ε, certified@ε`` (dual-network certificate of the true label).
    Misclassified images get radius 0 and no certificate. Every positive radius and every true
    ``certified@ε`` passed :func:`~paper_repro.bounds.radius.is_certified`; the counts (torch
    evaluations, numpy calls, rejected proposals, seconds) are in ``.attrs["certify_stats"]``.
    """
    steps = tqdm(total=3 + len(settings.eps), desc="certify", disable=not progress)
    clock = time.perf_counter()
    out = _attack_table(network, data, settings)
    stats: dict[str, Any] = {"attack_seconds": time.perf_counter() - clock}
    steps.update()
    ok = out["correct"].to_numpy()
    idx = np.flatnonzero(ok)
    xs, labels = data.images[idx].astype(np.float64), data.labels[idx]
    dual = RadiusOptions(BoundMethod.DUAL, tol=settings.radius_tol)
    crown = RadiusOptions(BoundMethod.CROWN, tol=settings.radius_tol)
    clock = time.perf_counter()
    rd = confirm_radii(network, xs, labels, dual)
    steps.update()
    rc = confirm_radii(network, xs, labels, crown, guess=rd.proposed)
    steps.update()
    for name, r in (("dual", rd), ("crown", rc)):
        stats[f"{name}_evaluations"] = r.evaluations
        stats[f"{name}_numpy_calls"] = r.numpy_calls
        stats[f"{name}_corrections"] = r.corrections
        stats[f"{name}_fallbacks"] = r.fallbacks
        stats[f"{name}_torch_seconds"], stats[f"{name}_numpy_seconds"] = r.seconds
        radius = np.zeros(len(data))
        radius[idx] = r.radius
        out[f"radius_{name}"] = radius
    for eps in settings.eps:
        cert = confirm_certified(network, xs, labels, eps, dual)
        certified = np.zeros(len(data), dtype=bool)
        certified[idx] = cert.certified
        out[f"certified@{eps:g}"] = certified
        stats[f"certified@{eps:g}_numpy_calls"] = cert.numpy_calls
        stats[f"certified@{eps:g}_corrections"] = cert.corrections
        stats[f"certified@{eps:g}_torch_seconds"] = cert.seconds[0]
        stats[f"certified@{eps:g}_numpy_seconds"] = cert.seconds[1]
        steps.update()
    steps.close()
    stats["bound_seconds"] = time.perf_counter() - clock
    out.attrs["certify_stats"] = stats
    return out


def certify_split_per_image(
    network: ReluNetwork, data: Split, settings: CertifySettings, progress: bool = False
) -> pd.DataFrame:
    """The same table as :func:`certify_split` by per-image numpy bisection
    (:func:`~paper_repro.bounds.radius.certified_radius`, ~1–3 ms per bound call): the reference
    that the batched path is tested and benchmarked against."""
    clock = time.perf_counter()
    out = _attack_table(network, data, settings)
    stats: dict[str, Any] = {"attack_seconds": time.perf_counter() - clock}
    xs = data.images.astype(np.float64)
    dual = RadiusOptions(BoundMethod.DUAL, tol=settings.radius_tol)
    crown = RadiusOptions(BoundMethod.CROWN, tol=settings.radius_tol)
    rd, rc = [], []
    cert: dict[float, list[bool]] = {eps: [] for eps in settings.eps}
    calls = {"dual": 0, "crown": 0, "certified": 0}
    clock = time.perf_counter()
    for i in tqdm(range(len(data)), desc="certify", disable=not progress):
        label = int(data.labels[i])
        ok = bool(out.at[i, "correct"])
        d = certified_radius(network, xs[i], label, dual) if ok else None
        c = certified_radius(network, xs[i], label, crown) if ok else None
        rd.append(0.0 if d is None else d.radius)
        rc.append(0.0 if c is None else c.radius)
        calls["dual"] += 0 if d is None else d.calls
        calls["crown"] += 0 if c is None else c.calls
        for eps in settings.eps:
            calls["certified"] += ok
            cert[eps].append(ok and is_certified(network, xs[i], label, eps, dual))
    out["radius_dual"] = rd
    out["radius_crown"] = rc
    for eps in settings.eps:
        out[f"certified@{eps:g}"] = cert[eps]
    stats.update({f"{k}_numpy_calls": v for k, v in calls.items()})
    stats["bound_seconds"] = stats["numpy_seconds"] = time.perf_counter() - clock
    out.attrs["certify_stats"] = stats
    return out
