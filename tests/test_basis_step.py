"""The basis step of the Newton node bound (:func:`paper_repro.bounds.basis_step.step_radius`)
against real HiGHS solves at the new radius."""

from __future__ import annotations

import numpy as np
import pytest

from paper_repro.bounds.basis_step import step_radius
from paper_repro.bounds.relaxed_lp import RelaxedLP
from paper_repro.query import Norm


def _feasible(lp: RelaxedLP, v: np.ndarray, tol: float = 1e-8) -> bool:
    act = lp.matrix() @ v
    return bool(
        np.all(v >= lp.col_lo - tol)
        and np.all(v <= lp.col_hi + tol)
        and np.all(act >= lp.row_lo - tol)
        and np.all(act <= lp.row_hi + tol)
    )


@pytest.mark.parametrize("norm", [Norm.LINF, Norm.L1])
def test_step_matches_a_real_solve_at_the_new_radius(norm, random_relaxation):
    """Whenever a step is taken, its point is feasible at the new radius (checked on the full
    matrix) and a real solve there reaches the same objective; steps are taken on some radii and
    refused on others (the basis stops being feasible)."""
    cap = 0.6 if norm == Norm.LINF else 3.0
    taken = refused = 0
    for seed in range(12):
        net, x, target, bounds = random_relaxation(seed, norm, cap)
        lp = RelaxedLP(net, x, norm, target, min_delta=False)
        lp.configure(cap, bounds, None)
        for r0 in cap * np.array([0.05, 0.2, 0.4]):
            for r1 in r0 * np.array([1.0 + 1e-6, 1.01, 1.1, 1.5, 2.5]):
                lp.set_probe(r0)
                sol = lp.solve(10.0, bound=False)
                lp.set_probe(r1)
                step = step_radius(lp, sol, r0, r1)
                if step is None:
                    refused += 1
                    continue
                taken += 1
                assert step.col_value[lp.slack_col] <= 1e-9
                assert _feasible(lp, step.col_value)
                real = lp.solve(10.0, bound=False)
                assert real.optimal
                assert abs(real.value - step.value) <= 1e-8
                assert np.array_equal(step.row_dual, sol.row_dual)
    assert taken >= 10 and refused >= 10
