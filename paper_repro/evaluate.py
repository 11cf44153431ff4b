"""Accuracy of a trained model: clean, FGSM (ε = 0.2, Pahlavan et al. Sec. 4.1) and PGD, on the
test split; the same clean accuracy recomputed through the ONNX export (onnxruntime); Wong &
Kolter's robust error bound (their Cor. 1 with the dual network of Eq. 6–8). One row per model
goes into ``results/tables/accuracy.csv``, with the papers' printed numbers beside ours
(:data:`PAPER_ROWS`)."""

from __future__ import annotations

import copy
import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from paper_repro.attacks.gradient import FGSM, PGD
from paper_repro.bounds.dual_torch import margin_bounds
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
    "bound_eps",
    "bound_err",
    "paper",
    "paper_clean_acc",
    "paper_fgsm_eps",
    "paper_fgsm_acc",
    "paper_pgd_acc",
    "paper_bound_err",
    "train_seconds",
    "model_sha256",
    "data_note",
)


@dataclass(frozen=True)
class PaperRow:
    """A paper's printed numbers for the network a model reproduces (``None``: not reported).

    Accuracies are fractions on the 10k MNIST test set; FGSM at ``fgsm_eps``, PGD at ε = 0.1;
    ``bound_err`` is Wong & Kolter's robust error bound at ε = 0.1.
    """

    paper: str
    clean_acc: float | None = None
    fgsm_eps: float | None = None
    fgsm_acc: float | None = None
    pgd_acc: float | None = None
    bound_err: float | None = None


_WK = PaperRow(
    "Wong & Kolter Table 1, MNIST robust (a ConvNet, not an MLP; FGSM at eps 0.1)",
    1 - 0.0180,
    0.1,
    1 - 0.0393,
    1 - 0.0411,
    0.0582,
)
PAPER_ROWS: dict[str, PaperRow] = {
    "24x24_vanilla": PaperRow("Carlini et al. Sec. 3, network N", 0.97),
    "24x24_wk": _WK,
    "50_vanilla": PaperRow("Pahlavan et al. Sec. 4.1, vanilla", 0.97, 0.2, 0.14),
    "50_alp": PaperRow("Pahlavan et al. Sec. 4.1, logit pairing", 0.965, 0.2, 0.89),
    "50_wk": _WK,
    "60x30_vanilla": PaperRow("Dathathri et al. Sec. 5", 0.97),
}
"""The papers' numbers per model name (Carlini et al.'s N̄ and the other robust MLPs have none)."""


def paper_numbers(model: str) -> dict[str, Any]:
    """The ``paper_*`` columns of the accuracy table for ``model`` (empty values if none)."""
    row = PAPER_ROWS.get(model, PaperRow(""))
    return {
        "paper": row.paper,
        "paper_clean_acc": row.clean_acc,
        "paper_fgsm_eps": row.fgsm_eps,
        "paper_fgsm_acc": row.fgsm_acc,
        "paper_pgd_acc": row.pgd_acc,
        "paper_bound_err": row.bound_err,
    }


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


def robust_error_bound(model: MLP, x: torch.Tensor, y: torch.Tensor, eps: float) -> float:
    """Wong & Kolter's robust error bound (their Cor. 1, Table 1's last column): the fraction of
    ``x`` (``[B, 784]``) for which the dual bound ``J_ε(x, g(e_y 1ᵀ − I))`` (Eq. 6, float64, no
    [0,1] clipping, as in the paper) does not prove every other logit below ``y``'s.
    Misclassified inputs always count (their margin at ``x`` itself is ≤ 0)."""
    wide = copy.deepcopy(model).double()
    with torch.no_grad():
        j = margin_bounds(wide, x.double(), y, eps)
        others = j.masked_fill(torch.nn.functional.one_hot(y, j.shape[1]).bool(), float("inf"))
        return float((others.min(dim=1).values <= 0).double().mean().item())


def evaluate_model(
    model: MLP,
    data: Split,
    fgsm_eps: float,
    pgd: PGD,
    seed: int,
    batch: int = 1000,
    bound_eps: float = 0.1,
) -> dict[str, Any]:
    """Clean, FGSM and PGD accuracy of ``model`` on ``data`` (``[N, 784]``), in [0, 1], and the
    Wong–Kolter robust error bound at ``bound_eps`` (:func:`robust_error_bound`)."""
    if len(data) == 0:
        raise PaperReproError("the test split is empty")
    gen = torch.Generator().manual_seed(seed)
    fgsm = FGSM(fgsm_eps)
    clean = adv_f = adv_p = bound = 0.0
    for i in range(0, len(data), batch):
        x = torch.from_numpy(data.images[i : i + batch])
        y = torch.from_numpy(data.labels[i : i + batch])
        w = len(y) / len(data)
        clean += w * clean_accuracy(model, x, y)
        adv_f += w * clean_accuracy(model, fgsm(model, x, y), y)
        adv_p += w * clean_accuracy(model, pgd(model, x, y, generator=gen), y)
        bound += w * robust_error_bound(model, x, y, bound_eps)
    return {
        "n_test": len(data),
        "clean_acc": clean,
        "fgsm_eps": fgsm_eps,
        "fgsm_acc": adv_f,
        "pgd_eps": pgd.eps,
        "pgd_acc": adv_p,
        "bound_eps": bound_eps,
        "bound_err": bound,
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
