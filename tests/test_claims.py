"""The claims table: intervals with known answers, verdict rules, and each paper's claims on
synthetic results whose verdicts are known by construction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from paper_repro.errors import PaperReproError
from paper_repro.experiments import carlini_tables as ct
from paper_repro.experiments.carlini_claims import carlini_claims
from paper_repro.experiments.claims import (
    CLAIM_COLUMNS,
    Verdict,
    claims_frame,
    combine_claims,
    quantitative,
)
from paper_repro.experiments.dathathri_claims import dathathri_claims
from paper_repro.experiments.pahlavan_claims import pahlavan_claims
from paper_repro.experiments.stats import (
    Estimate,
    bootstrap_mean,
    bootstrap_ratio_of_means,
    paired_wilcoxon,
    wilson_rate,
)
from paper_repro.experiments.wong_kolter_claims import wong_kolter_claims


def test_wilson_interval_known_values():
    """Wilson 95 % intervals (z = 1.95996): 5/10 → [0.2366, 0.7634], 0/10 → [0, 0.2775]."""
    half = wilson_rate(5, 10)
    assert half.value == 0.5 and half.low == pytest.approx(0.2366, abs=1e-4)
    assert half.high == pytest.approx(0.7634, abs=1e-4)
    none = wilson_rate(0, 10)
    assert none.low == 0.0 and none.high == pytest.approx(0.2775, abs=1e-4)
    with pytest.raises(PaperReproError):
        wilson_rate(3, 2)


def test_bootstrap_intervals():
    assert bootstrap_mean(np.full(7, 0.3)).low == pytest.approx(0.3)
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 0.5, size=400)
    est = bootstrap_mean(x, seed=1)
    assert est.low < x.mean() < est.high and est.high - est.low < 0.15
    assert bootstrap_mean(x, seed=1) == est  # seeded
    a = rng.uniform(0.1, 1.0, size=50)
    ratio = bootstrap_ratio_of_means(4.2 * a, a)
    assert ratio.value == pytest.approx(4.2) and ratio.low == pytest.approx(4.2)
    with pytest.raises(PaperReproError, match="finite"):
        bootstrap_mean([1.0, np.inf])
    assert paired_wilcoxon(a, a) == 1.0 and paired_wilcoxon(a, a + 1.0) < 1e-6


def test_quantitative_verdicts():
    est = Estimate(1.0, 0.9, 1.1, 30, "bootstrap")
    assert quantitative("p", "c", "s", 1.05, est).verdict == Verdict.REPRODUCED
    assert quantitative("p", "c", "s", 1.2, est).verdict == Verdict.DIFFERS
    assert "above" in quantitative("p", "c", "s", 1.2, est).reason
    empty = Estimate(np.nan, np.nan, np.nan, 0, "none")
    assert quantitative("p", "c", "s", 1.0, empty).verdict == Verdict.NOT_COMPARABLE


def _carlini_records(factor: float, worse: int) -> pd.DataFrame:
    """90 L∞ and 90 L1 instances per network; N̄'s minimal distance is ``factor`` × N's except on
    the first ``worse`` L∞ instances, where it is 0.9 × N's."""
    rng = np.random.default_rng(3)
    rows = []
    for norm in ("linf", "l1"):
        base = rng.uniform(0.02, 0.08, size=90) * (1 if norm == "linf" else 40)
        for model, scale in (("n", 1.0), ("nbar", factor)):
            for k in range(90):
                d = base[k] * (0.9 if model == "nbar" and norm == "linf" and k < worse else scale)
                rows.append(
                    {
                        "model": model,
                        "norm": norm,
                        "image": k // 9,
                        "target": k % 9,
                        "cw_distance": d * 1.1,
                        "lower": d - 1e-5,
                        "upper": d,
                        "status": "optimal",
                        "switched_relus": 5 + (k % 3),
                    }
                )
    return pd.DataFrame(rows)


def test_carlini_claims_follow_the_data():
    claims = {c.claim: c for c in carlini_claims(_carlini_records(4.2, 0), "n", "nbar")}
    assert len(claims) == 8 * 3 + 4 + 4 + 2  # Table 1 (+ 4 terminated counts), 4.2, nonlinearity
    assert claims["robustness_factor"].ours == pytest.approx(4.2)
    assert claims["robustness_factor"].verdict == Verdict.REPRODUCED
    assert claims["defence_raises_minimal_distance"].verdict == Verdict.REPRODUCED
    assert claims["defended_worse_fraction"].verdict == Verdict.DIFFERS  # 0 of 90 vs 7/35
    assert claims["nonlinearity_linf"].verdict == Verdict.REPRODUCED  # identical counts
    assert claims["table1_N_linf_all_improvement"].ours == pytest.approx(10.0)
    assert claims["table1_N_linf_terminated_fraction"].verdict == Verdict.NOT_COMPARABLE
    weak = {c.claim: c for c in carlini_claims(_carlini_records(1.5, 20), "n", "nbar")}
    assert weak["robustness_factor"].verdict == Verdict.DIFFERS
    assert weak["defended_worse_fraction"].ours == pytest.approx(20 / 90)
    assert weak["defended_worse_degradation"].ours == pytest.approx(10.0)
    frame = claims_frame(claims.values())
    assert tuple(frame.columns) == CLAIM_COLUMNS and frame["claim"].is_unique


