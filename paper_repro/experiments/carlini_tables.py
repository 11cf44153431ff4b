"""Carlini, Katz, Barrett & Dill (2018): Table 1, Table 2 and the nonlinearity comparison (Sec. 4).

Input: one row per experiment (network × norm × image × target), a :class:`pandas.DataFrame` with
the columns of :data:`RECORD_COLUMNS`:

* ``model`` — network name (e.g. ``"N"``, ``"N_bar"``); ``norm`` — ``"linf"`` / ``"l1"``;
* ``image``, ``target`` — identify the instance (10 images × 9 targets in the paper);
* ``cw_distance`` — distance of the CW example ``x′_init`` (the search's initial ``δ_max``);
* ``lower``, ``upper`` — the final bracket ``δ_min ≤ δ* ≤ δ_max``;
* ``status`` — :class:`paper_repro.query.Status` value; ``optimal`` means the search terminated.

**Percent improvement.** The paper's column is the *mean over instances* of the per-instance
ratio, not a ratio of the column means: for ``N, L1`` the means 1.94 vs 1.731 (6 points) give
(1.94 − 1.731)/1.731 = 12.1 %, yet the table prints 34.909 %; the 90-point row gives 0.8 % vs
the printed 3.297 %, and every row's printed value exceeds its ratio of means. We take the
per-instance improvement as ``(cw − minimal)/minimal · 100`` ("CW is within 11.6 % of the minimal
example", Sec. 4.1), selectable via :class:`ImprovementBase` since the printed numbers cannot
separate ``/minimal`` from ``/cw``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import pandas as pd

from paper_repro.errors import PaperReproError
from paper_repro.network import ReluNetwork
from paper_repro.query import MinAdvResult, Norm, Status

RECORD_COLUMNS = ("model", "norm", "image", "target", "cw_distance", "lower", "upper", "status")


class ImprovementBase(enum.StrEnum):
    """Denominator of the per-instance percent improvement."""

    MINIMAL = "minimal"  # (cw − minimal) / minimal · 100  (default)
    CW = "cw"  # (cw − minimal) / cw · 100


class Subset(enum.StrEnum):
    """Table 1's two sub-rows: terminated experiments only, or all (timeouts at their δ_max)."""

    TERMINATED = "terminated"
    ALL = "all"


# Table 1 of the paper: (model, norm, subset) -> (points, total, CW, minimal, % improvement)
PAPER_TABLE1 = pd.DataFrame(
    [
        ("N", "linf", "terminated", 38, 90, 0.042, 0.038, 11.632),
        ("N", "linf", "all", 90, 90, 0.063, 0.061, 6.027),
        ("N", "l1", "terminated", 6, 90, 1.94, 1.731, 34.909),
        ("N", "l1", "all", 90, 90, 7.551, 7.492, 3.297),
        ("N_bar", "linf", "terminated", 81, 90, 0.211, 0.193, 11.637),
        ("N_bar", "linf", "all", 90, 90, 0.219, 0.203, 10.568),
        ("N_bar", "l1", "terminated", 64, 90, 6.44, 6.36, 6.285),
        ("N_bar", "l1", "all", 90, 90, 8.187, 8.128, 4.486),
    ],
    columns=["model", "norm", "subset", "points", "total", "cw", "minimal", "improvement_pct"],
)
"""Carlini et al. Table 1 (``N`` = vanilla 784-24-24-10, ``N_bar`` = Madry-trained)."""

PAPER_TABLE2 = pd.DataFrame(
    [("N", 35, 35, 0.042, 0.039, 12.319), ("N_bar", 35, 35, 0.18, 0.165, 11.153)],
    columns=["model", "points", "total", "cw", "minimal", "improvement_pct"],
)
"""Carlini et al. Table 2: the 35 L∞ instances that terminated for both networks."""

PAPER_ROBUSTNESS_FACTOR = 4.2  # Sec. 4.2: 0.165 / 0.039 ("by 423 %")
PAPER_WORSE_COUNT = (7, 35)  # Sec. 4.2: N_bar's minimal distance smaller on 7 of 35 instances
PAPER_MEAN_DEGRADATION_PCT = 12.8  # Sec. 4.2: average degradation on those 7


