"""Pahlavan, Lee & Rose: closest FGSM vs closest exact (Reluplex) adversary (Sec. 4, Figs. 1–7).

Records: one row per (network, image, target) with the two L∞ radii in [0, 1] pixel units:
``fgsm_delta`` (closest iterated-FGSM adversary, :class:`paper_repro.attacks.ClosestFGSM`) and
``exact_delta`` (provably closest adversary), optionally ``cosine`` (from
:func:`cosine_similarity`). The paper reports δ-robustness in 0..255 pixel units ("a 0.3
normalized L∞ ball, or a 76.5 pixel ball", Sec. 3.3.1), hence :func:`to_pixels`.

δ-robustness of an image ("the distance of the closest adversary", Sec. 4.3) is the minimum over
its targets: :func:`image_robustness`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import pandas as pd

from paper_repro.errors import PaperReproError

PIXELS = 255.0
RECORD_COLUMNS = ("network", "image", "target", "fgsm_delta", "exact_delta")


class Method(enum.StrEnum):
    """How the closest adversary was found."""

    FGSM = "fgsm"  # binary search over iterated FGSM (Sec. 3.4)
    EXACT = "exact"  # complete solver (Reluplex/Marabou in the paper)


@dataclass(frozen=True)
class PaperNumbers:
    """Numbers printed in Pahlavan et al. (Sec. 4); approximate ones are read from the text."""

    clean_accuracy_vanilla: float = 0.97  # Sec. 4.1
    clean_accuracy_alp: float = 0.965
    fgsm_accuracy_vanilla: float = 0.14  # FGSM, δ = 0.2, 10,000 test images
    fgsm_accuracy_alp: float = 0.89
    fgsm_eval_delta: float = 0.2
    mean_delta_pixels_vanilla: float = 6.0  # Sec. 4.3 / Fig. 7, "about 6 pixels"
    mean_delta_pixels_alp: float = 20.0  # "about 20 pixels"
    min_cosine: float = 0.0  # Sec. 4.2: no pair had a negative cosine similarity


PAPER = PaperNumbers()


def to_pixels(delta: np.ndarray | float) -> np.ndarray:
    """[0,1]-scale radius → 0..255 pixel units (``δ·255``)."""
    return np.asarray(delta, dtype=float) * PIXELS


def cosine_similarity(x: np.ndarray, x_fgsm: np.ndarray, x_min: np.ndarray) -> np.ndarray:
    """Cosine of the perturbations ``x_fgsm − x`` and ``x_min − x`` per row (Sec. 4.2, Figs. 1, 3).

    Args:
        x, x_fgsm, x_min: ``[B, d]`` (or ``[d]``) images in [0, 1].

    Returns:
        ``[B]`` (or scalar array) in [−1, 1]; NaN where either perturbation is zero.
    """
    x, a, b = (np.asarray(v, dtype=float) for v in (x, x_fgsm, x_min))
    if not (x.shape == a.shape == b.shape) or x.size == 0:
        raise PaperReproError(
            f"images must share one non-empty shape: {x.shape}, {a.shape}, {b.shape}"
        )
    da, db = a - x, b - x
    na, nb = np.linalg.norm(da, axis=-1), np.linalg.norm(db, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.sum(da * db, axis=-1) / (na * nb)
    cos = np.where((na > 0) & (nb > 0), cos, np.nan)
    return np.clip(cos, -1.0, 1.0)


def cosine_histogram(cosine: np.ndarray, bin_width: float = 0.1) -> pd.DataFrame:
    """Frequency of cosine-similarity ranges on [−1, 1] (Figs. 1 and 3); NaNs are dropped.

    Returns:
        Columns ``lo``, ``hi``, ``count``, ``fraction``; bins ``[lo, hi)``, the last one closed.
    """
    if not 0 < bin_width <= 2:
        raise PaperReproError(f"bin_width must be in (0, 2], got {bin_width}")
    c = np.asarray(cosine, dtype=float).ravel()
    c = c[~np.isnan(c)]
    if c.size == 0:
        raise PaperReproError("no cosine similarities to histogram")
    edges = np.linspace(-1.0, 1.0, round(2.0 / bin_width) + 1)
    counts, _ = np.histogram(c, bins=edges)
    return pd.DataFrame(
        {"lo": edges[:-1], "hi": edges[1:], "count": counts, "fraction": counts / c.size}
    )


def check_records(df: pd.DataFrame) -> pd.DataFrame:
    """Validate the per-(network, image, target) records.

    Raises:
        PaperReproError: empty, missing columns, or radii outside [0, 1] (NaN = not found is ok).
    """
    missing = [c for c in RECORD_COLUMNS if c not in df.columns]
    if missing:
        raise PaperReproError(f"records lack columns {missing}; expected {list(RECORD_COLUMNS)}")
    if len(df) == 0:
        raise PaperReproError("no records")
    for col in ("fgsm_delta", "exact_delta"):
        v = df[col].astype(float)
        if bool(((v < 0) | (v > 1)).any()):
            raise PaperReproError(f"{col} must be an L∞ radius in [0, 1] (not ×255)")
    return df


def image_robustness(df: pd.DataFrame) -> pd.DataFrame:
    """Per (network, image): δ-robustness = min over targets, for both methods ([0,1] units)."""
    df = check_records(df)
    return (
        df.groupby(["network", "image"], sort=True)[["fgsm_delta", "exact_delta"]]
        .min()
        .reset_index()
    )


def network_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per-network summary of the comparison (Sec. 4.2–4.3, Fig. 7).

    Returns:
        One row per network: ``pairs`` (image×target rows), ``images``, mean FGSM and exact radius
        per pair in pixels (``fgsm_pixels``, ``exact_pixels``), mean per-image δ-robustness in
        pixels (``fgsm_robustness_pixels``, ``exact_robustness_pixels``), the mean per-pair ratio
        ``fgsm/exact`` (``ratio``, ≥ 1 for a sound exact solver), the fraction of pairs whose FGSM
        radius is within one pixel (1/255) of the exact one (``within_one_pixel``) and, when a
        ``cosine`` column is present, its mean, minimum and the fraction of negative values.
    """
    df = check_records(df)
    per_image = image_robustness(df)
    rows = []
    for net, g in df.groupby("network", sort=True):
        both = g.dropna(subset=["fgsm_delta", "exact_delta"])
        both = both[both["exact_delta"] > 0]
        img = per_image[per_image["network"] == net]
        row = {
            "network": net,
            "pairs": len(g),
            "images": g["image"].nunique(),
            "fgsm_pixels": float(to_pixels(g["fgsm_delta"].mean())),
            "exact_pixels": float(to_pixels(g["exact_delta"].mean())),
            "fgsm_robustness_pixels": float(to_pixels(img["fgsm_delta"].mean())),
            "exact_robustness_pixels": float(to_pixels(img["exact_delta"].mean())),
            "ratio": float((both["fgsm_delta"] / both["exact_delta"]).mean()),
            "within_one_pixel": float(
                (to_pixels(both["fgsm_delta"] - both["exact_delta"]) <= 1.0).mean()
            ),
        }
        if "cosine" in g.columns:
            cos = g["cosine"].dropna()
            row["cosine_mean"] = float(cos.mean())
            row["cosine_min"] = float(cos.min()) if len(cos) else float("nan")
            row["cosine_negative_fraction"] = float((cos < 0).mean()) if len(cos) else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def mean_minimal_delta(df: pd.DataFrame, per_image: bool = True) -> pd.DataFrame:
    """Fig. 7: mean minimal δ in pixels, per network (rows) and method (``fgsm``, ``exact``).

    ``per_image`` averages the per-image δ-robustness (min over targets); else every pair.
    """
    data = image_robustness(df) if per_image else check_records(df)
    out = data.groupby("network", sort=True)[["fgsm_delta", "exact_delta"]].mean() * PIXELS
    return out.rename(columns={"fgsm_delta": Method.FGSM.value, "exact_delta": Method.EXACT.value})


def delta_histogram(
    df: pd.DataFrame, bin_pixels: float = 2.0, max_pixels: float = 255.0, per_image: bool = True
) -> pd.DataFrame:
    """Figs. 5–6: how many examples have their closest adversary in each δ range (pixel units).

    Returns:
        Long format: ``network``, ``method``, ``lo``, ``hi`` (pixels, bins ``[lo, hi)``), ``count``.
    """
    if not 0 < bin_pixels <= max_pixels:
        raise PaperReproError("need 0 < bin_pixels ≤ max_pixels")
    data = image_robustness(df) if per_image else check_records(df)
    edges = np.arange(0.0, max_pixels + bin_pixels, bin_pixels)
    rows = []
    for net, g in data.groupby("network", sort=True):
        for method in Method:
            v = to_pixels(g[f"{method.value}_delta"].dropna().to_numpy())
            counts, _ = np.histogram(v, bins=edges)
            for lo, hi, n in zip(edges[:-1], edges[1:], counts, strict=True):
                rows.append(
                    {"network": net, "method": method.value, "lo": lo, "hi": hi, "count": int(n)}
                )
    return pd.DataFrame(rows)
