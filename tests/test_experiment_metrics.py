"""Experiment metrics on small hand-computed fixtures (values worked out in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from paper_repro.errors import PaperReproError
from paper_repro.experiments import carlini_tables as ct
from paper_repro.experiments import dathathri_metrics as dm
from paper_repro.experiments import pahlavan_metrics as pm
from paper_repro.experiments import wong_kolter_metrics as wk
from paper_repro.network import ReluNetwork
from paper_repro.query import MinAdvResult, Norm, Status

TOL = 1e-12

# ----------------------------------------------------------------------------- Carlini et al.


@pytest.fixture
def carlini_records() -> pd.DataFrame:
    rows = [
        # model, norm, image, target, cw, lower, upper, status
        ("N", "linf", 0, 1, 0.05, 0.039, 0.04, "optimal"),  # minimal .04, +25 %
        ("N", "linf", 0, 2, 0.06, 0.059, 0.06, "optimal"),  # minimal .06, +0 %
        ("N", "linf", 1, 1, 0.10, 0.02, 0.05, "timeout"),  # last δ_max .05, +100 %
        ("N", "linf", 1, 2, 0.09, 0.0, math.inf, "timeout"),  # no δ_max below CW: .09, +0 %
        ("N_bar", "linf", 0, 1, 0.20, 0.159, 0.16, "optimal"),  # +25 %
        ("N_bar", "linf", 0, 2, 0.05, 0.049, 0.05, "optimal"),  # +0 %, smaller than N's .06
        ("N_bar", "linf", 1, 1, 0.30, 0.249, 0.25, "optimal"),  # N timed out here
        ("N_bar", "linf", 1, 2, 0.40, 0.10, 0.35, "timeout"),
    ]
    return pd.DataFrame(rows, columns=list(ct.RECORD_COLUMNS))


def test_table1_means_of_per_instance_ratios(carlini_records):
    t = ct.table1(carlini_records).set_index(["model", "norm", "subset"])
    term = t.loc[("N", "linf", "terminated")]
    assert (term["points"], term["total"]) == (2, 4)
    assert term["cw"] == pytest.approx(0.055, abs=TOL)
    assert term["minimal"] == pytest.approx(0.05, abs=TOL)
    # mean of (25 %, 0 %), not the ratio of means (0.055 − 0.05)/0.05 = 10 %
    assert term["improvement_pct"] == pytest.approx(12.5, abs=1e-9)
    every = t.loc[("N", "linf", "all")]
    assert (every["points"], every["total"]) == (4, 4)
    assert every["cw"] == pytest.approx(0.075, abs=TOL)
    assert every["minimal"] == pytest.approx((0.04 + 0.06 + 0.05 + 0.09) / 4, abs=TOL)
    assert every["improvement_pct"] == pytest.approx((25 + 0 + 100 + 0) / 4, abs=1e-9)
    nbar = t.loc[("N_bar", "linf", "terminated")]
    assert nbar["points"] == 3
    assert nbar["improvement_pct"] == pytest.approx((25 + 0 + 20) / 3, abs=1e-9)


def test_table1_cw_base(carlini_records):
    t = ct.table1(carlini_records, base=ct.ImprovementBase.CW).set_index(["model", "subset"])
    # (cw − min)/cw: 20 %, 0 %, 50 %, 0 %
    assert t.loc[("N", "terminated"), "improvement_pct"] == pytest.approx(10.0, abs=1e-9)
    assert t.loc[("N", "all"), "improvement_pct"] == pytest.approx(17.5, abs=1e-9)


def test_table2(carlini_records):
    res = ct.table2(carlini_records)
    assert res.common == 2  # (0,1) and (0,2): N timed out on image 1
    rows = res.table.set_index("model")
    assert rows.loc["N", "minimal"] == pytest.approx(0.05, abs=TOL)
    assert rows.loc["N_bar", "minimal"] == pytest.approx(0.105, abs=TOL)
    assert rows.loc["N_bar", "cw"] == pytest.approx(0.125, abs=TOL)
    assert rows.loc["N_bar", "improvement_pct"] == pytest.approx(12.5, abs=1e-9)
    assert res.robustness_factor == pytest.approx(2.1, abs=1e-9)
    assert res.worse == 1  # .05 < .06 on (0, 2)
    assert res.mean_degradation_pct == pytest.approx(100 * 0.01 / 0.06, abs=1e-9)


def test_table2_needs_common_instances(carlini_records):
    only_n = carlini_records[carlini_records["model"] == "N"]
    with pytest.raises(PaperReproError, match="N_bar"):
        ct.table2(only_n)


def test_record_validation(carlini_records):
    with pytest.raises(PaperReproError, match="columns"):
        ct.table1(carlini_records.drop(columns=["status"]))
    with pytest.raises(PaperReproError, match="no records"):
        ct.table1(carlini_records.iloc[:0])
    bad = carlini_records.copy()
    bad.loc[0, "lower"] = 0.5
    with pytest.raises(PaperReproError, match="lower > upper"):
        ct.table1(bad)
    bad = carlini_records.copy()
    bad.loc[0, "cw_distance"] = math.inf
    with pytest.raises(PaperReproError, match="cw_distance"):
        ct.table1(bad)
    bad = carlini_records.copy()
    bad.loc[0, "status"] = "finished"
    with pytest.raises(PaperReproError, match="status"):
        ct.table1(bad)


def test_paper_constants_support_per_instance_reading():
    """Every printed improvement exceeds the ratio of the printed means (see module docs)."""
    p = ct.PAPER_TABLE1
    ratio_of_means = (p["cw"] - p["minimal"]) / p["minimal"] * 100
    assert (p["improvement_pct"] > ratio_of_means).all()
    n_l1 = p[(p["model"] == "N") & (p["norm"] == "l1") & (p["subset"] == "terminated")].iloc[0]
    assert n_l1["improvement_pct"] > 2.5 * (n_l1["cw"] / n_l1["minimal"] - 1) * 100
    t2 = ct.PAPER_TABLE2.set_index("model")
    factor = t2.loc["N_bar", "minimal"] / t2.loc["N", "minimal"]
    assert factor == pytest.approx(ct.PAPER_ROBUSTNESS_FACTOR, abs=0.05)


def test_record_from_result(carlini_records):
    res = MinAdvResult(
        status=Status.TIMEOUT,
        lower=0.02,
        upper=0.05,
        witness=None,
        witness_class=1,
        attack_distance=0.10,
        seconds=1.0,
        backend="test",
        unstable_relus=0,
    )
    row = ct.record_from_result("N", Norm.LINF, 1, 1, res)
    expected = carlini_records.iloc[2].to_dict()
    assert row == expected


def test_nonlinearity_and_activation_pattern():
    a = np.array([[True, False, True], [False, False, False]])
    b = np.array([[True, True, False], [False, False, False]])
    assert ct.nonlinearity(a, b).tolist() == [2, 0]
    net = ReluNetwork.from_arrays(
        [np.array([[1.0, 0.0], [0.0, -1.0]]), np.array([[1.0, 1.0]])],
        [np.array([0.0, 0.5]), np.array([0.0])],
    )
    pa = ct.activation_pattern(net, np.array([0.2, 0.1]))  # pre-activations (0.2, 0.4)
    pb = ct.activation_pattern(net, np.array([0.0, 0.9]))  # (0.0, −0.4): both saturated
    assert pa.tolist() == [True, True] and pb.tolist() == [False, False]
    assert int(ct.nonlinearity(pa, pb)) == 2
    with pytest.raises(PaperReproError):
        ct.nonlinearity(a, b[:1])
    with pytest.raises(PaperReproError):
        ct.nonlinearity(a.astype(int), b.astype(int))


def test_switched_relus_batched_matches_patterns():
    net = ReluNetwork.from_arrays(
        [np.array([[1.0, 0.0], [0.0, -1.0]]), np.array([[1.0, 1.0]])],
        [np.array([0.0, 0.5]), np.array([0.0])],
    )
    x = np.array([[0.2, 0.1], [0.2, 0.1]])
    adv = np.array([[0.0, 0.9], [0.3, 0.2]])  # second: (0.3, 0.3) keeps both units active
    assert ct.switched_relus(net, x, adv).tolist() == [2, 0]
    with pytest.raises(PaperReproError):
        ct.switched_relus(net, x, adv[:, :1])


def test_with_paper_table1(carlini_records):
    ours = ct.table1(
        carlini_records.assign(
            model=carlini_records["model"].map({"N": "vanilla", "N_bar": "madry"})
        )
    )
    both = ct.with_paper_table1(ours, {"vanilla": "N", "madry": "N_bar"})
    row = both.set_index(["model", "norm", "subset"]).loc[("N", "linf", "terminated")]
    assert row["improvement_pct_paper"] == pytest.approx(11.632)
    assert row["improvement_pct_ours"] == pytest.approx(12.5)
    assert len(both) == 8  # our 4 L∞ rows matched, the paper's 4 L1 rows unmatched


def test_compare_samples():
    a, b = [1, 2, 3, 4, 5], [6, 7, 8, 9, 10]
    mw = ct.compare_samples(a, b)
    # complete separation: U = 0, exact two-sided p = 2 / C(10, 5) = 2/252
    assert mw.statistic == 0.0
    assert mw.p_value == pytest.approx(2 / 252, abs=1e-9)
    assert mw.significant()
    welch = ct.compare_samples(a, b, ct.SignificanceTest.WELCH)
    # t = (3 − 8)/sqrt(2.5/5 + 2.5/5) = −5 with 8 degrees of freedom: p ≈ 0.001053
    assert welch.statistic == pytest.approx(-5.0, abs=1e-12)
    assert welch.p_value == pytest.approx(0.001053, abs=2e-6)
    same = ct.compare_samples([1, 2, 3, 4], [1, 2, 3, 4])
    assert not same.significant()
    with pytest.raises(PaperReproError):
        ct.compare_samples([1], [2, 3])


# ----------------------------------------------------------------------------- Pahlavan et al.


def test_cosine_similarity():
    x = np.zeros((3, 3))
    fg = np.array([[1.0, 0, 0], [1, 1, 0], [0, 0, 0]])
    mn = np.array([[0.5, 0, 0], [0, 1, 1], [1, 0, 0]])
    cos = pm.cosine_similarity(x, fg, mn)
    assert cos[0] == pytest.approx(1.0, abs=TOL)
    assert cos[1] == pytest.approx(0.5, abs=TOL)  # 1 / (√2·√2)
    assert math.isnan(cos[2])  # zero FGSM perturbation
    with pytest.raises(PaperReproError):
        pm.cosine_similarity(x, fg[:2], mn)


def test_cosine_histogram():
    h = pm.cosine_histogram(np.array([1.0, 0.5, -0.05, np.nan]), bin_width=0.5)
    assert h["lo"].tolist() == [-1.0, -0.5, 0.0, 0.5]
    assert h["count"].tolist() == [0, 1, 0, 2]  # 1.0 falls in the closed last bin
    np.testing.assert_allclose(h["fraction"], [0, 1 / 3, 0, 2 / 3], atol=TOL)


@pytest.fixture
def pahlavan_records() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "network": ["vanilla"] * 3,
            "image": [0, 0, 1],
            "target": [1, 2, 1],
            "fgsm_delta": [0.03, 0.05, 0.10],
            "exact_delta": [0.02, 0.05, 0.08],
            "cosine": [0.9, 0.5, -0.1],
        }
    )


def test_pahlavan_summary(pahlavan_records):
    s = pm.network_summary(pahlavan_records).set_index("network").loc["vanilla"]
    assert (s["pairs"], s["images"]) == (3, 2)
    assert s["fgsm_pixels"] == pytest.approx(0.06 * 255, abs=1e-9)
    assert s["exact_pixels"] == pytest.approx(0.05 * 255, abs=1e-9)
    # per image: min over targets → fgsm (.03, .10), exact (.02, .08)
    assert s["fgsm_robustness_pixels"] == pytest.approx(0.065 * 255, abs=1e-9)
    assert s["exact_robustness_pixels"] == pytest.approx(0.05 * 255, abs=1e-9)
    assert s["ratio"] == pytest.approx((1.5 + 1.0 + 1.25) / 3, abs=1e-9)
    # differences in pixels: 2.55, 0, 5.1 → one of three within a pixel
    assert s["within_one_pixel"] == pytest.approx(1 / 3, abs=TOL)
    assert s["cosine_mean"] == pytest.approx(1.3 / 3, abs=1e-9)
    assert s["cosine_min"] == pytest.approx(-0.1, abs=TOL)
    assert s["cosine_negative_fraction"] == pytest.approx(1 / 3, abs=TOL)
    fig7 = pm.mean_minimal_delta(pahlavan_records)
    assert fig7.loc["vanilla", "fgsm"] == pytest.approx(0.065 * 255, abs=1e-9)
    assert fig7.loc["vanilla", "exact"] == pytest.approx(0.05 * 255, abs=1e-9)


def test_pahlavan_delta_histogram(pahlavan_records):
    h = pm.delta_histogram(pahlavan_records, bin_pixels=5.0)
    nz = h[h["count"] > 0].set_index(["method", "lo"])["count"]
    # per image in pixels: fgsm 7.65, 25.5; exact 5.1, 20.4
    assert nz.to_dict() == {
        ("fgsm", 5.0): 1,
        ("fgsm", 25.0): 1,
        ("exact", 5.0): 1,
        ("exact", 20.0): 1,
    }
    assert pm.to_pixels(0.3) == pytest.approx(76.5)


def test_pahlavan_rejects_pixel_units(pahlavan_records):
    bad = pahlavan_records.assign(exact_delta=[5.0, 12.0, 20.0])
    with pytest.raises(PaperReproError, match="×255"):
        pm.network_summary(bad)


# ----------------------------------------------------------------------------- Dathathri et al.


def test_frequency_and_severity():
    rho = np.array([1.0, 2.0, 5.0, 7.0, np.inf])
    assert dm.frequency(rho, 5.0) == pytest.approx(0.6, abs=TOL)  # ρ ≤ δ counts
    assert dm.severity(rho, 5.0) == pytest.approx(8 / 3, abs=TOL)
    assert dm.frequency(rho, 0.5) == 0.0
    assert math.isnan(dm.severity(rho, 0.5))
    curve = dm.frequency_curve(rho, np.array([0.0, 1.0, 5.0, 100.0]))
    np.testing.assert_allclose(curve, [0.0, 0.2, 0.6, 0.8], atol=TOL)
    with pytest.raises(PaperReproError, match="×255"):
        dm.frequency(np.array([300.0 * 255]), 5.0)
    with pytest.raises(PaperReproError):
        dm.frequency(np.array([-1.0]), 5.0)
    with pytest.raises(PaperReproError):
        dm.frequency(rho, -1.0)
    with pytest.raises(PaperReproError):
        dm.frequency(np.array([]), 1.0)


LABELS = np.array([0, 1, 2])
BASELINE = np.array([[np.nan, 3.0, 6.0], [4.0, np.nan, 1.0], [2.0, 8.0, np.nan]])
OURS = np.array([[np.nan, 2.0, 5.0], [3.0, np.nan, 1.0], [1.0, 7.0, np.nan]])


def test_rho_matrix_from_long_records():
    long = pd.DataFrame(
        {
            "image": [7, 7, 3, 3],
            "label": [0, 0, 1, 1],
            "target": [1, 2, 0, 2],
            "rho": [3.0, 6.0, 4.0, np.inf],
        }
    )
    rho, labels, images = dm.rho_matrix(long, num_classes=3)
    assert images.tolist() == [3, 7] and labels.tolist() == [1, 0]
    np.testing.assert_array_equal(rho, [[4.0, np.nan, np.inf], [np.nan, 3.0, 6.0]])
    with pytest.raises(PaperReproError, match="target == label"):
        dm.rho_matrix(long.assign(target=[0, 2, 0, 2]), num_classes=3)


def test_untargeted_and_table3a():
    np.testing.assert_allclose(dm.untargeted_rho(BASELINE, LABELS), [3.0, 1.0, 2.0])
    t = dm.table3a({"baseline": dm.untargeted_rho(BASELINE, LABELS)}, delta=1.5)
    assert t.loc["baseline", "frequency_pct"] == pytest.approx(100 / 3, abs=1e-9)


def test_table3b_common_subset():
    t = dm.table3b({"baseline": BASELINE, "ours": OURS}, LABELS, targets=(1, 2), delta=5.0)
    # target 1: baseline column (3, 8) → only the first example; target 2: (6, 1) → the second
    assert t.loc["baseline", 1] == pytest.approx(3.0) and t.loc["ours", 1] == pytest.approx(2.0)
    assert t.loc["baseline", 2] == pytest.approx(1.0) and t.loc["ours", 2] == pytest.approx(1.0)
    alone = dm.table3b({"ours": OURS}, LABELS, targets=(1, 2), delta=5.0, reference=None)
    assert alone.loc["ours", 2] == pytest.approx(3.0)  # (5 + 1)/2


def test_figure5_curves():
    f = dm.figure5_curves({"ours": OURS}, LABELS, deltas=np.array([1.0, 2.5]), targets=(0,))
    # target 0 over labels 1, 2: ρ = (3, 1)
    assert f["frequency"].tolist() == [0.5, 0.5]
    f = dm.figure5_curves({"ours": OURS}, LABELS, deltas=np.array([0.5, 3.0]), targets=(0,))
    assert f["frequency"].tolist() == [0.0, 1.0]


def test_table3c_layout():
    t = dm.table3c({"baseline": BASELINE}, LABELS, deltas=(5.0,))
    # target 0 over labels 1, 2: (4, 2) → 100 %; target 1: (3, 8) → 50 %; target 2: (6, 1) → 50 %
    np.testing.assert_allclose(t.loc[("baseline", 5.0)].to_numpy(), [100.0, 50.0, 50.0])
    paper = dm.paper_table3c()
    assert paper.shape == (4, 10)
    assert paper.loc[("ours", 10.0), 3] == pytest.approx(63.2)
    with pytest.raises(PaperReproError):
        dm.targeted_column(BASELINE, LABELS, 3)


# ----------------------------------------------------------------------------- Wong & Kolter


def test_error_row():
    row = wk.error_row(
        0.1,
        correct=np.array([True, True, True, False]),
        fgsm_correct=np.array([True, True, False, False]),
        pgd_correct=np.array([True, False, False, False]),
        certified=np.array([True, False, False, False]),
    )
    assert (row.test_error, row.fgsm_error, row.pgd_error, row.robust_bound) == (
        25.0,
        50.0,
        75.0,
        75.0,
    )
    table = wk.table1({"vanilla": row})
    assert table.loc["vanilla", "n"] == 4
    ok = np.ones(2, dtype=bool)
    with pytest.raises(PaperReproError, match="certified"):
        wk.error_row(0.1, np.array([True, False]), ok, ok, np.array([False, True]))
    with pytest.raises(PaperReproError):
        wk.error_row(-0.1, ok, ok, ok, ok)
    with pytest.raises(PaperReproError):
        wk.error_row(0.1, ok, ok, ok, np.ones(3, dtype=bool))
    with pytest.raises(PaperReproError):
        wk.error_row(0.1, np.array([1, 0]), ok, ok, ok)


def test_radius_curve_and_summary():
    radius = np.array([0.3, 0.2, 0.1, 0.0])
    correct = np.array([True, True, False, False])
    curve = wk.radius_curve(radius, correct, bins=2)
    assert curve["radius"].tolist() == [0.0, 0.1, 0.2, 0.3]
    assert curve["correct"].tolist() == [False, False, True, True]
    assert curve["group_fraction_correct"].tolist() == [0.0, 0.0, 1.0, 1.0]
    s = wk.radius_summary(radius, correct)
    assert s.loc["correct", "min"] == pytest.approx(0.2)
    assert s.loc["correct", "median"] == pytest.approx(0.25)
    assert s.loc["incorrect", "median"] == pytest.approx(0.05)
    with pytest.raises(PaperReproError):
        wk.radius_curve(np.array([np.nan]), np.array([True]))
    p = wk.PAPER_TABLE1.set_index(["problem", "robust"])
    assert p.loc[("MNIST", True), "robust_bound"] == pytest.approx(5.82)