def record_from_result(
    model: str,
    norm: Norm,
    image: int,
    target: int,
    result: MinAdvResult,
    cw_distance: float | None = None,
) -> dict[str, object]:
    """One row of :data:`RECORD_COLUMNS` from an exact-engine answer.

    ``cw_distance`` defaults to ``result.attack_distance`` (the search's first δ_max, which is
    the CW distance when the engine was seeded with the CW example as in the paper).
    """
    cw = result.attack_distance if cw_distance is None else cw_distance
    return {
        "model": model,
        "norm": Norm.parse(norm).value,
        "image": int(image),
        "target": int(target),
        "cw_distance": float(cw),
        "lower": float(result.lower),
        "upper": float(result.upper),
        "status": Status(result.status).value,
    }


def check_records(df: pd.DataFrame) -> pd.DataFrame:
    """Validate the per-instance records; return a copy with typed columns.

    Raises:
        PaperReproError: empty frame, missing columns, unknown norm/status, negative distances,
            ``lower > upper``, or a duplicated (model, norm, image, target).
    """
    missing = [c for c in RECORD_COLUMNS if c not in df.columns]
    if missing:
        raise PaperReproError(f"records lack columns {missing}; expected {list(RECORD_COLUMNS)}")
    if len(df) == 0:
        raise PaperReproError("no records: the table needs at least one experiment")
    out = df.copy()
    out["norm"] = [Norm.parse(v).value for v in out["norm"]]
    try:
        out["status"] = [Status(v).value for v in out["status"]]
    except ValueError as exc:
        raise PaperReproError(f"unknown status in records: {exc}") from None
    for col in ("cw_distance", "lower", "upper"):
        out[col] = out[col].astype(float)
        if bool((out[col] < 0).any()) or bool(out[col].isna().any()):
            raise PaperReproError(f"column {col} must hold distances ≥ 0 (no NaN)")
    if not np.all(np.isfinite(out["cw_distance"])):
        raise PaperReproError("cw_distance must be finite: drop the instances CW found nothing for")
    if bool((out["lower"] > out["upper"]).any()):
        raise PaperReproError("some records have lower > upper")
    if out.duplicated(["model", "norm", "image", "target"]).any():
        raise PaperReproError("duplicated (model, norm, image, target) records")
    return out


def minimal_distance(df: pd.DataFrame) -> pd.Series:
    """The search's output per row: ``upper`` (δ_max); the CW distance where ``upper`` is inf.

    For a timeout this is "the last (smallest) δ_max that was discovered by the search before it
    timed out" (Carlini et al., Sec. 4); δ_max starts at the CW distance.
    """
    return (
        df["upper"].where(np.isfinite(df["upper"]), df["cw_distance"]).clip(upper=df["cw_distance"])
    )


def improvement_pct(
    cw: np.ndarray, minimal: np.ndarray, base: ImprovementBase = ImprovementBase.MINIMAL
) -> np.ndarray:
    """Per-instance percent improvement of the minimal distance over CW's (see module docs)."""
    cw, minimal = np.asarray(cw, dtype=float), np.asarray(minimal, dtype=float)
    denom = minimal if base is ImprovementBase.MINIMAL else cw
    if np.any(denom <= 0):
        raise PaperReproError("percent improvement needs positive distances")
    return (cw - minimal) / denom * 100.0


