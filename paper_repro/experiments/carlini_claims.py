"""Carlini, Katz, Barrett & Dill (2018): their claims beside ours (Table 1, Table 2, Sec. 4.2).

Input: the per-instance records of the two networks (``N`` = ``base``, ``N̄`` = ``defended``) as
:func:`paper_repro.experiments.report_tables.carlini_instances` returns them (columns of
:data:`~paper_repro.experiments.carlini_tables.RECORD_COLUMNS`, plus ``switched_relus``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from paper_repro.experiments import carlini_tables as ct
from paper_repro.experiments.claims import Claim, not_comparable, qualitative, quantitative
from paper_repro.experiments.stats import (
    MIN_UNITS,
    Estimate,
    bootstrap_ratio_of_means,
    cluster_bootstrap_mean,
    wilson_rate,
)
from paper_repro.query import Status

PAPER = "carlini"
_NORM = {"linf": "L∞", "l1": "L1"}


def carlini_claims(data: pd.DataFrame, base: str, defended: str, seed: int = 0) -> list[Claim]:
    """Every claim of Table 1 (4 rows × 2 subsets: CW mean, minimal mean, % improvement,
    terminated count), Table 2 / Sec. 4.2 (robustness factor, instances where N̄ is worse,
    their mean degradation) and the nonlinearity comparison."""
    df = data[data["model"].isin([base, defended])]
    if df.empty:
        return []
    df = ct.check_records(df)
    df["minimal"] = ct.minimal_distance(df)
    names = {"N": base, "N_bar": defended}
    out = []
    for row in ct.PAPER_TABLE1.itertuples(index=False):
        g = df[(df["model"] == names[row.model]) & (df["norm"] == row.norm)]
        out += _table1_claims(row, g, seed)
    out += _table2_claims(df, base, defended, seed)
    out += _nonlinearity_claims(df, base, defended)
    return out


def _table1_claims(row, g: pd.DataFrame, seed: int) -> list[Claim]:
    key = f"table1_{row.model}_{row.norm}_{row.subset}"
    where = f"Table 1, {row.model.replace('_bar', '̄')} {_NORM[row.norm]} ({row.subset})"
    done = g["status"] == Status.OPTIMAL.value
    part = g[done] if row.subset == ct.Subset.TERMINATED.value else g
    out = []
    if row.subset == ct.Subset.TERMINATED.value:
        rate = wilson_rate(int(done.sum()), len(g))
        out.append(
            not_comparable(
                PAPER,
                f"{key}_fraction",
                f"{where}: {row.points} of {row.total} searches terminated",
                row.points / row.total,
                rate,
                "depends on the solver's speed (Reluplex in 2017 vs our engine); ours: "
                f"{int(done.sum())} of {len(g)}",
            )
        )
    same_set = row.subset == ct.Subset.ALL.value
    improvement = ct.improvement_pct(part["cw_distance"], part["minimal"]) if len(part) else []
    values = [
        ("cw", "mean CW distance", row.cw, part["cw_distance"]),
        ("minimal", "mean minimal distance", row.minimal, part["minimal"]),
        ("improvement", "mean % by which CW exceeds the minimal", row.improvement_pct, improvement),
    ]
    for name, what, paper_value, sample in values:
        est = cluster_bootstrap_mean(np.asarray(sample, float), part["image"], seed=seed)
        statement = f"{where}: {what} = {paper_value:g}"
        if same_set:
            out.append(quantitative(PAPER, f"{key}_{name}", statement, paper_value, est))
        else:
            reason = (
                "their terminated subset is the instances Reluplex finished "
                f"({row.points} of {row.total}); ours has {len(part)} of {len(g)}"
            )
            out.append(not_comparable(PAPER, f"{key}_{name}", statement, paper_value, est, reason))
    return out


def _table2_claims(df: pd.DataFrame, base: str, defended: str, seed: int) -> list[Claim]:
    linf = df[(df["norm"] == "linf") & (df["status"] == Status.OPTIMAL.value)]
    key = ["image", "target"]
    a = linf[linf["model"] == base].set_index(key)["minimal"]
    b = linf[linf["model"] == defended].set_index(key)["minimal"]
    common = a.index.intersection(b.index)
    a, b = a.loc[common].to_numpy(), b.loc[common].to_numpy()
    images = common.get_level_values("image").to_numpy()
    factor = bootstrap_ratio_of_means(b, a, seed=seed, groups=images)
    worse = b < a
    worse_rate = cluster_bootstrap_mean(worse.astype(float), images, seed=seed)
    degradation = (a[worse] - b[worse]) / a[worse] * 100 if worse.any() else np.zeros(0)
    where = "Table 2 / Sec. 4.2 (L∞, instances terminated for both)"
    return [
        quantitative(
            PAPER,
            "robustness_factor",
            f"{where}: adversarial training raises the mean minimal distance "
            f"{ct.PAPER_ROBUSTNESS_FACTOR}×",
            ct.PAPER_ROBUSTNESS_FACTOR,
            factor,
            "×",
        ),
        qualitative(
            PAPER,
            "defence_raises_minimal_distance",
            f"{where}: N̄'s minimal distances are larger than N's (factor > 1)",
            factor,
            factor.low > 1.0,
            f"our factor's 95 % interval [{factor.low:.3g}, {factor.high:.3g}] "
            + ("lies above 1" if factor.low > 1.0 else "reaches 1 or below"),
        ),
        quantitative(
            PAPER,
            "defended_worse_fraction",
            f"{where}: N̄ is less robust than N on "
            f"{ct.PAPER_WORSE_COUNT[0]} of {ct.PAPER_WORSE_COUNT[1]} instances",
            ct.PAPER_WORSE_COUNT[0] / ct.PAPER_WORSE_COUNT[1],
            worse_rate,
        ),
        quantitative(
            PAPER,
            "defended_worse_degradation",
            f"{where}: on those, N̄'s minimal distance is {ct.PAPER_MEAN_DEGRADATION_PCT} % "
            "smaller on average",
            ct.PAPER_MEAN_DEGRADATION_PCT,
            cluster_bootstrap_mean(degradation, images[worse], seed=seed),
            " %",
        ),
    ]


def _nonlinearity_claims(df: pd.DataFrame, base: str, defended: str) -> list[Claim]:
    col = pd.to_numeric(df.get("switched_relus"), errors="coerce")
    out = []
    for norm in sorted(df["norm"].unique()):
        a = col[(df["model"] == base) & (df["norm"] == norm)].dropna().to_numpy()
        b = col[(df["model"] == defended) & (df["norm"] == norm)].dropna().to_numpy()
        statement = (
            f"Sec. 4.2 ({_NORM[norm]}): no significant difference between N and N̄ in the ReLUs "
            "that switch between x and its minimal example"
        )
        images = df.loc[df["norm"] == norm, "image"].nunique()
        if a.size < 2 or b.size < 2 or images < MIN_UNITS:
            why = (
                "fewer than 2 examples per network"
                if a.size < 2 or b.size < 2
                else f"only {images} image(s): the test needs independent examples from at least "
                f"{MIN_UNITS} images"
            )
            out.append(not_comparable(PAPER, f"nonlinearity_{norm}", statement, np.nan, None, why))
            continue
        res = ct.compare_samples(a, b, ct.SignificanceTest.MANN_WHITNEY)
        est = Estimate(res.p_value, np.nan, np.nan, a.size + b.size, "mann-whitney p")
        holds = not res.significant()
        reason = (
            f"Mann–Whitney p = {res.p_value:.3g} "
            f"({'not ' if holds else ''}significant at 0.05); "
            f"means {res.mean_a:.1f} vs {res.mean_b:.1f}"
        )
        out.append(qualitative(PAPER, f"nonlinearity_{norm}", statement, est, holds, reason))
    return out
