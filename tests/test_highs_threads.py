"""HiGHS's per-thread task scheduler must not decide whether the engine's LPs run.

HiGHS 1.16 gives a default (``threads = 0``) scheduler every hardware thread instead of half of
them, and refuses a later run in the same thread whose ``threads`` option differs
(``run() == kError``, model status ``kNotset``). Before :mod:`paper_repro.bounds.highs`, every
node LP after such a foreign instance was refused and the search ended without bounds. Each
scenario runs in a fresh thread, whose scheduler no other test has touched and which it does
not leave behind for later tests.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor

import highspy
import numpy as np
import pytest
from test_engine_bab import _random_query

from paper_repro.bounds.highs import SolverError, new_highs, run_highs
from paper_repro.bounds.interval import InputRegion
from paper_repro.bounds.relaxed_lp import RelaxedLP
from paper_repro.bounds.symbolic import symbolic_bounds
from paper_repro.exact.engines.bab import BabEngine, BabOptions
from paper_repro.exact.engines.reference import reference_minimal_distance
from paper_repro.query import Norm


def _in_fresh_thread(fn):
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()


def _foreign_run(threads: int) -> None:
    """A user's own highspy model, run with ``threads`` (fixes this thread's scheduler)."""
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", threads)
    h.addVars(1, np.zeros(1), np.ones(1))
    assert h.run() == highspy.HighsStatus.kOk


def _node_lp_value(norm: Norm) -> tuple[bool, float, float]:
    """(optimal, value, safe bound) of the root relaxation LP of a small query."""
    q = _random_query(3, norm, hidden=(4, 4), n_in=6)
    bounds = symbolic_bounds(q.network, InputRegion(q.x, 0.5, norm))
    lp = RelaxedLP(q.network, q.x, norm, (q.label + 1) % 3)
    lp.configure(0.5, bounds, None)
    sol = lp.solve(10.0)
    return sol.optimal, sol.value, sol.safe_bound


@pytest.mark.parametrize("norm", [Norm.LINF, Norm.L1])
@pytest.mark.parametrize("threads", [2, 3])
def test_node_lp_solves_after_a_foreign_scheduler(norm, threads):
    """A thread whose scheduler another instance created with 2 or 3 threads still solves the
    node LP, to the same value as a thread the engine had to itself."""
    alone = _in_fresh_thread(lambda: _node_lp_value(norm))

    def after_foreign():
        _foreign_run(threads)
        return _node_lp_value(norm)

    shared = _in_fresh_thread(after_foreign)
    assert alone[0] and shared[0]
    assert shared[1] == pytest.approx(alone[1], rel=1e-9, abs=1e-12)
    assert math.isfinite(shared[2]) and shared[2] <= shared[1] + 1e-9


@pytest.mark.parametrize("norm", [Norm.LINF, Norm.L1])
def test_search_after_the_reference_in_the_same_thread(norm):
    """The issue's sequence: the brute-force reference, then the engine, in one thread."""

    def run():
        q = _random_query(10, norm, hidden=(4, 4), n_in=6)
        ref = reference_minimal_distance(q).delta
        out = BabEngine(q, BabOptions(tolerance=1e-8)).search(time.monotonic() + 30.0)
        return ref, out

    ref, out = _in_fresh_thread(run)
    assert out.finished and out.best is not None
    assert out.lower <= ref + 1e-12 and out.best.distance - out.lower <= 1e-8 + 1e-12
    assert abs(out.best.distance - ref) <= 1e-7 * max(1.0, ref)


class _RefusingHighs:
    """Stands in for a HiGHS that refuses every run before solving."""

    def __init__(self):
        self.runs, self.threads = 0, None

    def run(self):
        self.runs += 1
        return highspy.HighsStatus.kError

    def getModelStatus(self):
        return highspy.HighsModelStatus.kNotset

    def setOptionValue(self, name, value):
        self.threads = value if name == "threads" else self.threads
        return highspy.HighsStatus.kOk

    def version(self):
        return "stub"


def test_a_persistent_refusal_is_an_error_not_an_empty_result():
    h = _RefusingHighs()
    with pytest.raises(SolverError, match="refused to run"):
        run_highs(h)
    assert h.runs == 2 and h.threads == 0  # retried once on the thread's own scheduler


def test_unknown_or_rejected_options_are_errors():
    with pytest.raises(SolverError, match="no_such_option"):
        new_highs({"no_such_option": 1})
    with pytest.raises(SolverError, match="threads"):
        new_highs({"threads": "many"})
    h = new_highs({"presolve": "off"})
    assert h.getOptionValue("threads")[1] == 1 and h.getOptionValue("presolve")[1] == "off"
