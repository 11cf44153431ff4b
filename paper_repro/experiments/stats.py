"""Uncertainty for the claims table: bootstrap intervals for means and ratios, Wilson intervals for
rates, and paired tests where a paper compares two networks on the same instances.

Every interval is two-sided at ``level`` (95 % by default) and seeded, so a table is reproducible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from paper_repro.errors import PaperReproError

N_BOOT = 4000
"""Bootstrap resamples per interval."""

MIN_UNITS = 5
"""Fewest independent units (images) for a bootstrap interval to mean anything; with fewer, the
claims table says ``not comparable``."""


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its interval ``[low, high]`` over ``n`` observations.

    ``method``: ``"bootstrap"`` (percentile, paired where two samples), ``"wilson"`` (a rate),
    ``"exact"`` (no sampling uncertainty: a count or a fixed quantity) or ``"none"`` (``n`` is 0).
    """

    value: float
    low: float
    high: float
    n: int
    method: str

    def contains(self, x: float) -> bool:
        """True when ``x`` lies in the interval (both ends included)."""
        return bool(self.low <= x <= self.high)


def _sample(values: np.ndarray | list) -> np.ndarray:
    a = np.asarray(values, dtype=float).reshape(-1)
    if np.any(~np.isfinite(a)):
        raise PaperReproError("statistics need finite values (drop or cap infinities first)")
    return a


def bootstrap_mean(values, level: float = 0.95, seed: int = 0) -> Estimate:
    """Mean of ``values`` (``[n]``) with a percentile bootstrap interval."""
    return bootstrap(values, np.mean, level, seed)


def bootstrap(
    values, statistic: Callable[[np.ndarray], float], level: float = 0.95, seed: int = 0
) -> Estimate:
    """``statistic(values)`` with a percentile bootstrap interval (``values``: ``[n]``)."""
    a = _sample(values)
    if a.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0, "none")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(N_BOOT, a.size))
    boots = np.array([statistic(a[i]) for i in idx])
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return Estimate(float(statistic(a)), float(lo), float(hi), int(a.size), "bootstrap")


def _units(n: int, groups) -> list[np.ndarray]:
    """Row indices per independent unit: one per row, or one per distinct ``groups`` value."""
    if groups is None:
        return [np.array([i]) for i in range(n)]
    g = np.asarray(groups).reshape(-1)
    if g.size != n:
        raise PaperReproError(f"{g.size} group labels for {n} values")
    return [np.flatnonzero(g == u) for u in np.unique(g)]


def _resample(units: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    pick = rng.integers(0, len(units), size=len(units))
    return np.concatenate([units[k] for k in pick])


def cluster_bootstrap_mean(values, groups, level: float = 0.95, seed: int = 0) -> Estimate:
    """Mean of ``values`` (``[n]``) with a bootstrap interval that resamples whole ``groups``
    (e.g. the 9 targets of one test image, which are not independent); ``n`` in the result is
    the number of groups."""
    a = _sample(values)
    if a.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0, "none")
    units = _units(a.size, groups)
    rng = np.random.default_rng(seed)
    boots = np.array([a[_resample(units, rng)].mean() for _ in range(N_BOOT)])
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return Estimate(float(a.mean()), float(lo), float(hi), len(units), "bootstrap over images")


def bootstrap_rows(
    n: int, statistic: Callable[[np.ndarray], float], seed: int = 0, resamples: int = N_BOOT // 4
) -> Estimate:
    """``statistic(all n rows)`` with a 95 % percentile interval over ``resamples`` bootstrap
    resamples of the row indices; ``statistic`` takes an index array (``[n]``, with repeats),
    e.g. the test images of Dathathri et al.'s ρ matrices. Resamples whose statistic is not
    finite (no example within δ, say) are left out."""
    rng = np.random.default_rng(seed)
    value = statistic(np.arange(n))
    boots = np.array([statistic(rng.integers(0, n, n)) for _ in range(resamples)])
    boots = boots[np.isfinite(boots)]
    if not np.isfinite(value) or boots.size == 0:
        return Estimate(float(value), float("nan"), float("nan"), n, "bootstrap")
    lo, hi = np.quantile(boots, [0.025, 0.975])
    return Estimate(float(value), float(lo), float(hi), n, "bootstrap")


def bootstrap_ratio_of_means(num, den, level: float = 0.95, seed: int = 0, groups=None) -> Estimate:
    """``mean(num) / mean(den)`` for paired samples (``[n]`` each, resampled together), e.g.
    Carlini et al.'s robustness factor: mean minimal distance of N̄ over that of N. ``groups``
    (``[n]``): resample whole groups (images) instead of single pairs."""
    a, b = _sample(num), _sample(den)
    if a.size != b.size:
        raise PaperReproError(f"paired samples differ in size: {a.size} vs {b.size}")
    if a.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0, "none")
    units = _units(a.size, groups)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(N_BOOT):
        idx = _resample(units, rng)
        if b[idx].mean() > 0:
            boots.append(a[idx].mean() / b[idx].mean())
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    method = "bootstrap" if groups is None else "bootstrap over images"
    return Estimate(float(a.mean() / b.mean()), float(lo), float(hi), len(units), method)


def wilson_rate(successes: int, n: int, level: float = 0.95) -> Estimate:
    """The rate ``successes / n`` with its Wilson score interval (well defined at 0 and n, where
    a bootstrap interval collapses to a point)."""
    if n < 0 or not 0 <= successes <= n:
        raise PaperReproError(f"a rate needs 0 ≤ successes ≤ n, got {successes} of {n}")
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0, "none")
    z = float(stats.norm.ppf((1 + level) / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), n, "wilson")


def paired_wilcoxon(a, b) -> float:
    """Two-sided Wilcoxon signed-rank p-value for paired samples ``a``, ``b`` (``[n]`` each);
    1.0 when every difference is 0, NaN for fewer than two pairs."""
    x, y = _sample(a), _sample(b)
    if x.size != y.size:
        raise PaperReproError(f"paired samples differ in size: {x.size} vs {y.size}")
    if x.size < 2:
        return float("nan")
    if np.all(x == y):
        return 1.0
    return float(stats.wilcoxon(x, y, zero_method="wilcox").pvalue)
