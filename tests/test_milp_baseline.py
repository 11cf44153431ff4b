"""The big-M MILP baseline: min-δ optimiser and fixed-δ decider on a hand-derived network."""

from __future__ import annotations

import time

import numpy as np

from paper_repro.exact.decide import Verdict
from paper_repro.exact.engines.milp import milp_decider, milp_minimize
from paper_repro.exact.witnesses.witness import exact_margin
from paper_repro.network import ReluNetwork
from paper_repro.query import Norm, Query


def _two_region_net() -> ReluNetwork:
    """y0 = 0.3, y1 = 2·relu(x1 − 0.5) + 2·relu(0.25 − x2): class 1 iff the sum ≥ 0.3.
    From x = (0.4, 0.3): raising x1 to 0.65 (δ=0.25) or lowering x2 to 0.1 (δ=0.2) or both."""
    w1 = np.array([[1.0, 0.0], [0.0, -1.0]])
    b1 = np.array([-0.5, 0.25])
    w2 = np.array([[0.0, 0.0], [2.0, 2.0]])
    return ReluNetwork.from_arrays([w1, w2], [b1, np.array([0.3, 0.0])])


def test_milp_minimize_hand_network():
    # L1: lowering x2 alone costs 0.2 (every unit spent on x1 first needs 0.1 of dead budget)
    net = _two_region_net()
    x = np.array([0.4, 0.3])
    q1 = Query(net, x, 0, 1, Norm.L1)
    out = milp_minimize(q1, time.monotonic() + 30, tolerance=1e-7)
    assert out.finished and abs(out.best.distance - 0.2) < 1e-7 and out.lower <= 0.2 + 1e-12
    assert exact_margin(net, out.best.x, 1) >= 0
    # L∞: x1 = 0.4 + d, x2 = 0.3 − d: 2(d − 0.1)⁺ + 2(d − 0.05)⁺ ≥ 0.3 ⇒ d = 0.15
    qi = Query(net, x, 0, 1, Norm.LINF)
    out = milp_minimize(qi, time.monotonic() + 30, tolerance=1e-7)
    assert abs(out.best.distance - 0.15) < 1e-7 and out.lower <= 0.15 + 1e-12


def test_milp_decider_both_sides():
    q = Query(_two_region_net(), np.array([0.4, 0.3]), 0, 1, Norm.LINF)
    decide = milp_decider()
    yes = decide(q, 0.15 + 1e-7, 30)
    assert yes.verdict == Verdict.ADVERSARIAL
    assert np.max(np.abs(yes.witness - q.x)) <= 0.15 + 1e-7
    assert exact_margin(q.network, yes.witness, 1) >= 0
    assert decide(q, 0.15 - 1e-6, 30).verdict == Verdict.ROBUST
