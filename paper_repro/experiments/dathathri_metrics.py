"""Dathathri, Zheng, Gao & Murray: adversarial frequency and severity (Eq. 3), Table 3, Fig. 5.

``ρ(x, f, j)`` (Eq. 2) is the smallest L1 perturbation moving ``x`` to class ``j``. Units: L1 on
the [0, 1] pixel scale — "changing one pixel from black to white corresponds to an l1-norm of 1"
(Sec. 2) — so ``ρ ≤ 784``; a value above 784 almost surely means ×255 units and is rejected.
``ρ = inf`` means no adversarial example was found (for a search radius ε it means ``ρ > ε``;
frequencies for ``δ > ε`` are then lower bounds, as the paper notes for ε = 5 < δ = 10).

Targeted quantities use an ``[N, K]`` matrix ``rho[i, j]`` with the label's own column ignored
(NaN allowed there); statistics for target ``j`` run over the examples whose label is not ``j``.
The untargeted ``ρ`` is the minimum over the other classes.

Eq. 3: ``φ(f, δ, j) = P(ρ ≤ δ)`` and ``μ(f, δ, j) = E[ρ | ρ ≤ δ]``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from paper_repro.errors import PaperReproError

MAX_L1 = 784.0  # an all-black ↔ all-white change of a 28×28 image

PAPER_TABLE3A = {"baseline": 26.85, "ours": 36.55}
"""Table 3(a): untargeted frequency φ in % at δ = 5 (baseline = Bastani et al. 2016)."""
PAPER_TABLE3A_DELTA = 5.0

PAPER_TABLE3B = {"baseline": {5: 12.16, 6: 17.52}, "ours": {5: 8.35, 6: 13.82}}
"""Table 3(b): severity μ (net pixel change) at δ = 20 for target classes 5 and 6, over the
examples where the baseline succeeds with δ < 20."""
PAPER_TABLE3B_DELTA = 20.0

PAPER_TABLE3C = {
    ("baseline", 5.0): [1.8, 3.4, 6.0, 13.4, 2.9, 17.6, 2.4, 9.5, 7.2, 11.5],
    ("ours", 5.0): [2.2, 3.9, 9.6, 18.0, 5.1, 23.8, 6.6, 14.8, 11.9, 15.7],
    ("baseline", 10.0): [7.9, 7.7, 8.6, 47.0, 10.1, 42.5, 11.5, 22.6, 38.2, 23.9],
    ("ours", 10.0): [16.8, 11.1, 60.0, 63.2, 18.5, 62.8, 27.3, 40.0, 56.4, 48.8],
}
"""Table 3(c): targeted frequency φ in % per target class 0..9, at δ = 5 and δ = 10."""

PAPER_SEARCH_EPSILON = 5.0  # the L1 ball B(x, ε = 5) of their search (Sec. 2)
PAPER_EXAMPLES = 300


def check_rho(rho: np.ndarray) -> np.ndarray:
    """Validate distances: float array, non-negative or inf/NaN, at most 784 when finite.

    Raises:
        PaperReproError: empty, negative, or larger than 784 (probably ×255 units).
    """
    r = np.asarray(rho, dtype=float)
    if r.size == 0:
        raise PaperReproError("no distances given")
    finite = r[np.isfinite(r)]
    if np.any(finite < 0) or np.any(r == -np.inf):
        raise PaperReproError("L1 distances must be ≥ 0")
    if np.any(finite > MAX_L1):
        raise PaperReproError(
            f"L1 distance above {MAX_L1:g}: expected [0,1]-scale pixel units (black→white = 1), "
            "not ×255"
        )
    return r


def rho_matrix(
    df: pd.DataFrame, num_classes: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Long records → the ``[N, K]`` matrix the targeted functions take.

    Args:
        df: columns ``image``, ``label``, ``target``, ``rho`` (one row per attacked pair; a
            missing pair becomes NaN, ``rho = inf`` means none found).

    Returns:
        ``(rho [N, K], labels [N], images [N])`` with images in sorted order.
    """
    need = ["image", "label", "target", "rho"]
    if any(c not in df.columns for c in need) or len(df) == 0:
        raise PaperReproError(f"need a non-empty frame with columns {need}")
    if bool((df["target"] == df["label"]).any()):
        raise PaperReproError("a record has target == label")
    labels = df.groupby("image")["label"].agg(["first", "nunique"])
    if bool((labels["nunique"] > 1).any()):
        raise PaperReproError("an image appears with two different labels")
    wide = df.pivot(index="image", columns="target", values="rho")
    wide = wide.reindex(columns=range(num_classes))
    rho = check_rho(wide.to_numpy(dtype=float))
    return rho, labels.loc[wide.index, "first"].to_numpy(dtype=np.int64), wide.index.to_numpy()


def _check_delta(delta: float) -> float:
    if not delta >= 0:
        raise PaperReproError(f"threshold δ must be ≥ 0, got {delta}")
    return float(delta)


def frequency(rho: np.ndarray, delta: float) -> float:
    """Adversarial frequency ``φ = P(ρ ≤ δ)`` (Eq. 3) over a 1-D sample; NaNs are ignored."""
    r = check_rho(rho).ravel()
    delta = _check_delta(delta)
    r = r[~np.isnan(r)]
    if r.size == 0:
        raise PaperReproError("no distances given (all NaN)")
    return float(np.mean(r <= delta))


