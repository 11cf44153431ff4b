"""z3 and cvc5 (via PySMT) run end to end on the engine's brackets: region-restricted queries at
the witness's activation pattern, and whole queries on tiny networks (issue 16, item 6)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from paper_repro.errors import PaperReproError
from paper_repro.exact.decide import SmtSolver, Verdict
from paper_repro.exact.engines.smt import check_witness_smt, encode
from paper_repro.exact.engines.smt_region import (
    _hard_limited,
    ask_solvers,
    freeze_inputs,
    installed_solvers,
    witness_phases,
)
from paper_repro.exact.search import Backend, SolveOptions, minimal_adversarial
from paper_repro.experiments.smt_checks import (
    ANSWER_COLUMNS,
    FROZEN_COLUMNS,
    SOLVE_COLUMNS,
    margin_pixels,
    solve_frozen,
    solve_regions,
    solve_whole,
)
from paper_repro.network import ReluNetwork
from paper_repro.query import Norm, Query

SOLVERS = installed_solvers()
TOL = 1e-4


def _network(seed: int = 11) -> tuple[ReluNetwork, np.ndarray, int]:
    """10 inputs, hidden layers of 6 and 5 ReLUs, 4 classes."""
    rng = np.random.default_rng(seed)
    sizes = [10, 6, 5, 4]
    ws = [rng.normal(size=(sizes[k + 1], sizes[k])) for k in range(3)]
    bs = [rng.normal(size=sizes[k + 1]) * 0.3 for k in range(3)]
    net = ReluNetwork.from_arrays(ws, bs)
    x = rng.random(10)
    return net, x, int(np.argmax(net.forward(x)))


@pytest.fixture(scope="module")
def solved(engine_record):
    """Engine records (targeted and untargeted, L∞ and L1) for the tiny network."""
    net, x, label = _network()
    rows = []
    for norm in (Norm.LINF, Norm.L1):
        for target in [*(t for t in range(4) if t != label), None]:
            q = Query(net, x, label, target, norm)
            res = minimal_adversarial(q, Backend.BAB, SolveOptions(tolerance=TOL, timeout=30))
            if res.witness is None:  # unreachable target of a random net
                continue
            rows.append(engine_record(norm, target, label, res))
    records = pd.DataFrame(rows)
    assert len(records) >= 4 and records["target"].isna().sum() == 2
    return records, {0: x}, {"tiny": net}


def test_installed_solvers_include_z3():
    assert SmtSolver.Z3 in SOLVERS


def test_region_queries_agree_with_the_engine(solved):
    records, originals, nets = solved
    out = solve_regions(records, originals, nets, solvers=SOLVERS, timeout=20, tolerance=TOL)
    assert tuple(out.columns) == SOLVE_COLUMNS
    assert len(out) == 2 * len(SOLVERS) * len(records)
    assert set(out["solver"]) == {s.value for s in SOLVERS}
    assert (out.loc[out["question"] == "upper", "verdict"] == "sat").all()
    assert (out.loc[out["question"] == "lower", "verdict"] == "unsat").all()
    assert out["agrees"].eq(True).all()
    assert out["target"].isna().sum() == 2 * 2 * len(SOLVERS)  # untargeted records kept
    sample = solve_regions(records, originals, nets, solvers=("z3",), limit=2, seed=1)
    assert len(sample) == 4


def test_a_wrong_lower_bound_is_a_disagreement(solved):
    records, originals, nets = solved
    bad = records.copy()
    bad["lower"] = bad["upper"] + 0.05  # above δ*: the witness's region has a closer example
    out = solve_regions(bad, originals, nets, solvers=SOLVERS, tolerance=TOL)
    lower = out[out["question"] == "lower"]
    assert (lower["verdict"] == "sat").all() and not lower["agrees"].any()
    assert out.loc[out["question"] == "upper", "agrees"].all()


def test_witness_lies_in_its_region(solved):
    records, originals, nets = solved
    net, r = nets["tiny"], records.iloc[0]
    w = np.asarray(r["witness"])
    phases = witness_phases(net, w)
    assert [len(p) for p in phases] == [6, 5]
    q = Query(net, originals[0], int(r["label"]), int(r["target"]), Norm(r["norm"]))
    enc = encode(q, float(r["upper"]), phases=phases)
    assert enc.relus == () and enc.stable == 11  # no disjunction left
    assert check_witness_smt(q, w, float(r["upper"]))
    with pytest.raises(PaperReproError, match="one phase per hidden ReLU"):
        encode(q, 0.1, phases=[phases[0]])
    with pytest.raises(PaperReproError, match="witness"):
        witness_phases(net, np.zeros(3))


def test_a_relu_exactly_at_zero_is_fixed_inactive():
    net = ReluNetwork.from_arrays(
        [np.array([[1.0, -1.0]]), np.array([[1.0], [-1.0]])], [np.zeros(1), np.zeros(2)]
    )
    assert witness_phases(net, np.array([0.5, 0.5])) == ((False,),)
    assert witness_phases(net, np.array([0.75, 0.5])) == ((True,),)


def test_whole_queries_agree_with_the_engine():
    net, x, label = _network()
    for norm in (Norm.LINF, Norm.L1):
        q = Query(net, x, label, None, norm)
        out = solve_whole(q, solvers=SOLVERS, tolerance=TOL)  # runs the engine first
        assert tuple(out.columns) == ANSWER_COLUMNS and len(out) == 2 * len(SOLVERS)
        assert out["agrees"].eq(True).all()
        res = minimal_adversarial(q, Backend.BAB, SolveOptions(tolerance=TOL))
        wrong = solve_whole(q, res.upper + 0.05, res.upper, solvers=("z3",), tolerance=TOL)
        assert wrong.set_index("question")["verdict"].to_dict() == {"upper": "sat", "lower": "sat"}
        assert wrong.set_index("question")["agrees"].to_dict() == {"upper": True, "lower": False}


def test_timeout_is_unknown_not_a_disagreement(smt_hard_query):
    out = ask_solvers(smt_hard_query, 0.5, 0.5, TOL, solvers=("z3",), timeout=0.05)
    assert [a.verdict for a in out] == ["unknown", "unknown"]
    assert [a.agrees for a in out] == [None, None]
    assert max(a.seconds for a in out) < 10


def _sleepy() -> Verdict:
    time.sleep(30)
    return Verdict.ROBUST


def _failing() -> Verdict:
    raise ValueError("boom")


def test_hard_limit_kills_a_solver_that_ignores_its_time_limit():
    """cvc5 checks its limit only between pivots; its child process is killed instead."""
    t0 = time.perf_counter()
    assert _hard_limited(_sleepy, 0.5) == Verdict.UNKNOWN
    assert time.perf_counter() - t0 < 10
    assert _hard_limited(lambda: Verdict.ROBUST, 10) == Verdict.ROBUST
    with pytest.raises(PaperReproError, match="ValueError: boom"):
        _hard_limited(_failing, 10)


def test_missing_solver_and_negative_radius():
    net, x, label = _network()
    q = Query(net, x, label, None, Norm.LINF)
    out = ask_solvers(q, 0.0, 0.3, TOL, solvers=("z3",), phases=witness_phases(net, x))
    assert [a.question for a in out] == ["upper"]  # lower − tolerance < 0: not asked
    if SmtSolver.CVC5 not in SOLVERS:
        with pytest.raises(PaperReproError, match="not installed"):
            ask_solvers(q, 0.1, 0.3, TOL, solvers=("cvc5",))


def test_unreachable_target_is_asked_over_the_whole_domain():
    net = ReluNetwork.from_arrays(
        [np.eye(2), np.zeros((2, 2))], [np.zeros(2), np.array([0.0, -1.0])]
    )  # Z = (0, −1) everywhere: class 1 is never reached
    q = Query(net, np.array([0.2, 0.7]), 0, 1, Norm.L1)
    res = minimal_adversarial(q, Backend.BAB, SolveOptions(tolerance=TOL))
    assert res.witness is None and res.lower == np.inf
    out = solve_whole(q, res.lower, res.upper, solvers=SOLVERS, tolerance=TOL)
    assert list(out["question"]) == ["lower"] * len(SOLVERS)
    assert (out["delta"] == 2.0).all() and out["agrees"].eq(True).all()  # L1 diameter n = 2


def test_frozen_inputs_keep_the_network_and_agree(solved):
    records, originals, nets = solved
    net, x = nets["tiny"], originals[0]
    r = records.iloc[0]
    q = Query(net, x, int(r["label"]), int(r["target"]), Norm(r["norm"]))
    free = margin_pixels(q, np.asarray(r["witness"]), 4)
    assert len(free) == 4 and list(free) == sorted(free)
    small = freeze_inputs(q, free)
    assert small.network.input_dim == 4
    np.testing.assert_allclose(small.network.forward(x[free]), net.forward(x), atol=1e-12)
    assert freeze_inputs(q, range(10)).network.biases[0].tolist() == net.biases[0].tolist()
    with pytest.raises(PaperReproError, match="free inputs"):
        freeze_inputs(q, [10])
    out = solve_frozen(records, originals, nets, free=5, solvers=SOLVERS, limit=2, tolerance=TOL)
    assert tuple(out.columns) == FROZEN_COLUMNS and set(out["check"]) <= {"region", "whole"}
    assert (out["check"] == "whole").sum() >= 2 * len(SOLVERS)
    assert out["agrees"].eq(True).all() and out["verdict"].ne("unknown").all()
