"""The exact SMT specification: verdicts around δ*, exact ties, witnesses, SMT-LIB, timeouts."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
import pysmt.environment
import pytest
import z3

from paper_repro.bounds.crown import crown_layer_bounds, make_region
from paper_repro.errors import PaperReproError
from paper_repro.exact.decide import Verdict
from paper_repro.exact.engines.reference import reference_minimal_distance
from paper_repro.exact.engines.smt import (
    SmtSolver,
    check_witness_smt,
    encode,
    exact_margin,
    smt_decider,
    to_smtlib,
)
from paper_repro.exact.engines.smt_optimize import z3_minimal_distance
from paper_repro.exact.search import Backend, Protocol, SolveOptions, minimal_adversarial
from paper_repro.network import ReluNetwork
from paper_repro.query import Norm, Query, Status


def _random_query(seed: int, norm: str, targeted: bool) -> Query:
    rng = np.random.default_rng(seed)
    sizes = [int(rng.integers(2, 7)), 3, 2, 3]
    ws = [rng.normal(size=(sizes[k + 1], sizes[k])) for k in range(3)]
    bs = [rng.normal(size=sizes[k + 1]) * 0.3 for k in range(3)]
    net = ReluNetwork.from_arrays(ws, bs)
    x = rng.random(sizes[0])
    x[0] = 0.0
    # shift the output biases so that the decision boundary is close to x
    bs[-1] = bs[-1] - net.forward(x) + rng.random(3) * 0.5
    net = ReluNetwork.from_arrays(ws, bs)
    label = int(np.argmax(net.forward(x)))
    target = (label + 1) % 3 if targeted else None
    return Query(net, x, label, target, Norm(norm))


CASES = [(s, n, t) for s in range(6) for n in ("linf", "l1") for t in (False, True)]


@pytest.mark.parametrize(("seed", "norm", "targeted"), CASES)
def test_decider_brackets_reference_delta(seed, norm, targeted):
    q = _random_query(seed, norm, targeted)
    ref = reference_minimal_distance(q)
    decide = smt_decider("z3")
    if not np.isfinite(ref.delta):
        assert decide(q, 1.0 if norm == "linf" else float(q.x.size), 30).verdict == Verdict.ROBUST
        return
    step = 1e-7 * max(1.0, ref.delta)
    above = decide(q, ref.delta + step, 30)
    assert above.verdict == Verdict.ADVERSARIAL
    dist = np.abs(above.witness - q.x)
    assert (dist.max() if norm == "linf" else dist.sum()) <= ref.delta + step + 1e-12
    assert above.message == ""  # the float64 witness itself is exactly adversarial within δ
    assert check_witness_smt(q, above.witness, ref.delta + step)
    assert exact_margin(q, above.witness)[0] >= 0
    if ref.delta - step > 0:
        assert decide(q, ref.delta - step, 30).verdict == Verdict.ROBUST
    opt = z3_minimal_distance(q, timeout_s=30)
    assert opt.status == "optimal"
    assert abs(float(opt.delta) - ref.delta) <= 1e-7 * max(1.0, ref.delta)


def _line_query(x0: float, threshold: float, norm: str) -> Query:
    """Two classes: Z_0 = 0, Z_1 = x′_0 − threshold (ReLU layer in between is exact identity on
    [0,1] after the bias shift): δ* = threshold − x0 exactly, reached with a tie."""
    w1 = np.array([[1.0, 0.0], [-1.0, 0.0]])
    b1 = np.array([0.0, 1.0])  # both ReLUs active on [0,1]: stable
    w2 = np.array([[0.0, 0.0], [1.0, 0.0]])
    b2 = np.array([0.0, -threshold])
    net = ReluNetwork.from_arrays([w1, w2], [b1, b2])
    return Query(net, np.array([x0, 0.5]), 0, None, Norm(norm))


@pytest.mark.parametrize("norm", ["linf", "l1"])
@pytest.mark.parametrize(("x0", "threshold"), [(0.25, 0.5), (0.0, 1.0), (0.0, 0.375)])
def test_exact_boundary_tie_counts_and_below_is_robust(norm, x0, threshold):
    q = _line_query(x0, threshold, norm)
    delta = threshold - x0  # exact in binary
    decide = smt_decider(SmtSolver.Z3)
    at = decide(q, delta, 30)
    assert at.verdict == Verdict.ADVERSARIAL and at.message == ""
    assert at.witness[0] == threshold  # the tie point, exactly
    assert check_witness_smt(q, at.witness, delta)
    assert exact_margin(q, at.witness) == (Fraction(0), 1)
    below = float(np.nextafter(delta, 0.0))
    assert decide(q, below, 30).verdict == Verdict.ROBUST
    assert not check_witness_smt(q, at.witness, below)
    opt = z3_minimal_distance(q)
    assert opt.delta == Fraction(delta)
    enc = encode(q, delta)
    assert enc.relus == () and enc.stable == 2  # stable ReLUs are simplified away
    assert bool(enc.l1) == (norm == "l1")


def test_check_witness_is_exact():
    q = _random_query(3, "linf", False)
    rng = np.random.default_rng(0)
    pts = rng.random((400, q.x.size))
    logits = q.network.forward(pts)
    others = np.delete(logits, q.label, axis=1).max(1) - logits[:, q.label]
    adv, safe = pts[others > 1e-6], pts[others < -1e-6]
    assert len(adv) and len(safe)
    for p in adv[:5]:
        d = float(np.abs(p - q.x).max())
        assert check_witness_smt(q, p, d)
        assert not check_witness_smt(q, p, float(np.nextafter(d, 0)))
    for p in safe[:5]:
        assert not check_witness_smt(q, p, 1.0)
    outside = adv[0].copy()
    outside[1] = 1.0 + 1e-9
    assert not check_witness_smt(q, outside, 2.0)


def test_smtlib_script_is_the_same_formula():
    q = _random_query(1, "l1", False)
    ref = reference_minimal_distance(q)
    assert np.isfinite(ref.delta)
    for delta, expected in [(ref.delta * 1.001, z3.sat), (ref.delta * 0.999, z3.unsat)]:
        script = to_smtlib(q, delta)
        assert script.startswith("(set-logic QF_LRA)") and "(check-sat)" in script
        assert "ite" not in script and "abs" not in script  # L1 is linear: p, q ≥ 0
        ctx = z3.Context()
        s = z3.Solver(ctx=ctx)
        s.add(z3.parse_smt2_string(script, ctx=ctx))
        assert s.check() == expected


def test_timeout_gives_unknown_and_no_global_state(smt_hard_query):
    q = smt_hard_query
    before = set(pysmt.environment.get_env().formula_manager.get_all_symbols())
    res = smt_decider()(q, 0.5, 0.05)
    assert res.verdict == Verdict.UNKNOWN and res.witness is None
    assert res.seconds < 20
    after = set(pysmt.environment.get_env().formula_manager.get_all_symbols())
    assert after == before  # nothing leaked into PySMT's global environment


def test_bad_arguments():
    q = _line_query(0.25, 0.5, "linf")
    with pytest.raises(PaperReproError, match="≥ 0"):
        encode(q, -0.1)
    with pytest.raises(PaperReproError, match="unknown SMT solver"):
        smt_decider("boolector")
    env = pysmt.environment.Environment()
    if "cvc5" not in env.factory.all_solvers():
        with pytest.raises(PaperReproError, match="not installed"):
            smt_decider("cvc5")(q, 0.1, 1.0)
    with pytest.raises(PaperReproError, match="witness"):
        check_witness_smt(q, np.array([0.5]), 0.3)


@pytest.mark.parametrize("norm", ["linf", "l1"])
def test_crown_stability_bounds_keep_the_formula_exact(norm):
    q = _random_query(1, norm, False)
    ref = reference_minimal_distance(q)
    assert np.isfinite(ref.delta)
    plain, tight = smt_decider(), smt_decider(crown_stability=True)
    step = 1e-7 * max(1.0, ref.delta)
    cases = [(ref.delta + step, Verdict.ADVERSARIAL), (ref.delta - step, Verdict.ROBUST)]
    for delta, expected in cases:
        assert plain(q, delta, 30).verdict == expected
        assert tight(q, delta, 30).verdict == expected
    bounds = crown_layer_bounds(q.network, make_region(q.x, ref.delta, norm))
    kept = len(encode(q, ref.delta, layer_bounds=bounds).relus)
    baseline = len(encode(q, ref.delta).relus)
    assert kept < baseline if norm == "l1" else kept <= baseline  # L1: the box is loose


@pytest.mark.parametrize("norm", ["linf", "l1"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_cvc5_agrees_with_z3_and_the_reference(norm, seed):
    """Where cvc5 is installed (the ``smt`` extra), it gives z3's verdicts on both sides of the
    brute-force δ*, and its witnesses are exact."""
    pytest.importorskip("cvc5")
    q = _random_query(seed, norm, seed % 2 == 0)
    ref = reference_minimal_distance(q)
    step = 1e-6 * max(1.0, ref.delta)
    cases = [(ref.delta + step, Verdict.ADVERSARIAL), (ref.delta - step, Verdict.ROBUST)]
    if not np.isfinite(ref.delta):  # seed 4: no target reachable anywhere in [0,1]^n
        cases = [(float(q.x.size), Verdict.ROBUST)]
    cvc5_decide, z3_decide = smt_decider("cvc5"), smt_decider("z3")
    for delta, expected in cases:
        a, b = cvc5_decide(q, delta, 30), z3_decide(q, delta, 30)
        assert a.verdict == b.verdict == expected
        if expected == Verdict.ADVERSARIAL:
            assert check_witness_smt(q, a.witness, delta)


def test_cvc5_minimal_distance_through_the_search_api():
    pytest.importorskip("cvc5")
    q = _line_query(0.25, 0.5, "l1")
    opts = SolveOptions(protocol=Protocol.BINARY_SEARCH, precision=1e-4, timeout=30)
    res = minimal_adversarial(q, Backend.SMT, dataclasses.replace(opts, smt_solver="cvc5"))
    ref = minimal_adversarial(q, Backend.SMT, opts)
    assert res.status == Status.OPTIMAL and ref.status == Status.OPTIMAL
    assert res.lower <= ref.upper and ref.lower <= res.upper
    with pytest.raises(PaperReproError, match="unknown SMT solver"):
        SolveOptions(smt_solver="yices")


def test_cvc5_time_limit_gives_unknown():
    """cvc5's per-check limit is applied: a hard instance ends ``unknown`` near the budget."""
    pytest.importorskip("cvc5")
    rng = np.random.default_rng(7)
    net = ReluNetwork.from_arrays(
        [rng.normal(size=(sizes[1], sizes[0])) for sizes in [(30, 40), (40, 40), (40, 40)]]
        + [rng.normal(size=(3, 40))],
        [rng.normal(size=40) for _ in range(3)] + [rng.normal(size=3)],
    )
    x = rng.random(30)
    q = Query(net, x, int(np.argmax(net.forward(x))), None, Norm.LINF)
    res = smt_decider("cvc5")(q, 0.5, 0.2)
    assert res.verdict == Verdict.UNKNOWN and res.witness is None
    assert res.seconds < 10