def test_pahlavan_claims_follow_the_data():
    acc = pd.DataFrame(
        {"model": ["v", "a"], "clean_acc": [0.97, 0.80], "fgsm_acc": [0.14, 0.5], "n_test": 10000}
    )
    rows = []
    for net, delta, cos in (("v", 6 / 255, 0.6), ("a", 20 / 255, 0.3)):
        for img in range(30):
            for t in range(3):
                rows.append((net, img, t, delta * 1.2, delta * (1 + 0.01 * t), cos))
    frame = pd.DataFrame(
        rows, columns=["network", "image", "target", "fgsm_delta", "exact_delta", "cosine"]
    )
    claims = {c.claim: c for c in pahlavan_claims(acc, frame, "v", "a")}
    assert claims["clean_acc_v"].verdict == Verdict.REPRODUCED
    assert claims["clean_acc_a"].verdict == Verdict.DIFFERS
    assert claims["no_negative_cosine"].verdict == Verdict.REPRODUCED
    assert claims["cosine_lower_after_alp"].verdict == Verdict.REPRODUCED
    assert claims["mean_delta_pixels_v"].ours == pytest.approx(6.0)
    assert claims["alp_raises_delta"].verdict == Verdict.REPRODUCED
    frame.loc[0, "cosine"] = -0.1
    claims = {c.claim: c for c in pahlavan_claims(acc, frame, "v", "a")}
    assert claims["no_negative_cosine"].verdict == Verdict.DIFFERS


def test_dathathri_claims_gain_and_frequency():
    rng = np.random.default_rng(0)
    n = 200
    labels = rng.integers(0, 10, n)
    ours = rng.uniform(0.0, 15.0, (n, 10))
    ours[np.arange(n), labels] = np.nan
    rho = {"baseline": ours * 1.5, "ours": ours}
    claims = {c.claim: c for c in dathathri_claims(rho, labels, "m")}
    assert claims["table3a_gain_m"].verdict == Verdict.REPRODUCED  # exact ≤ baseline, strictly
    untargeted = np.nanmin(ours, axis=1)
    assert claims["table3a_ours_m"].ours == pytest.approx(100 * np.mean(untargeted <= 5))


def test_wong_kolter_claims():
    table1 = pd.DataFrame(
        {
            "model": ["50_vanilla", "50_wk"],
            "eps": [0.1, 0.1],
            "n": [1000, 1000],
            "test_error": [2.0, 5.0],
            "fgsm_error": [90.0, 8.0],
            "pgd_error": [99.0, 9.0],
            "robust_bound": [100.0, 20.0],
        }
    )
    claims = {c.claim: c for c in wong_kolter_claims(table1)}
    assert claims["robust_training_bound_50_wk"].verdict == Verdict.REPRODUCED
    assert claims["robust_training_bound_50_wk"].ours == pytest.approx(20.0)  # in %, as the paper
    assert claims["bound_above_pgd_error"].verdict == Verdict.REPRODUCED
    assert claims["table1_robust_bound_50_wk"].verdict == Verdict.NOT_COMPARABLE
    assert claims["table1_robust_bound_50_wk"].ours == pytest.approx(20.0)
    table1.loc[1, "robust_bound"] = 8.0  # below the PGD error: an unsound bound
    assert {c.claim: c for c in wong_kolter_claims(table1)}[
        "bound_above_pgd_error"
    ].verdict == Verdict.DIFFERS


def test_combine_claims_errors(tmp_path):
    good = claims_frame(carlini_claims(_carlini_records(4.2, 0), "n", "nbar"))
    good.to_csv(tmp_path / "a.csv", index=False)
    assert len(combine_claims([tmp_path / "a.csv"])) == len(good)
    with pytest.raises(PaperReproError, match="not found"):
        combine_claims([tmp_path / "missing.csv"])
    with pytest.raises(PaperReproError, match="two claims files"):
        combine_claims([tmp_path / "a.csv", tmp_path / "a.csv"])
    good.assign(verdict="maybe").to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(PaperReproError, match="unknown verdicts"):
        combine_claims([tmp_path / "b.csv"])
    assert ct.PAPER_ROBUSTNESS_FACTOR == 4.2


def test_cluster_bootstrap_counts_images_not_instances():
    """9 targets of one image are one observation: the interval resamples whole images, and a
    claim resting on fewer than MIN_UNITS images is not judged."""
    from paper_repro.experiments.stats import MIN_UNITS, cluster_bootstrap_mean

    rng = np.random.default_rng(1)
    per_image = rng.normal(0.1, 0.03, size=12)
    values, images = np.repeat(per_image, 9), np.repeat(np.arange(12), 9)
    clustered = cluster_bootstrap_mean(values, images)
    naive = bootstrap_mean(values)
    assert clustered.n == 12 and naive.n == 108
    assert clustered.high - clustered.low > 2 * (naive.high - naive.low)
    few = cluster_bootstrap_mean(values[:18], images[:18])
    assert few.n == 2 < MIN_UNITS
    claim = quantitative("p", "c", "s", float(few.value), few)
    assert claim.verdict == Verdict.NOT_COMPARABLE and "independent image" in claim.reason
    one_image = carlini_claims(_carlini_records(4.2, 0).query("image == 0"), "n", "nbar")
    assert {c.verdict for c in one_image if c.method.startswith("bootstrap")} == {
        Verdict.NOT_COMPARABLE
    }
    lone = {c.claim: c for c in one_image}["nonlinearity_linf"]  # 9 targets of one image
    assert lone.verdict == Verdict.NOT_COMPARABLE and "1 image" in lone.reason
