"""The CROWN lower bound that tightens open brackets is sound and below the exact δ*."""

from __future__ import annotations

import numpy as np
import pytest

from paper_repro.exact.engine_parts.certified_start import crown_lower_bound
from paper_repro.exact.engines.reference import reference_minimal_distance
from paper_repro.exact.search import Backend, SolveOptions, minimal_adversarial
from paper_repro.network import ReluNetwork
from paper_repro.query import Norm, Query, Status


def random_query(seed: int, norm: Norm, target: int | None) -> Query:
    rng = np.random.default_rng(seed)
    net = ReluNetwork.from_arrays(
        [rng.standard_normal((6, 5)), rng.standard_normal((4, 6))],
        [rng.standard_normal(6) * 0.3, rng.standard_normal(4) * 0.3],
    )
    x = rng.random(5)
    label = int(np.argmax(net.forward(x)))
    t = None if target is None else (label + target) % 4
    return Query(net, x, label, t, norm)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("norm", [Norm.LINF, Norm.L1])
def test_crown_lower_is_below_exact_delta(seed, norm):
    for target in (None, 1, 2):
        q = random_query(seed, norm, target)
        ref = reference_minimal_distance(q)
        if not np.isfinite(ref.delta):
            continue
        bound = crown_lower_bound(q, ref.delta * 1.5 + 1e-3)
        assert 0.0 <= bound <= ref.delta + 1e-12


def test_timeout_bracket_is_raised_but_stays_sound():
    q = random_query(3, Norm.LINF, None)
    ref = reference_minimal_distance(q)
    # A tiny time budget leaves the bracket open; the CROWN bound may lift its lower end.
    res = minimal_adversarial(q, Backend.BAB, SolveOptions(timeout=1e-6))
    assert res.lower <= ref.delta + 1e-12 <= res.upper + 2e-12
    if res.status == Status.TIMEOUT and np.isfinite(res.upper):
        assert res.extra["crown_lower"] <= ref.delta + 1e-12
