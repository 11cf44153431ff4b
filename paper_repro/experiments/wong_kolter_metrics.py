"""Wong & Kolter (2018): Table 1 error rows and the sorted certified-radius curve (Fig. 5).

Table 1 reports, at one ε, the clean test error, the FGSM error, the PGD error and the robust
error bound: the fraction of test points *without* a certificate (Corollary 1, Sec. 3.4) — "a
provable upper bound on the achievable error by any adversarial attack". A certificate is for the
true label, so a certified point is correctly classified under every attack in the ball.

Fig. 5 plots, for every test point, the largest ε with a certificate (Eq. 17) in increasing
order, coloured by the fraction of correctly classified points.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from paper_repro.errors import PaperReproError

PAPER_TABLE1 = pd.DataFrame(
    [
        ("MNIST", False, 0.1, 1.07, 50.01, 81.68, 100.0),
        ("MNIST", True, 0.1, 1.80, 3.93, 4.11, 5.82),
        ("FASHION-MNIST", False, 0.1, 9.36, 77.98, 81.85, 100.0),
        ("FASHION-MNIST", True, 0.1, 21.73, 31.25, 31.63, 34.53),
        ("HAR", False, 0.05, 4.95, 60.57, 63.82, 81.56),
        ("HAR", True, 0.05, 7.80, 21.49, 21.52, 21.90),
        ("SVHN", False, 0.01, 16.01, 62.21, 83.43, 100.0),
        ("SVHN", True, 0.01, 20.38, 33.28, 33.74, 40.67),
    ],
    columns=["problem", "robust", "eps", "test_error", "fgsm_error", "pgd_error", "robust_bound"],
)
"""Wong & Kolter Table 1 (errors in %). Their MNIST model is a ConvNet, not one of our MLPs."""

PAPER_STANDARD_CORRECT_RADIUS = 0.007  # Sec. 4.2: correctly classified points, standard model
PAPER_ROBUST_CORRECT_RADIUS = 0.1  # ... and with robust training at ε = 0.1


@dataclass(frozen=True)
class ErrorRow:
    """One Table-1 row, errors in percent of ``n`` test points."""

    eps: float
    n: int
    test_error: float
    fgsm_error: float
    pgd_error: float
    robust_bound: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _bool_array(name: str, a: np.ndarray, n: int | None) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype != bool or arr.ndim != 1:
        raise PaperReproError(f"{name} must be a 1-D boolean array")
    if arr.size == 0:
        raise PaperReproError(f"{name} is empty")
    if n is not None and arr.size != n:
        raise PaperReproError(f"{name} has {arr.size} entries, expected {n}")
    return arr


def error_row(
    eps: float,
    correct: np.ndarray,
    fgsm_correct: np.ndarray,
    pgd_correct: np.ndarray,
    certified: np.ndarray,
) -> ErrorRow:
    """Build a Table-1 row from per-point outcomes (all ``[N]`` bool).

    Args:
        eps: the L∞ radius (≥ 0, [0,1] pixel units).
        correct: clean prediction equals the label.
        fgsm_correct: prediction on the FGSM input equals the label.
        pgd_correct: prediction on the PGD input equals the label.
        certified: the robustness certificate for the true label holds at ``eps``.

    Raises:
        PaperReproError: negative ε, empty or mismatched arrays, or a certified point that is
            misclassified clean or under an attack (the bound would be unsound).
    """
    if not eps >= 0:
        raise PaperReproError(f"ε must be ≥ 0, got {eps}")
    c = _bool_array("correct", correct, None)
    n = c.size
    f = _bool_array("fgsm_correct", fgsm_correct, n)
    p = _bool_array("pgd_correct", pgd_correct, n)
    cert = _bool_array("certified", certified, n)
    unsound = cert & ~(c & f & p)
    if unsound.any():
        raise PaperReproError(
            f"{int(unsound.sum())} certified point(s) are misclassified clean or under attack: "
            "the certificate or the attack inputs are wrong"
        )
    return ErrorRow(
        eps=float(eps),
        n=n,
        test_error=100.0 * float(np.mean(~c)),
        fgsm_error=100.0 * float(np.mean(~f)),
        pgd_error=100.0 * float(np.mean(~p)),
        robust_bound=100.0 * float(np.mean(~cert)),
    )


def table1(rows: dict[str, ErrorRow]) -> pd.DataFrame:
    """Stack named rows (e.g. ``{"vanilla": …, "robust": …}``) into a Table-1 frame."""
    if not rows:
        raise PaperReproError("no rows")
    return pd.DataFrame([{"model": k, **v.as_dict()} for k, v in rows.items()]).set_index("model")


def radius_curve(radius: np.ndarray, correct: np.ndarray, bins: int = 50) -> pd.DataFrame:
    """Fig. 5 data: certified radii in increasing order, coloured by correctness.

    Args:
        radius: ``[N]`` largest certified ε per point (≥ 0; [0,1] pixel units).
        correct: ``[N]`` bool, clean prediction equals the label.
        bins: the sorted order is cut into this many consecutive groups of (nearly) equal size;
            each point gets its group's fraction of correct points (the figure's colour).

    Returns:
        Columns ``rank`` (0..N−1), ``radius`` (sorted), ``correct``, ``group``,
        ``group_fraction_correct``.
    """
    r = _check_radius(radius)
    c = _bool_array("correct", correct, r.size)
    if bins < 1:
        raise PaperReproError("bins must be ≥ 1")
    order = np.argsort(r, kind="stable")
    groups = np.minimum(np.arange(r.size) * min(bins, r.size) // r.size, bins - 1)
    cs = c[order]
    frac = pd.Series(cs.astype(float)).groupby(groups).transform("mean").to_numpy()
    return pd.DataFrame(
        {
            "rank": np.arange(r.size),
            "radius": r[order],
            "correct": cs,
            "group": groups,
            "group_fraction_correct": frac,
        }
    )


def radius_summary(radius: np.ndarray, correct: np.ndarray) -> pd.DataFrame:
    """Min and median certified radius of correctly / incorrectly classified points (Sec. 4.2).

    The paper: correct points of the standard model are "around 0.007" from the boundary at
    least, pushed to 0.1 by robust training; misclassified points "tend to be relatively closer".

    Returns:
        Index ``correct``/``incorrect``; columns ``n``, ``min``, ``median`` (NaN when empty).
    """
    r = _check_radius(radius)
    c = _bool_array("correct", correct, r.size)
    rows = {}
    for name, mask in (("correct", c), ("incorrect", ~c)):
        v = r[mask]
        rows[name] = {
            "n": int(v.size),
            "min": float(v.min()) if v.size else float("nan"),
            "median": float(np.median(v)) if v.size else float("nan"),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def _check_radius(radius: np.ndarray) -> np.ndarray:
    r = np.asarray(radius, dtype=float)
    if r.ndim != 1 or r.size == 0:
        raise PaperReproError("radius must be a non-empty 1-D array")
    if np.any(np.isnan(r)) or np.any(r < 0):
        raise PaperReproError("radii must be ≥ 0 and not NaN")
    return r
