"""The stop probe of the Newton node bound (``newton_bound(stop_first=True)``) and the free
output slack it needs, against Newton's converged root and against an unbounded slack."""

from __future__ import annotations

import numpy as np
import pytest

from paper_repro.bounds.relaxed_lp import RelaxedLP
from paper_repro.exact.engine_parts.node_bound import newton_bound
from paper_repro.query import Norm


def _case(make, seed: int, norm: Norm, cap: float):
    """A random query's fixed-radius LP with a free slack, its bounds and one first-layer split
    (a node of the tree)."""
    net, x, target, bounds = make(seed, norm, cap, hidden=(5, 4))
    fixed = [np.zeros(h, np.int8) for h in net.hidden_sizes]
    lo, hi = bounds[0]
    unstable = np.flatnonzero((lo < 0) & (hi > 0))
    if unstable.size:
        fixed[0][unstable[seed % unstable.size]] = 1 if seed % 2 else -1
    lp = RelaxedLP(net, x, norm, target, min_delta=False, free_slack=True)
    return lp, bounds, fixed


@pytest.mark.parametrize("norm", [Norm.LINF, Norm.L1])
def test_the_slack_floor_cuts_nothing(norm, random_relaxation):
    """``min s`` with the free slack's floor equals ``min s`` with no floor at all (a slack of
    −1e6), at radii on both sides of the root: the floor never binds."""
    cap = 0.6 if norm == Norm.LINF else 3.0
    negative = 0
    for seed in range(10):
        lp, bounds, fixed = _case(random_relaxation, seed, norm, cap)
        for radius in cap * np.array([0.1, 0.5, 1.0]):
            lp.configure(cap, bounds, fixed)
            lp.set_probe(radius)
            floored = lp.solve(10.0, bound=False)
            floor = lp.col_lo[lp.slack_col]
            lp.col_lo[lp.slack_col] = -1e6
            free = lp.solve(10.0, bound=False)
            assert floored.optimal == free.optimal
            if free.optimal:
                assert abs(floored.value - free.value) <= 1e-7
                assert free.value > floor + 0.5  # far from the floor
                negative += free.value < -1e-6
    assert negative >= 5  # the probes beyond the root are exercised


@pytest.mark.parametrize("norm", [Norm.LINF, Norm.L1])
def test_stop_probe_agrees_with_newton(norm, random_relaxation):
    """One solve at the stop radius prunes exactly the nodes whose converged Newton root reaches
    the stop (up to 1e-6), and otherwise returns a bound no larger than that root."""
    cap = 0.6 if norm == Norm.LINF else 3.0
    pruned = branched = 0
    for seed in range(16):
        lp, bounds, fixed = _case(random_relaxation, seed, norm, cap)
        lp.configure(cap, bounds, fixed)
        exact = newton_bound(lp, 0.0, cap, np.inf, steps=50)
        assert exact.converged
        for stop in cap * np.array([0.05, 0.3, 0.6, 0.9, 1.0]):
            lp.configure(cap, bounds, fixed)
            res = newton_bound(lp, 0.0, cap, np.inf, steps=50, stop_at=stop, stop_first=True)
            assert res.solves == 1
            if res.lb >= stop:
                pruned += 1
                assert exact.lb >= stop * (1 - 1e-6)
            else:
                branched += 1
                assert res.lb <= exact.lb * (1 + 1e-9) + 1e-12
                assert exact.lb <= stop * (1 + 1e-6)
                assert res.weights is not None
    assert pruned >= 10 and branched >= 10
