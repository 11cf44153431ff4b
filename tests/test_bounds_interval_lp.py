"""Soundness of the bounds behind the exact engine: IBP, symbolic (with phase splits), LP tightening
and the Neumaier–Shcherbina safe dual bound."""

from __future__ import annotations

import highspy
import numpy as np
import pytest
import scipy.sparse as sp

from paper_repro.bounds.highs import new_highs, run_highs
from paper_repro.bounds.interval import InputRegion, interval_bounds, linear_range
from paper_repro.bounds.lp import RelaxedLP, lp_tighten, safe_dual_bound
from paper_repro.bounds.symbolic import margin_lower_bounds, symbolic_bounds
from paper_repro.network import ReluNetwork
from paper_repro.query import Norm


def _net(rng: np.random.Generator, sizes: list[int]) -> ReluNetwork:
    ws = [rng.normal(size=(sizes[k + 1], sizes[k])) for k in range(len(sizes) - 1)]
    bs = [rng.normal(size=sizes[k + 1]) * 0.3 for k in range(len(sizes) - 1)]
    return ReluNetwork.from_arrays(ws, bs)


def _samples(rng, region: InputRegion, count: int) -> np.ndarray:
    """Points of the region, including corners of the box and L1-ball vertices."""
    x, lo, hi = region.x, region.lo, region.hi
    pts = rng.uniform(lo, hi, size=(count, x.size))
    pts[: count // 3] = np.where(rng.random((count // 3, x.size)) < 0.5, lo, hi)  # box corners
    if region.norm == Norm.L1:
        out = []
        for p in pts:
            d = p - x
            s = np.abs(d).sum()
            out.append(x + d * min(1.0, region.delta / s) if s > 0 else x)
        for i in range(x.size):  # the ball's vertices along each axis, clipped to the box
            for sign in (-1, 1):
                v = x.copy()
                v[i] = np.clip(x[i] + sign * region.delta, 0.0, 1.0)
                out.append(v)
        pts = np.array(out)
    return pts


def _inside(net: ReluNetwork, pts: np.ndarray, bounds) -> None:
    z = pts
    for k, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        z = z @ w.T + b
        lo, hi = bounds[k]
        assert np.all(z >= lo[None, :]) and np.all(z <= hi[None, :]), f"layer {k} escapes"
        if k < len(net.weights) - 1:
            z = np.maximum(z, 0.0)


@pytest.mark.parametrize("norm", [Norm.LINF, Norm.L1])
@pytest.mark.parametrize("seed", range(4))
def test_interval_symbolic_lp_bounds_contain_samples(norm, seed):
    rng = np.random.default_rng(seed)
    net = _net(rng, [6, 5, 4, 3])
    x = rng.random(6)
    x[0], x[1] = 0.0, 1.0
    delta = 0.3 if norm == Norm.LINF else 0.8
    region = InputRegion(x, delta, norm)
    ibp = interval_bounds(net, region)
    sym = symbolic_bounds(net, region, ibp)
    boxed = symbolic_bounds(net, region, ibp, symbolic_outputs=False)  # interval logits
    lp = RelaxedLP(net, x, norm, target=0, min_delta=False)
    tight = lp_tighten(lp, delta, sym, deadline=1e18)
    pts = _samples(rng, region, 600)
    for bounds in (ibp, sym, boxed, tight):
        _inside(net, pts, bounds)
    for (l1, u1), (l2, u2) in zip(ibp, tight, strict=True):  # tightening never loosens
        assert np.all(l2 >= l1) and np.all(u2 <= u1)


def test_symbolic_bounds_respect_phase_splits():
    rng = np.random.default_rng(7)
    net = _net(rng, [4, 6, 3])
    x = rng.random(4)
    region = InputRegion(x, 0.4, Norm.LINF)
    base = symbolic_bounds(net, region)
    lo, hi = base[0]
    i = int(np.flatnonzero((lo < 0) & (hi > 0))[0])
    pts = _samples(rng, region, 2000)
    pre = pts @ net.weights[0].T + net.biases[0]
    for phase in (1, -1):
        fixed = [np.zeros(6, np.int8)]
        fixed[0][i] = phase
        b = symbolic_bounds(net, region, base, fixed)
        boxed = symbolic_bounds(net, region, base, fixed, symbolic_outputs=False)
        keep = pts[(pre[:, i] >= 0) if phase > 0 else (pre[:, i] <= 0)]
        assert len(keep) > 0
        _inside(net, keep, b)
        _inside(net, keep, boxed)
        assert boxed[0][0][i] == b[0][0][i]  # only the logits' bounds differ
        assert not np.array_equal(boxed[-1][0], b[-1][0])
        assert (b[0][0][i] >= 0) if phase > 0 else (b[0][1][i] <= 0)


def test_l1_linear_range_is_exact_knapsack():
    """The L1 range of a linear function equals the LP optimum (HiGHS) up to the margin."""
    rng = np.random.default_rng(3)
    n = 7
    a, x = rng.normal(size=(3, n)), rng.random(n)
    region = InputRegion(x, 0.9, Norm.L1)
    lo, hi = linear_range(a, np.zeros(3), region)
    for r in range(3):
        for sign in (1.0, -1.0):
            h = new_highs()
            # variables p, q ≥ 0 with x′ = x + p − q, Σ(p+q) ≤ δ, 0 ≤ x′ ≤ 1
            cost = np.concatenate([sign * a[r], -sign * a[r]])
            h.addVars(2 * n, np.zeros(2 * n), np.concatenate([1 - x, x]))
            h.changeColsCost(2 * n, np.arange(2 * n, dtype=np.int32), cost)
            h.addRow(-np.inf, 0.9, 2 * n, np.arange(2 * n, dtype=np.int32), np.ones(2 * n))
            run_highs(h)
            opt = sign * h.getInfo().objective_function_value + a[r] @ x
            target = lo[r] if sign > 0 else hi[r]
            assert abs(opt - target) < 1e-7
            assert (target <= opt + 1e-12) if sign > 0 else (target >= opt - 1e-12)


def test_safe_dual_bound_is_a_lower_bound_even_for_bad_duals():
    """min x0 + x1 s.t. x0 + x1 ≥ 1, 0 ≤ x ≤ 2: optimum 1. Any dual gives a bound ≤ 1; the
    optimal dual gives (nearly) 1."""
    a = sp.csc_matrix(np.array([[1.0, 1.0]]))
    args = (np.array([1.0]), np.array([np.inf]), np.zeros(2), np.full(2, 2.0), np.ones(2))
    assert 1.0 - 1e-12 < safe_dual_bound(a, *args[:4], args[4], np.array([1.0])) <= 1.0
    for y in (0.0, 0.5, 3.0, -1.0):
        assert safe_dual_bound(a, *args[:4], args[4], np.array([y])) <= 1.0


@pytest.mark.parametrize("budget", [0.0, 0.3, 5.0, 40.0, 150.0, 1e4])
def test_l1_knapsack_partial_sort_matches_full_sort(budget):
    """The top-k knapsack (argpartition) equals the full greedy, including rows whose top k items
    cannot absorb the budget (zero capacities force the full-sort fallback)."""
    from paper_repro.bounds.interval import _greedy, _knapsack

    rng = np.random.default_rng(int(budget))
    value = np.abs(rng.normal(size=(12, 784)))
    value[:, :20] = value[:, 20:40]  # ties
    cap = rng.uniform(0.0, 1.0, size=(12, 784))
    cap[3, :] = 0.0
    cap[4, ::2] = 0.0
    cap[5, np.argsort(-value[5])[:500]] = 0.0  # the largest values have no room
    fast, full = _knapsack(value, cap, budget), _greedy(value, cap, budget)
    np.testing.assert_allclose(fast, full, rtol=1e-12, atol=1e-12)
    assert fast[3] == 0.0  # no capacity at all
    # an independent check of one row: the LP max Σ v t, 0 ≤ t ≤ cap, Σ t ≤ budget on HiGHS
    h = new_highs()
    n = value.shape[1]
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, 1
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = -value[5], np.zeros(n), cap[5]
    lp.row_lower_, lp.row_upper_ = np.array([-np.inf]), np.array([budget])
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.arange(n + 1)
    lp.a_matrix_.index_ = np.zeros(n, dtype=np.int32)
    lp.a_matrix_.value_ = np.ones(n)
    h.passModel(lp)
    run_highs(h)
    assert abs(-h.getInfo().objective_function_value - fast[5]) <= 1e-7 * max(1.0, fast[5])


def test_shared_knapsacks_equal_separate_ones():
    """One partition for several capacity matrices gives each one's own knapsack."""
    from paper_repro.bounds.interval import _greedy, _knapsacks

    rng = np.random.default_rng(3)
    value = np.abs(rng.normal(size=(9, 784)))
    caps = (rng.uniform(size=(9, 784)), np.where(rng.random((9, 784)) < 0.7, 0.0, 1.0))
    for budget in (0.5, 12.0, 300.0):
        for got, cap in zip(_knapsacks(value, caps, budget), caps, strict=True):
            np.testing.assert_allclose(got, _greedy(value, cap, budget), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("norm", [Norm.LINF, Norm.L1])
def test_lp_displacement_columns_hold_the_exact_region(norm):
    """The displacement bounds of every radius contain the exact room ``min(x_i, ρ)`` down and
    ``min(1 − x_i, ρ)`` up (checked in rationals), including x at 0, 1 and values where
    ``1 − x`` rounds; ``1 − x`` is never rounded down."""
    from fractions import Fraction

    rng = np.random.default_rng(11)
    x = np.concatenate([[0.0, 1.0, 0.5, 1 - 2**-53, 2**-1074, 1e-20, 0.1, 1 / 3], rng.random(8)])
    net = _net(rng, [x.size, 3, 2])
    lp = RelaxedLP(net, x, norm, 1, min_delta=False)
    radii = np.array([0.0, 1e-300, 0.1, 1 / 3, 0.75, 2.0])
    lo, hi = lp._radius_bounds(radii)
    n = x.size
    for r, row_lo, row_hi in zip(radii, lo, hi, strict=True):
        for i in range(n):
            down = min(Fraction(x[i]), Fraction(r))
            up = min(1 - Fraction(x[i]), Fraction(r))
            if norm == Norm.LINF:
                assert Fraction(row_lo[i]) <= -down and Fraction(row_hi[i]) >= up
            else:  # p over pixels that can move up, then q over those that can move down
                p, q = np.flatnonzero(lp.p_idx == i), np.flatnonzero(lp.q_idx == i)
                assert (Fraction(row_hi[p[0]]) >= up) if p.size else up == 0
                assert (Fraction(row_hi[lp.p_idx.size + q[0]]) >= down) if q.size else down == 0
                assert np.all(row_lo[: lp.delta_col] == 0.0)
            if norm == Norm.LINF:  # and not much more (a one-ulp slack at most)
                assert row_hi[i] <= np.nextafter(float(up), np.inf)


def test_symbolic_bounds_memo_gives_the_same_bounds():
    """Nodes that share their shallow splits may reuse those layers' backward bounds: with the
    memo the bounds are identical to a fresh computation, for any order of nodes."""
    rng = np.random.default_rng(5)
    net = _net(rng, [6, 5, 5, 3])
    x = rng.random(6)
    for norm in (Norm.LINF, Norm.L1):
        region = InputRegion(x, 0.5 if norm == Norm.LINF else 1.5, norm)
        base = symbolic_bounds(net, region)
        memo: dict = {}
        for _ in range(40):
            fixed = [rng.integers(-1, 2, size=5).astype(np.int8) for _ in range(2)]
            if rng.random() < 0.5:  # repeat an earlier first layer
                fixed[0][:] = 0
            fresh = symbolic_bounds(net, region, base, fixed)
            cached = symbolic_bounds(net, region, base, fixed, cache=memo)
            for (a, b), (c, d) in zip(fresh, cached, strict=True):
                np.testing.assert_array_equal(a, c)
                np.testing.assert_array_equal(b, d)
        assert any(key[0] == 1 for key in memo)


def test_csr_matvec_equals_scipy_product():
    """The dual products' direct CSR kernel gives scipy's floats exactly (empty rows, int64
    indices and non-float64 matrices, which take the public operator, included)."""
    from paper_repro.bounds.safe import csr_matvec

    rng = np.random.default_rng(2)
    for i in range(60):
        m, n = rng.integers(1, 40, size=2)
        a = sp.random(m, n, density=rng.random(), format="csr", random_state=i)
        if i % 3 == 0:
            a.indptr, a.indices = a.indptr.astype(np.int64), a.indices.astype(np.int64)
        v = rng.normal(size=n)
        np.testing.assert_array_equal(csr_matvec(a, v), a @ v)
        np.testing.assert_array_equal(csr_matvec(a.astype(np.float32), v), a.astype(np.float32) @ v)


@pytest.mark.parametrize("norm", [Norm.LINF, Norm.L1])
@pytest.mark.parametrize("seed", range(6))
def test_margin_lower_bounds_hold_on_samples_and_splits(norm, seed):
    """The CROWN margin bound of the branch-and-bound filter: ``logit_j − logit_t`` at every
    sampled point (of the node's split region) is ≥ the bound."""
    rng = np.random.default_rng(100 + seed)
    net = _net(rng, [5, 6, 5, 4])
    x = rng.random(5)
    region = InputRegion(x, 0.3 if norm == Norm.LINF else 0.7, norm)
    base = symbolic_bounds(net, region, interval_bounds(net, region))
    pts = _samples(rng, region, 1500)
    pre = pts @ net.weights[0].T + net.biases[0]
    unstable = np.flatnonzero((base[0][0] < 0) & (base[0][1] > 0))
    fixed = [np.zeros(n, np.int8) for n in net.hidden_sizes]
    keep = np.ones(len(pts), bool)
    if unstable.size:  # one first-layer split, as a node would have
        i = int(unstable[0])
        fixed[0][i] = 1 if seed % 2 else -1
        keep = pre[:, i] >= 0 if seed % 2 else pre[:, i] <= 0
    relax: list = []
    bounds = symbolic_bounds(net, region, base, fixed, relaxations=relax)
    logits = net.forward(pts[keep])
    for t in range(4):
        lo = margin_lower_bounds(net, region, relax, t)
        assert lo[t] == 0.0
        gap = logits - logits[:, [t]]
        assert np.all(gap >= lo[None, :]), f"target {t}: a sample beats the bound"
        assert np.all(lo <= gap.min(axis=0) + 1e-12)
    assert all(np.all(lo <= hi) for lo, hi in bounds)


def test_margin_lower_bounds_prove_an_unreachable_target():
    """A target whose logit is far below another's everywhere in the region: some bound > 0;
    and a reachable one (the class at ``x`` itself): no bound > 0."""
    w1 = np.array([[1.0, 0.0], [0.0, 1.0]])
    w2 = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    net = ReluNetwork.from_arrays([w1, w2], [np.zeros(2), np.array([0.0, 0.0, -5.0])])
    x = np.array([0.6, 0.4])
    region = InputRegion(x, 0.1, Norm.LINF)
    relax: list = []
    symbolic_bounds(net, region, relaxations=relax)
    assert (margin_lower_bounds(net, region, relax, 2) > 0).any()
    assert not (margin_lower_bounds(net, region, relax, 0) > 0).any()
