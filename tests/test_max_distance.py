"""``SolveOptions.max_distance``: a minimal-distance search resolved only up to a cap (Dathathri
et al. need ρ up to δ = 20). Below the cap the answer is the uncapped one; beyond it the record
proves ``δ* ≥ cap`` (status ``beyond``) — checked against uncapped searches on random networks."""

from __future__ import annotations

import numpy as np
import pytest

from paper_repro.errors import PaperReproError
from paper_repro.exact.search import Backend, Protocol, SolveOptions, minimal_adversarial
from paper_repro.network import ReluNetwork
from paper_repro.query import Norm, Query, Status


def sum_net() -> ReluNetwork:
    """y0 = 0.5, y1 = relu(x1) + relu(x2): class 1 iff x1 + x2 ≥ 0.5; from 0: δ*_L1 = 0.5,
    δ*_L∞ = 0.25."""
    return ReluNetwork.from_arrays(
        [np.eye(2), np.array([[0.0, 0.0], [1.0, 1.0]])], [np.zeros(2), np.array([0.5, 0.0])]
    )


@pytest.mark.parametrize(("norm", "exact"), [(Norm.L1, 0.5), (Norm.LINF, 0.25)])
def test_cap_above_and_below_the_answer(norm, exact):
    q = Query(sum_net(), np.zeros(2), 0, 1, norm)
    above = minimal_adversarial(q, options=SolveOptions(tolerance=1e-8, max_distance=0.9))
    assert above.status == Status.OPTIMAL and abs(above.upper - exact) < 1e-6
    below = minimal_adversarial(q, options=SolveOptions(tolerance=1e-8, max_distance=exact / 2))
    assert below.status == Status.BEYOND
    assert below.lower >= exact / 2 and below.lower <= exact + 1e-9  # proven, and sound
    assert "max_distance" in below.message


def test_cap_only_for_the_exact_bab_search():
    q = Query(sum_net(), np.zeros(2), 0, 1, Norm.L1)
    with pytest.raises(PaperReproError, match="max_distance"):
        minimal_adversarial(q, Backend.MILP, SolveOptions(max_distance=1.0))
    with pytest.raises(PaperReproError, match="max_distance"):
        minimal_adversarial(
            q, options=SolveOptions(max_distance=1.0, protocol=Protocol.BINARY_SEARCH)
        )
    with pytest.raises(PaperReproError, match="> 0"):
        SolveOptions(max_distance=0.0)


@pytest.mark.parametrize("seed", range(6))
def test_capped_search_agrees_with_the_uncapped_one(seed):
    rng = np.random.default_rng(seed)
    net = ReluNetwork.from_arrays(
        [rng.normal(size=(8, 6)), rng.normal(size=(6, 8)), rng.normal(size=(3, 6))],
        [rng.normal(size=8) * 0.3, rng.normal(size=6) * 0.3, rng.normal(size=3) * 0.3],
    )
    x = rng.random(6)
    label = int(np.argmax(net.forward(x)))
    opts = SolveOptions(tolerance=1e-6, timeout=30.0)
    for norm in (Norm.L1, Norm.LINF):
        for target in (None, (label + 1) % 3):
            q = Query(net, x, label, target, norm)
            full = minimal_adversarial(q, options=opts)
            assert full.status == Status.OPTIMAL
            if not np.isfinite(full.upper):
                continue
            for cap in (0.5 * full.upper, 2.0 * full.upper):
                got = minimal_adversarial(q, options=SolveOptions(1e-6, max_distance=cap))
                if cap < full.lower:
                    assert got.status == Status.BEYOND
                    assert cap <= got.lower <= full.upper + 1e-9
                else:
                    assert got.status == Status.OPTIMAL
                    assert abs(got.upper - full.upper) <= 2e-6