def table1(df: pd.DataFrame, base: ImprovementBase = ImprovementBase.MINIMAL) -> pd.DataFrame:
    """Carlini et al. Table 1: per (model, norm), the terminated sub-row and the all-rows sub-row.

    Returns:
        One row per (model, norm, subset) with ``points`` (rows used), ``total`` (experiments),
        ``cw`` (mean CW distance), ``minimal`` (mean minimal distance; timeouts at δ_max) and
        ``improvement_pct`` (mean of per-instance ratios). A subset with no rows gets NaN means.
        Only ``optimal`` rows count as terminated; ``timeout`` and ``error`` rows enter the
        all-rows sub-row with their last δ_max (:func:`minimal_distance`).
    """
    df = check_records(df)
    df["minimal"] = minimal_distance(df)
    rows = []
    for (model, norm), g in df.groupby(["model", "norm"], sort=True):
        for subset in Subset:
            part = g[g["status"] == Status.OPTIMAL.value] if subset is Subset.TERMINATED else g
            rows.append(
                {
                    "model": model,
                    "norm": norm,
                    "subset": subset.value,
                    "points": len(part),
                    "total": len(g),
                    "cw": part["cw_distance"].mean(),
                    "minimal": part["minimal"].mean(),
                    "improvement_pct": _mean_or_nan(
                        improvement_pct(part["cw_distance"], part["minimal"], base)
                    ),
                }
            )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Table2:
    """Carlini et al. Table 2 and the Sec. 4.2 defence numbers.

    Attributes:
        table: rows for the base and the defended network (columns as :data:`PAPER_TABLE2`).
        robustness_factor: mean defended minimal / mean base minimal (paper: 4.2).
        worse: instances where the defended network's minimal distance is smaller.
        common: instances terminated for both networks.
        mean_degradation_pct: mean of ``(base − defended)/base · 100`` over the worse instances
            (paper: 12.8 %); NaN when none is worse.
    """

    table: pd.DataFrame
    robustness_factor: float
    worse: int
    common: int
    mean_degradation_pct: float


def table2(
    df: pd.DataFrame,
    base: str = "N",
    defended: str = "N_bar",
    norm: Norm = Norm.LINF,
    improvement_base: ImprovementBase = ImprovementBase.MINIMAL,
) -> Table2:
    """Compare ``base`` and ``defended`` on the instances (image, target) both terminated on.

    The degradation is taken relative to the base network's minimal distance (our reading of
    "the average percent of degradation being 12.8 %", Sec. 4.2).

    Raises:
        PaperReproError: a model is absent or no instance terminated for both.
    """
    df = check_records(df)
    df = df[(df["norm"] == Norm.parse(norm).value) & (df["status"] == Status.OPTIMAL.value)]
    key = ["image", "target"]
    parts = {}
    for name in (base, defended):
        part = df[df["model"] == name].set_index(key)
        if part.empty:
            raise PaperReproError(f"no terminated {norm} records for model {name!r}")
        parts[name] = part
    common = parts[base].index.intersection(parts[defended].index)
    if len(common) == 0:
        raise PaperReproError(f"no instance terminated for both {base!r} and {defended!r}")
    rows, minimal = [], {}
    for name in (base, defended):
        part = parts[name].loc[common]
        minimal[name] = minimal_distance(part).to_numpy()
        rows.append(
            {
                "model": name,
                "points": len(common),
                "total": len(common),
                "cw": part["cw_distance"].mean(),
                "minimal": minimal[name].mean(),
                "improvement_pct": improvement_pct(
                    part["cw_distance"], minimal[name], improvement_base
                ).mean(),
            }
        )
    worse = minimal[defended] < minimal[base]
    degradation = (minimal[base][worse] - minimal[defended][worse]) / minimal[base][worse] * 100
    return Table2(
        table=pd.DataFrame(rows),
        robustness_factor=float(minimal[defended].mean() / minimal[base].mean()),
        worse=int(worse.sum()),
        common=len(common),
        mean_degradation_pct=_mean_or_nan(degradation),
    )


def nonlinearity(pattern_x: np.ndarray, pattern_adv: np.ndarray) -> np.ndarray:
    """Number of ReLUs that switch phase between ``x`` and ``x′`` (Carlini et al., Sec. 4.2).

    Args:
        pattern_x, pattern_adv: boolean activation patterns (``True`` = linear region, pre-ReLU
            value > 0), shape ``[n_relus]`` or ``[batch, n_relus]``, all hidden layers
            concatenated (see :func:`activation_pattern`).

    Returns:
        The count of differing units: a 0-d array or shape ``[batch]``.
    """
    a, b = np.asarray(pattern_x), np.asarray(pattern_adv)
    if a.shape != b.shape or a.size == 0:
        raise PaperReproError(f"patterns need one non-empty shape, got {a.shape}, {b.shape}")
    if a.dtype != bool or b.dtype != bool:
        raise PaperReproError("activation patterns must be boolean arrays")
    return np.sum(a != b, axis=-1)