def severity(rho: np.ndarray, delta: float) -> float:
    """Severity ``μ = E[ρ | ρ ≤ δ]`` (Eq. 3); NaN when no example has ``ρ ≤ δ``."""
    r = check_rho(rho).ravel()
    delta = _check_delta(delta)
    hit = r[r <= delta]  # NaN compares False
    return float(hit.mean()) if hit.size else float("nan")


def _check_matrix(rho: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r = check_rho(rho)
    y = np.asarray(labels)
    if r.ndim != 2 or y.shape != (r.shape[0],):
        raise PaperReproError(f"need rho [N, K] and labels [N], got {r.shape} and {y.shape}")
    if not np.issubdtype(y.dtype, np.integer) or np.any((y < 0) | (y >= r.shape[1])):
        raise PaperReproError(f"labels must be integers in 0..{r.shape[1] - 1}")
    return r, y


def untargeted_rho(rho: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``ρ_untargeted(x) = min_{j ≠ label} ρ(x, f, j)``, shape ``[N]`` (inf if none found).

    Args:
        rho: ``[N, K]`` targeted distances; the label's column is ignored.
        labels: ``[N]`` classes of the examples.
    """
    r, y = _check_matrix(rho, labels)
    r = np.where(np.isnan(r), np.inf, r)
    r[np.arange(r.shape[0]), y] = np.inf
    return r.min(axis=1)


def targeted_column(rho: np.ndarray, labels: np.ndarray, target: int) -> np.ndarray:
    """``ρ(x, f, target)`` for the examples whose label is not ``target``."""
    r, y = _check_matrix(rho, labels)
    if not 0 <= target < r.shape[1]:
        raise PaperReproError(f"target {target} is not a class 0..{r.shape[1] - 1}")
    col = r[y != target, target]
    if col.size == 0:
        raise PaperReproError(f"every example has label {target}: no targeted attack possible")
    return col


def frequency_curve(rho: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    """φ(δ) for each δ in ``deltas`` (Fig. 5), shape like ``deltas``; non-decreasing in δ."""
    d = np.asarray(deltas, dtype=float)
    return np.array([frequency(rho, float(v)) for v in d.ravel()]).reshape(d.shape)


def figure5_curves(
    targeted: dict[str, np.ndarray],
    labels: np.ndarray,
    deltas: np.ndarray,
    targets: tuple[int, ...] = (5, 6),
) -> pd.DataFrame:
    """Fig. 5 data: targeted frequency φ(δ) per method and target class, long format with
    columns ``method``, ``target``, ``delta``, ``frequency`` (a fraction in [0, 1])."""
    d = np.asarray(deltas, dtype=float).ravel()
    rows = []
    for method, rho in targeted.items():
        for t in targets:
            phi = frequency_curve(targeted_column(rho, labels, t), d)
            rows += [
                {"method": method, "target": t, "delta": v, "frequency": f}
                for v, f in zip(d, phi, strict=True)
            ]
    return pd.DataFrame(rows)


def table3a(untargeted: dict[str, np.ndarray], delta: float = PAPER_TABLE3A_DELTA) -> pd.DataFrame:
    """Table 3(a): untargeted frequency in % per method (rows), column ``frequency_pct``."""
    rows = [
        {"method": m, "frequency_pct": 100.0 * frequency(r, delta)} for m, r in untargeted.items()
    ]
    return pd.DataFrame(rows).set_index("method")


def table3b(
    targeted: dict[str, np.ndarray],
    labels: np.ndarray,
    targets: tuple[int, ...] = (5, 6),
    delta: float = PAPER_TABLE3B_DELTA,
    reference: str | None = "baseline",
) -> pd.DataFrame:
    """Table 3(b): severity μ (net pixel change) per method (rows) and target class (columns).

    With ``reference`` set, every method is averaged over the same examples: those where the
    reference method has ``ρ ≤ δ`` ("we compute severity only with those examples where the
    baseline attack succeeds with δ < 20"); each method's own ``ρ`` is then averaged over the
    subset where it also has ``ρ ≤ δ``. ``reference=None`` applies Eq. 3 to each method alone.
    """
    if reference is not None and reference not in targeted:
        raise PaperReproError(f"reference method {reference!r} not among {list(targeted)}")
    out = {}
    for method, rho in targeted.items():
        row = {}
        for t in targets:
            col = targeted_column(rho, labels, t)
            if reference is not None:
                ref = targeted_column(targeted[reference], labels, t)
                col = col[ref <= delta]
            row[t] = severity(col, delta) if col.size else float("nan")
        out[method] = row
    return pd.DataFrame.from_dict(out, orient="index")


def table3c(
    targeted: dict[str, np.ndarray],
    labels: np.ndarray,
    deltas: tuple[float, ...] = (5.0, 10.0),
) -> pd.DataFrame:
    """Table 3(c): targeted frequency in % per (method, δ) row and target class column."""
    rows = {}
    for delta in deltas:
        for method, rho in targeted.items():
            k = np.asarray(rho).shape[1]
            rows[(method, float(delta))] = [
                100.0 * frequency(targeted_column(rho, labels, t), delta) for t in range(k)
            ]
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index = pd.MultiIndex.from_tuples(out.index, names=["method", "delta"])
    return out


def paper_table3c() -> pd.DataFrame:
    """The printed Table 3(c) in the layout of :func:`table3c`."""
    out = pd.DataFrame.from_dict(PAPER_TABLE3C, orient="index")
    out.index = pd.MultiIndex.from_tuples(out.index, names=["method", "delta"])
    return out
