"""Refined hidden-layer bounds (:mod:`paper_repro.bounds.refine_layers`): sound against the exact
range of every neuron (one LP per activation pattern, independent of the engines), never looser
than the bounds they start from, tighter somewhere, and cut short soundly by a deadline."""

from __future__ import annotations

import time

import numpy as np
import pytest

from paper_repro.bounds.refine_layers import RefineOptions, refine_bounds, refine_layer
from paper_repro.exact.engines.split_bab import SplitBabOptions, root_bounds
from paper_repro.network import ReluNetwork


def _net(seed: int, sizes=(3, 4, 4, 4, 2)) -> ReluNetwork:
    rng = np.random.default_rng(seed)
    return ReluNetwork.from_arrays(
        [rng.normal(size=(sizes[k + 1], sizes[k])) for k in range(len(sizes) - 1)],
        [rng.normal(size=sizes[k + 1]) * 0.3 for k in range(len(sizes) - 1)],
    )


def _box(seed: int, n: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1000 + seed)
    lo = rng.uniform(-1, 0, n)
    return lo, lo + rng.uniform(0.5, 1.5, n)


def _exact_range(net, lo, hi, k, oracle) -> tuple[np.ndarray, np.ndarray]:
    """Exact min and max of every pre-activation of hidden layer ``k`` over the box."""
    sub = ReluNetwork.from_arrays(net.weights[:k], net.biases[:k])
    n = sub.num_classes
    low = [oracle(sub, lo, hi, [(np.eye(n)[i : i + 1], np.zeros(1))]) for i in range(n)]
    up = [-oracle(sub, lo, hi, [(-np.eye(n)[i : i + 1], np.zeros(1))]) for i in range(n)]
    return np.array(low), np.array(up)


@pytest.mark.parametrize("seed", range(8))
def test_refined_bounds_hold_the_exact_range_and_never_loosen(seed, pattern_lp_oracle):
    net = _net(seed)
    lo, hi = _box(seed)
    pre = root_bounds(net, lo, hi, SplitBabOptions())
    refined, report = refine_bounds(net, lo, hi, pre, RefineOptions(layers=3, depth=4))
    assert report.layers == (2, 3) and report.complete
    for k, ((l0, u0), (l1, u1)) in enumerate(zip(pre, refined, strict=True), start=1):
        assert np.all(l1 >= l0) and np.all(u1 <= u0)
        if k == 1:  # not refined
            assert np.array_equal(l0, l1) and np.array_equal(u0, u1)
            continue
        exact_lo, exact_hi = _exact_range(net, lo, hi, k, pattern_lp_oracle)
        assert np.all(l1 <= exact_lo + 1e-9), (k, l1 - exact_lo)
        assert np.all(u1 >= exact_hi - 1e-9), (k, exact_hi - u1)


def test_refinement_tightens_loose_bounds(pattern_lp_oracle):
    """Over several networks, the refined second-layer bounds close much of the gap between
    α-CROWN's and the exact range (a refinement that did nothing would fail)."""
    gap_before = gap_after = 0.0
    for seed in range(6):
        net = _net(seed, (3, 6, 6, 2))
        lo, hi = _box(seed)
        pre = root_bounds(net, lo, hi, SplitBabOptions())
        (l1, u1), nodes, full = refine_layer(net, lo, hi, pre, 2, RefineOptions(depth=6))
        assert full and nodes > 0
        exact_lo, exact_hi = _exact_range(net, lo, hi, 2, pattern_lp_oracle)
        gap_before += float(np.sum(exact_lo - pre[1][0]) + np.sum(pre[1][1] - exact_hi))
        gap_after += float(np.sum(exact_lo - l1) + np.sum(u1 - exact_hi))
    assert gap_before > 0.1
    assert gap_after < 0.5 * gap_before, (gap_before, gap_after)


def test_a_past_deadline_refines_nothing():
    net = _net(0)
    lo, hi = _box(0)
    pre = root_bounds(net, lo, hi, SplitBabOptions())
    out, report = refine_bounds(net, lo, hi, pre, RefineOptions(), deadline=time.monotonic())
    assert report.layers == () and not report.complete and report.nodes == 0
    for (a, b), (c, d) in zip(pre, out, strict=True):
        assert np.array_equal(a, c) and np.array_equal(b, d)


def test_a_deadline_during_the_layer_keeps_what_is_certified(pattern_lp_oracle, monkeypatch):
    """Stopping after the first level still gives sound bounds (the open subdomains are
    certified as leaves)."""
    net = _net(3)
    lo, hi = _box(3)
    pre = root_bounds(net, lo, hi, SplitBabOptions())
    import paper_repro.bounds.refine_layers as mod

    class Clock:  # the deadline (0.5) passes after the first level
        calls = 0

        @classmethod
        def monotonic(cls) -> float:
            cls.calls += 1
            return 0.0 if cls.calls == 1 else 1.0

    monkeypatch.setattr(mod, "time", Clock)
    (l1, u1), nodes, full = refine_layer(net, lo, hi, pre, 3, RefineOptions(depth=5), 0.5)
    assert not full and nodes > 0
    exact_lo, exact_hi = _exact_range(net, lo, hi, 3, pattern_lp_oracle)
    assert np.all(l1 <= exact_lo + 1e-9) and np.all(u1 >= exact_hi - 1e-9)
    assert np.all(l1 >= pre[2][0]) and np.all(u1 <= pre[2][1])


def test_options_reject_negative_counts():
    with pytest.raises(ValueError):
        RefineOptions(depth=-1)
    with pytest.raises(ValueError):
        RefineOptions(chunk=0)
