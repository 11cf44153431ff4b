"""Per-model certification job (Wong & Kolter, Sec. 3.5 and Table 1): for each test image, the
largest L∞ radius certified by the dual network and by CROWN, clean / FGSM / PGD correctness and
the certificate at each ε of the robust error bound. One row per image, written as CSV."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from paper_repro.attacks.gradient import FGSM, PGD
from paper_repro.bounds.radius import BoundMethod, RadiusOptions, certified_radius, is_certified
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


def certify_split(
    network: ReluNetwork, data: Split, settings: CertifySettings, progress: bool = False
) -> pd.DataFrame:
    """Certified radii and per-ε correctness for every image of ``data`` (``[N, 784]``).

    Columns: ``index, label, prediction, correct, radius_dual, radius_crown`` and, for each ε,
    ``fgsm_correct@ε, pgd_correct@ε, certified@ε`` (dual-network certificate of the true label).
    """
    model = network_to_torch(network, torch.float32)
    x = torch.from_numpy(data.images)
    y = torch.from_numpy(data.labels)
    xs = data.images.astype(np.float64)
    pred = np.argmax(network.forward(xs), axis=1)
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
    dual = RadiusOptions(BoundMethod.DUAL, tol=settings.radius_tol)
    crown = RadiusOptions(BoundMethod.CROWN, tol=settings.radius_tol)
    rd, rc = [], []
    cert: dict[float, list[bool]] = {eps: [] for eps in settings.eps}
    for i in tqdm(range(len(data)), desc="certify", disable=not progress):
        label = int(data.labels[i])
        ok = bool(out.at[i, "correct"])
        rd.append(certified_radius(network, xs[i], label, dual).radius if ok else 0.0)
        rc.append(certified_radius(network, xs[i], label, crown).radius if ok else 0.0)
        for eps in settings.eps:
            cert[eps].append(ok and is_certified(network, xs[i], label, eps, dual))
    out["radius_dual"] = rd
    out["radius_crown"] = rc
    for eps in settings.eps:
        out[f"certified@{eps:g}"] = cert[eps]
    return out
