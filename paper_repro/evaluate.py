"""Accuracy of a trained model: clean, FGSM (ε = 0.2, Pahlavan et al. Sec. 4.1) and PGD, on the
test split; the same clean accuracy recomputed through the ONNX export (onnxruntime).
One row per model goes into ``results/tables/accuracy.csv``."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import torch

from paper_repro.attacks.gradient import FGSM, PGD
from paper_repro.data import Split
from paper_repro.errors import PaperReproError
from paper_repro.models import MLP

TABLE_COLUMNS = (
    "model",
    "arch",
    "method",
    "train_source",
    "test_source",
    "n_test",
    "clean_acc",
    "onnx_clean_acc",
    "fgsm_eps",
    "fgsm_acc",
    "pgd_eps",
    "pgd_acc",
    "train_seconds",
    "model_sha256",
)


def clean_accuracy(model: MLP, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of ``x`` (``[B, 784]``) that ``model`` classifies as ``y`` (``[B]``)."""
    with torch.no_grad():
        return float((model(x).argmax(dim=1) == y).float().mean().item())


def onnx_accuracy(onnx_path: str | Path, data: Split, batch: int = 2048) -> float:
    """Clean accuracy of an ONNX export on ``data`` (input ``[N, 784]`` float32)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    preds = [
        sess.run(None, {name: data.images[i : i + batch]})[0].argmax(axis=1)
        for i in range(0, len(data), batch)
    ]
    return float((np.concatenate(preds) == data.labels).mean())


def evaluate_model(
    model: MLP, data: Split, fgsm_eps: float, pgd: PGD, seed: int, batch: int = 1000
) -> dict[str, Any]:
    """Clean, FGSM and PGD accuracy of ``model`` on ``data`` (``[N, 784]``), in [0, 1]."""
    if len(data) == 0:
        raise PaperReproError("the test split is empty")
    gen = torch.Generator().manual_seed(seed)
    fgsm = FGSM(fgsm_eps)
    clean = adv_f = adv_p = 0.0
    for i in range(0, len(data), batch):
        x = torch.from_numpy(data.images[i : i + batch])
        y = torch.from_numpy(data.labels[i : i + batch])
        w = len(y) / len(data)
        clean += w * clean_accuracy(model, x, y)
        adv_f += w * clean_accuracy(model, fgsm(model, x, y), y)
        adv_p += w * clean_accuracy(model, pgd(model, x, y, generator=gen), y)
    return {
        "n_test": len(data),
        "clean_acc": clean,
        "fgsm_eps": fgsm_eps,
        "fgsm_acc": adv_f,
        "pgd_eps": pgd.eps,
        "pgd_acc": adv_p,
    }


def write_table(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Write accuracy rows (see :data:`TABLE_COLUMNS`) as CSV, sorted by model name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=TABLE_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in sorted(rows, key=lambda r: r["model"]):
            writer.writerow(
                {k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()}
            )
