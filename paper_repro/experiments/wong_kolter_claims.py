"""Wong & Kolter (2018): their claims beside ours (Table 1's MNIST rows, Sec. 4.2's radii).

Inputs: the rows of :func:`paper_repro.experiments.report_tables.wk_table1` (errors in % per
model and ε, ``n`` test points) and the sandwich frame of
:func:`~paper_repro.experiments.report_tables.bound_sandwich`. Their MNIST network is a ConvNet,
ours are MLPs: their absolute errors are shown beside ours but not judged; the claims about
directions (robust training makes the bound non-vacuous; the bound is sound) are.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from paper_repro.experiments import wong_kolter_metrics as wk
from paper_repro.experiments.claims import Claim, not_comparable, qualitative
from paper_repro.experiments.stats import wilson_rate

PAPER = "wong_kolter"
_COLUMNS = {
    "test_error": "test error",
    "fgsm_error": "FGSM error",
    "pgd_error": "PGD error",
    "robust_bound": "robust error bound",
}


def wong_kolter_claims(table1: pd.DataFrame, sandwich: pd.DataFrame | None = None) -> list[Claim]:
    """Table 1's MNIST rows at ε = 0.1 for every model (standard row for ``*_vanilla``, robust
    otherwise; not comparable: ConvNet vs MLP), the non-vacuous bound of robust training (a
    ``*_wk`` model against its vanilla counterpart), the bound's soundness (≥ the PGD error) and
    the sandwich certified ≤ exact ≤ attack."""
    out = []
    paper = wk.PAPER_TABLE1[wk.PAPER_TABLE1["problem"] == "MNIST"]
    at = table1[np.isclose(table1["eps"], 0.1)]
    for r in at.itertuples(index=False):
        robust = not str(r.model).endswith("_vanilla")
        p = paper[paper["robust"] == robust].iloc[0]
        for col, what in _COLUMNS.items():
            est = wilson_rate(round(getattr(r, col) / 100 * r.n), int(r.n))
            est = type(est)(100 * est.value, 100 * est.low, 100 * est.high, est.n, est.method)
            kind = "robust" if robust else "standard"
            out.append(
                not_comparable(
                    PAPER,
                    f"table1_{col}_{r.model}",
                    f"Table 1 (MNIST, {kind} training, ε = 0.1): {what} = {p[col]} % ({r.model})",
                    float(p[col]),
                    est,
                    "their MNIST network is a ConvNet; ours is an MLP",
                )
            )
    for r in at[at["model"].str.endswith("_wk")].itertuples(index=False):
        base = str(r.model).removesuffix("_wk") + "_vanilla"
        ref = at[at["model"] == base]
        if ref.empty:
            continue
        mine = wilson_rate(round(r.robust_bound / 100 * r.n), int(r.n))
        theirs = wilson_rate(round(float(ref["robust_bound"].iloc[0]) / 100 * r.n), int(r.n))
        holds = mine.high < theirs.low
        mine = type(mine)(100 * mine.value, 100 * mine.low, 100 * mine.high, mine.n, mine.method)
        out.append(
            qualitative(
                PAPER,
                f"robust_training_bound_{r.model}",
                f"Table 1: robust training makes the certified bound non-vacuous ({r.model} vs "
                f"{base}, ε = 0.1; their ConvNet: 5.82 % robust vs 100 % standard)",
                mine,
                holds,
                f"{r.model} bound {r.robust_bound:.1f} % vs {base} "
                f"{float(ref['robust_bound'].iloc[0]):.1f} %",
                paper_value=5.82,
            )
        )
    sound = at["robust_bound"] + 1e-9 >= at["pgd_error"]
    out.append(
        qualitative(
            PAPER,
            "bound_above_pgd_error",
            "Sec. 3: the robust error bound is an upper bound on any attack's error (PGD)",
            wilson_rate(int(sound.sum()), len(at)),
            bool(len(at)) and bool(sound.all()),
            f"bound ≥ PGD error for {int(sound.sum())} of {len(at)} models at ε = 0.1",
        )
    )
    if sandwich is not None and len(sandwich):
        ok = sandwich["consistent"].astype(bool)
        out.append(
            qualitative(
                PAPER,
                "sandwich",
                "certified radius ≤ exact minimal untargeted distance ≤ attack distance",
                wilson_rate(int(ok.sum()), len(ok)),
                bool(ok.all()),
                f"{int(ok.sum())} of {len(ok)} (model, image) pairs consistent",
            )
        )
    return out