def activation_pattern(network: ReluNetwork, x: np.ndarray) -> np.ndarray:
    """Boolean pattern ``[n_relus]`` of one input: pre-activation > 0, hidden layers in order.

    Args:
        network: the classifier.
        x: ``[n_0]`` input in [0, 1].
    """
    return np.concatenate([z > 0 for z in network.pre_activations(x)])


def switched_relus(network: ReluNetwork, x: np.ndarray, x_adv: np.ndarray) -> np.ndarray:
    """Batched :func:`nonlinearity`: ReLUs switching phase from ``x`` to ``x_adv`` (``[B, n_0]``
    each, or ``[n_0]``) → counts ``[B]`` (or a 0-d array), float64 forward pass."""
    a, b = np.asarray(x, dtype=np.float64), np.asarray(x_adv, dtype=np.float64)
    if a.shape != b.shape or a.shape[-1] != network.input_dim:
        raise PaperReproError(f"inputs must both be [..., {network.input_dim}]")
    return nonlinearity(_patterns(network, a), _patterns(network, b))


def _patterns(network: ReluNetwork, x: np.ndarray) -> np.ndarray:
    z, out = x, []
    for w, b in zip(network.weights[:-1], network.biases[:-1], strict=True):
        z = z @ w.T + b
        out.append(z > 0)
        z = np.maximum(z, 0.0)
    return np.concatenate(out, axis=-1)


def with_paper_table1(ours: pd.DataFrame, names: dict[str, str] | None = None) -> pd.DataFrame:
    """Put :func:`table1` output beside :data:`PAPER_TABLE1` (columns suffixed ``_ours`` and
    ``_paper``), matching our model names to the paper's via ``names`` (e.g.
    ``{"vanilla": "N", "madry": "N_bar"}``); unmatched rows keep NaN on the other side."""
    ours = ours.copy()
    if names:
        ours["model"] = ours["model"].map(lambda m: names.get(m, m))
    return ours.merge(
        PAPER_TABLE1, on=["model", "norm", "subset"], how="outer", suffixes=("_ours", "_paper")
    )


class SignificanceTest(enum.StrEnum):
    """Two-sample test for "no statistically significant difference" (Sec. 4.2)."""

    MANN_WHITNEY = "mann_whitney"  # two-sided Mann–Whitney U
    WELCH = "welch"  # two-sided Welch t-test


@dataclass(frozen=True)
class Comparison:
    """Result of :func:`compare_samples`."""

    test: SignificanceTest
    statistic: float
    p_value: float
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_value < alpha


def compare_samples(
    a: np.ndarray, b: np.ndarray, test: SignificanceTest = SignificanceTest.MANN_WHITNEY
) -> Comparison:
    """Compare e.g. the nonlinearity counts of two networks (Carlini et al., Sec. 4.2).

    Raises:
        PaperReproError: a sample with fewer than 2 values or non-finite values.
    """
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if a.size < 2 or b.size < 2:
        raise PaperReproError("a significance test needs at least 2 values per sample")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise PaperReproError("samples must be finite")
    from scipy import stats  # here, not at the top: 0.5 s that every study job would pay

    if test is SignificanceTest.MANN_WHITNEY:
        res = stats.mannwhitneyu(a, b, alternative="two-sided")
    else:
        res = stats.ttest_ind(a, b, equal_var=False)
    return Comparison(
        test, float(res.statistic), float(res.pvalue), a.size, b.size, a.mean(), b.mean()
    )


def _mean_or_nan(values) -> float:
    values = np.asarray(values, dtype=float)
    return float(values.mean()) if values.size else float("nan")
