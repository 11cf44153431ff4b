"""First-layer convex-hull cuts (Anderson et al., 2020): each cut holds exactly (in rationals) at
every point of the box with its true phase, separates what the triangle relaxation admits, keeps
the LP's safe bound sound, and leaves the branch-and-bound's δ* unchanged."""

from __future__ import annotations

import math
import time
from fractions import Fraction

import numpy as np
import pytest

from paper_repro.bounds.hull_cuts import HullCutPool, hull_cuts
from paper_repro.bounds.interval import InputRegion, interval_bounds
from paper_repro.bounds.relaxed_lp import RelaxedLP
from paper_repro.exact.engine_parts.node_bound import NodeBound
from paper_repro.exact.engines.bab import BabEngine, BabOptions
from paper_repro.exact.engines.reference import reference_minimal_distance
from paper_repro.network import ReluNetwork
from paper_repro.query import Norm, Query

F = Fraction


def _cut_lhs(w, ell, in_set, x, xp, z) -> Fraction:
    """``y − Σ_{i∈I} w_i (x′_i − x_i) − ℓ z`` at the true point ``(x′, relu(w·x′ + b), z)``
    (without ``y``), in rationals."""
    s = sum(F(float(w[i])) * (F(float(xp[i])) - F(float(x[i]))) for i in np.flatnonzero(in_set))
    return -s - F(float(ell)) * z


@pytest.mark.parametrize("seed", range(6))
def test_every_cut_holds_exactly_on_the_box(seed):
    rng = np.random.default_rng(seed)
    m, n = 5, 7
    w, b = rng.normal(size=(m, n)), rng.normal(size=m) * 0.3
    x = rng.random(n)
    x[:2] = [0.0, 1.0]  # pixels on the edge of [0, 1]
    box = InputRegion(x, float(rng.uniform(0.05, 0.6)), Norm.LINF)
    cuts = []
    for _ in range(8):  # cuts separated at arbitrary points (x̂, ŷ, ẑ)
        xh = rng.uniform(box.lo, box.hi)
        cuts.append(hull_cuts(w, b, box, xh, rng.random(m) * 3, rng.random(m)))
    corners = rng.integers(0, 2, size=(40, n)).astype(bool)
    points = [np.where(c, box.hi, box.lo) for c in corners] + [
        rng.uniform(box.lo, box.hi) for _ in range(40)
    ]
    for xp in points:
        for j in range(m):
            pre = sum(F(float(w[j, i])) * F(float(xp[i])) for i in range(n)) + F(float(b[j]))
            y, z = max(pre, F(0)), F(1) if pre >= 0 else F(0)
            for in_set, ell, rhs, _ in cuts:
                lhs = y + _cut_lhs(w[j], ell[j], in_set[j], x, xp, z)
                assert lhs <= F(float(rhs[j])), (seed, j)


def test_cut_separates_the_triangle_point():
    """y = relu(x1 + x2 − 1) on [0,1]²: the triangle admits y = 0.5 at x′ = (1, 0), where the
    neuron's hull (and the true value) is 0; the cut there is violated by 0.5."""
    w, b = np.array([[1.0, 1.0]]), np.array([-1.0])
    box = InputRegion(np.array([0.5, 0.5]), 0.5, Norm.LINF)
    _, _, _, violation = hull_cuts(
        w, b, box, np.array([1.0, 0.0]), np.array([0.5]), np.array([0.5])
    )
    assert violation[0] == pytest.approx(0.5, abs=1e-12)
    _, _, _, violation = hull_cuts(
        w, b, box, np.array([1.0, 1.0]), np.array([1.0]), np.array([1.0])
    )
    assert violation[0] <= 1e-12  # a true point of the graph is never cut off


def _query(seed: int, norm: Norm) -> Query:
    rng = np.random.default_rng(seed)
    sizes = [6, 4, 4, 3]
    ws = [rng.normal(size=(sizes[k + 1], sizes[k])) for k in range(3)]
    bs = [rng.normal(size=sizes[k + 1]) * 0.2 for k in range(3)]
    x = rng.random(6)
    net = ReluNetwork.from_arrays(ws, bs)
    bs[-1] = bs[-1] - net.forward(x) + rng.random(3) * 0.3
    net = ReluNetwork.from_arrays(ws, bs)
    label = int(np.argmax(net.forward(x)))
    return Query(net, x, label, (label + 1) % 3, norm)


@pytest.mark.parametrize("norm", [Norm.LINF, Norm.L1])
def test_cut_rows_keep_the_lp_consistent_and_dropping_them_restores_it(norm):
    """Separated at the relaxation's optimum, cuts enter HiGHS and the safe-bound matrix alike
    (safe bound ≤ optimum; the optimum never falls); :meth:`HullCutPool.clear` restores the LP."""
    q = _query(3, norm)
    radius = 0.4 if norm == Norm.LINF else 0.5
    region = InputRegion(q.x, radius, norm)
    bounds = interval_bounds(q.network, region)
    lp = RelaxedLP(q.network, q.x, norm, q.targets()[0], min_delta=False, indicators=True)
    pool = HullCutPool(lp, max_cuts=40)
    lp.configure(radius, bounds, None)
    before = lp.solve(10.0)
    free = (bounds[0][0] < 0) & (bounds[0][1] > 0)
    sol = before
    for _ in range(5):
        if pool.separate(sol.col_value, region, free) == 0:
            break
        sol = lp.solve(10.0)
        assert sol.safe_bound <= sol.value + 1e-9
    assert pool.added > 0 and sol.value >= before.value - 1e-9
    assert lp.relu_weights(sol.row_dual)[0].shape == (4,)
    pool.clear()
    assert lp.base.shape[0] == lp.highs.getNumRow() == len(lp.row_lo)
    again = lp.solve(10.0)
    assert again.value == pytest.approx(before.value, abs=1e-9)


@pytest.mark.parametrize("norm", [Norm.LINF, Norm.L1])
def test_bab_with_hull_cuts_finds_the_reference_delta(norm):
    """With cuts from the first node on (Newton node bounds for both norms, so L1's p/q columns
    get cuts too), the branch-and-bound still finds the brute-force δ* on 12 random queries, and
    cuts were actually added."""
    added = 0
    for seed in range(12):
        q = _query(20 + seed, norm)
        ref = reference_minimal_distance(q).delta
        options = BabOptions(
            tolerance=1e-8, hull_cuts=30, cuts_after=0, cut_rounds=2, node_bound=NodeBound.NEWTON
        )
        engine = BabEngine(q, options)
        out = engine.search(time.monotonic() + 30.0)
        added += sum(pool.added for pool in engine.pools.values())
        assert out.finished
        upper = math.inf if out.best is None else out.best.distance
        if math.isinf(ref):
            assert math.isinf(upper)
            continue
        assert out.lower <= ref + 1e-12
        assert abs(upper - ref) <= 1e-7 * max(1.0, ref)
    assert added > 0
