"""Pahlavan, Lee & Rose: their claims beside ours (Sec. 4: accuracies, cosine similarity between
the closest FGSM and the certified closest adversary, δ-robustness of vanilla vs logit pairing).

Inputs: the accuracy table rows of the two networks (``clean_acc``, ``fgsm_acc``, ``n_test``) and
the pairs frame of :func:`paper_repro.experiments.report_tables.pahlavan_frame`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from paper_repro.experiments import pahlavan_metrics as pm
from paper_repro.experiments.claims import Claim, qualitative, quantitative
from paper_repro.experiments.stats import (
    Estimate,
    bootstrap,
    bootstrap_mean,
    cluster_bootstrap_mean,
    wilson_rate,
)

PAPER = "pahlavan"


def pahlavan_claims(
    accuracy: pd.DataFrame, frame: pd.DataFrame, vanilla: str, alp: str, seed: int = 0
) -> list[Claim]:
    """Claims for the pair (``vanilla``, ``alp``): the four accuracies, no negative cosine, a
    lower cosine after logit pairing, and the mean δ-robustness of about 6 and 20 pixels."""
    out = _accuracy_claims(accuracy.set_index("model"), vanilla, alp)
    pairs = frame[frame["network"].isin([vanilla, alp])]
    if pairs.empty:
        return out
    cos = pairs["cosine"].dropna().to_numpy(float)
    negative = int((cos < 0).sum())
    out.append(
        qualitative(
            PAPER,
            "no_negative_cosine",
            "Sec. 4.2: no (FGSM, closest) pair has a negative cosine similarity",
            wilson_rate(negative, cos.size),
            negative == 0,
            f"{negative} of {cos.size} pairs negative; least cosine "
            f"{cos.min() if cos.size else float('nan'):.3f}",
            paper_value=0.0,
        )
    )
    out.append(_cosine_drop(pairs, vanilla, alp, seed))
    robust = pm.image_robustness(pairs.assign(cosine=np.nan).drop(columns=["cosine"]))
    paper_px = {vanilla: pm.PAPER.mean_delta_pixels_vanilla, alp: pm.PAPER.mean_delta_pixels_alp}
    for net, px in paper_px.items():
        values = robust.loc[robust["network"] == net, "exact_delta"].dropna() * pm.PIXELS
        out.append(
            quantitative(
                PAPER,
                f"mean_delta_pixels_{net}",
                f"Sec. 4.3 / Fig. 7: mean certified δ-robustness of {net} is about {px:g} pixels "
                "(×255, per image: the least over targets)",
                px,
                bootstrap_mean(values.to_numpy(), seed=seed),
                " px",
            )
        )
    out.append(_delta_rise(robust, vanilla, alp, seed))
    return out


def _accuracy_claims(acc: pd.DataFrame, vanilla: str, alp: str) -> list[Claim]:
    p = pm.PAPER
    rows = [
        (vanilla, "clean_acc", "clean accuracy", p.clean_accuracy_vanilla),
        (alp, "clean_acc", "clean accuracy", p.clean_accuracy_alp),
        (vanilla, "fgsm_acc", f"FGSM (δ = {p.fgsm_eval_delta}) accuracy", p.fgsm_accuracy_vanilla),
        (alp, "fgsm_acc", f"FGSM (δ = {p.fgsm_eval_delta}) accuracy", p.fgsm_accuracy_alp),
    ]
    out = []
    for model, col, what, paper_value in rows:
        if model not in acc.index:
            continue
        n = int(acc.loc[model, "n_test"])
        est = wilson_rate(round(float(acc.loc[model, col]) * n), n)
        out.append(
            quantitative(
                PAPER,
                f"{col}_{model}",
                f"Sec. 4.1: {what} of {model} = {paper_value:g}",
                paper_value,
                est,
            )
        )
    return out


def _cosine_drop(pairs: pd.DataFrame, vanilla: str, alp: str, seed: int) -> Claim:
    """Mean cosine after logit pairing minus before, over the (image, target) pairs both have."""
    key = ["image", "target"]
    a = pairs[pairs["network"] == vanilla].set_index(key)["cosine"].dropna()
    b = pairs[pairs["network"] == alp].set_index(key)["cosine"].dropna()
    common = a.index.intersection(b.index)
    diff = (b.loc[common] - a.loc[common]).to_numpy(float)
    images = common.get_level_values("image").to_numpy()
    est = cluster_bootstrap_mean(diff, images, seed=seed) if diff.size else _empty()
    holds = bool(diff.size) and est.high < 0
    return qualitative(
        PAPER,
        "cosine_lower_after_alp",
        "Sec. 4.2: the FGSM direction is less aligned with the closest adversary after logit "
        "pairing (lower cosine similarity)",
        est,
        holds,
        f"paired mean change {est.value:+.3f}, 95 % interval [{est.low:+.3f}, {est.high:+.3f}] "
        f"over {diff.size} pairs",
    )


def _delta_rise(robust: pd.DataFrame, vanilla: str, alp: str, seed: int) -> Claim:
    a = robust[robust["network"] == vanilla].set_index("image")["exact_delta"].dropna()
    b = robust[robust["network"] == alp].set_index("image")["exact_delta"].dropna()
    common = a.index.intersection(b.index)
    ratio = (b.loc[common] / a.loc[common].clip(lower=1e-12)).to_numpy(float)
    est = bootstrap(ratio, np.mean, seed=seed) if ratio.size else _empty()
    return qualitative(
        PAPER,
        "alp_raises_delta",
        "Sec. 4.3: logit pairing raises the certified δ-robustness (about 6 → 20 pixels)",
        est,
        bool(ratio.size) and est.low > 1.0,
        f"per-image ratio ALP / vanilla {est.value:.2f}, 95 % interval "
        f"[{est.low:.2f}, {est.high:.2f}] over {ratio.size} images",
        paper_value=pm.PAPER.mean_delta_pixels_alp / pm.PAPER.mean_delta_pixels_vanilla,
    )


def _empty() -> Estimate:
    return Estimate(float("nan"), float("nan"), float("nan"), 0, "none")
