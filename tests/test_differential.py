"""Differential test of the exact engines on 500 random tiny networks and queries.

For each case (deterministic seed = case index): 2–16 inputs, 1–3 hidden layers of width 1–3
(≤ 7 ReLUs so that the brute-force reference enumerates every activation pattern), 2–4 classes,
``x`` in [0,1] with some coordinates exactly 0 or 1, targeted and untargeted, L∞ and L1.

* the fast engine (``minimal_adversarial(query, Backend.BAB, ...)``) and the brute-force reference
  (:mod:`paper_repro.exact.engines.reference`) must agree on ``δ*`` to 1e-6 (relative above 1);
  every witness is checked exactly (rational margin ≥ 0, rational distance = ``upper``); every
  certified ``lower`` is ≤ the reference ``δ*`` + 1e-9;
* Marabou (floating point) never answers wrongly on the z3 cases: not ``robust`` just above δ*,
  not ``adversarial`` just below;
* the certified bounds (CROWN, Wong–Kolter dual) at ε = δ* must not certify the query (an
  adversarial example lies in the closed ball);
* the z3 path (exact rational SMT, :func:`paper_repro.exact.engines.smt.smt_decider`) must answer
  ``adversarial`` at ``δ* + 1e-6`` and ``robust`` at ``δ* − 1e-6`` (``robust`` on the whole box
  when the reference finds no adversarial example). z3 costs ~0.2 s per case, so the default run
  checks every 10th case (50 cases); ``pytest -m slow tests/test_differential.py`` checks all 500.

Zero disagreements are allowed.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from paper_repro.bounds.crown import CrownOptions, LowerSlope, crown_margins, margin_matrix
from paper_repro.bounds.dual import dual_bound
from paper_repro.exact.backends import BACKENDS, backend_spec
from paper_repro.exact.decide import SmtSolver, Verdict
from paper_repro.exact.engines.reference import reference_minimal_distance
from paper_repro.exact.engines.smt import check_witness_smt, exact_margin
from paper_repro.exact.search import Backend, Protocol, SolveOptions, minimal_adversarial
from paper_repro.network import ReluNetwork
from paper_repro.query import Norm, Query, Status

N_CASES = 500
CHUNK = 50
Z3_EVERY = 10  # default run: z3 on cases 0, 10, 20, ...
AGREE = 1e-6


def make_case(i: int) -> Query:
    """The ``i``-th random query (deterministic)."""
    rng = np.random.default_rng(10_000 + i)
    n_in = int(rng.integers(2, 17))
    depth = int(rng.integers(1, 4))
    widths = [1 if rng.random() < 0.1 else int(rng.integers(2, 4)) for _ in range(depth)]
    while sum(widths) > 7:
        widths[int(np.argmax(widths))] -= 1
    n_cls = int(rng.integers(2, 5))
    sizes = [n_in, *widths, n_cls]
    ws = [rng.normal(size=(sizes[k + 1], sizes[k])) for k in range(len(sizes) - 1)]
    bs = [rng.normal(size=sizes[k + 1]) * 0.2 for k in range(len(sizes) - 1)]
    x = rng.random(n_in)
    edge = rng.random(n_in)
    x[edge < 0.1] = 0.0
    x[edge > 0.9] = 1.0
    if rng.random() < 0.85:  # move the decision boundary close to x (finite δ* in most cases)
        net = ReluNetwork.from_arrays(ws, bs)
        bs[-1] = bs[-1] - net.forward(x) + rng.random(n_cls) * 0.3
    net = ReluNetwork.from_arrays(ws, bs)
    logits = net.forward(x)
    label = int(np.argmax(logits))
    target = None
    if n_cls > 2 and rng.random() < 0.5:
        target = int(rng.choice([c for c in range(n_cls) if c != label]))
    norm = Norm.LINF if i % 2 == 0 else Norm.L1
    return Query(net, x, label, target, norm)


def _step(delta: float) -> float:
    return AGREE * max(1.0, delta)


def _exact_distance(q: Query, w: np.ndarray) -> Fraction:
    diffs = [abs(Fraction(float(a)) - Fraction(float(b))) for a, b in zip(w, q.x, strict=True)]
    return max(diffs) if q.norm == Norm.LINF else sum(diffs, Fraction(0))


def _check_bab(q: Query, ref_delta: float) -> None:
    # ask for the precision the comparison needs (the engine's safe LP bounds carry ~1e-7 slack)
    tol = 0.5 * _step(ref_delta) if np.isfinite(ref_delta) else 1e-7
    opts = SolveOptions(tolerance=tol, protocol=Protocol.EXACT, timeout=60.0, seed=0)
    res = minimal_adversarial(q, Backend.BAB, opts)
    assert res.status == Status.OPTIMAL, res.message
    assert res.lower <= ref_delta + 1e-9, (res.lower, ref_delta)
    if not np.isfinite(ref_delta):
        assert res.witness is None and not np.isfinite(res.upper)
        return
    assert abs(res.upper - ref_delta) <= _step(ref_delta), (res.upper, ref_delta)
    assert res.witness is not None
    w = np.asarray(res.witness, dtype=np.float64)
    assert np.all((w >= 0) & (w <= 1))
    margin, _t = exact_margin(q, w)
    assert margin >= 0, f"witness is not exactly adversarial (margin {float(margin)})"
    dist = _exact_distance(q, w)
    assert abs(float(dist) - res.upper) <= 1e-12 * max(1.0, res.upper), (float(dist), res.upper)


def _check_z3(q: Query, ref_delta: float) -> None:
    decide = backend_spec(Backend.SMT).decider(SolveOptions(smt_solver=SmtSolver.Z3))
    limit = 600.0  # generous: a wall-clock timeout must not turn into a flaky "disagreement"
    if not np.isfinite(ref_delta):
        full = 1.0 if q.norm == Norm.LINF else float(q.x.size)
        res = decide(q, full, limit)
        assert res.verdict == Verdict.ROBUST, (res.verdict, res.message)
        return
    step = _step(ref_delta)
    above = decide(q, ref_delta + step, limit)
    assert above.verdict == Verdict.ADVERSARIAL, (above.verdict, above.message)
    if above.message == "":  # the float64 witness is exactly adversarial within δ
        assert check_witness_smt(q, above.witness, ref_delta + step)
    if ref_delta - step >= 0:
        below = decide(q, ref_delta - step, limit)
        assert below.verdict == Verdict.ROBUST, (below.verdict, below.message)


def _check_marabou(q: Query, ref_delta: float) -> None:
    """Marabou (floating point) must never give a wrong answer: not ``robust`` just above δ*, not
    ``adversarial`` just below (``unknown`` is allowed in its safety band)."""
    decide = backend_spec(Backend.MARABOU).decider(SolveOptions())
    if not np.isfinite(ref_delta):
        full = 1.0 if q.norm == Norm.LINF else float(q.x.size)
        assert decide(q, full, 60).verdict != Verdict.ADVERSARIAL
        return
    step = _step(ref_delta)
    above = decide(q, ref_delta + step, 60)
    assert above.verdict != Verdict.ROBUST, above.message
    if above.verdict == Verdict.ADVERSARIAL:
        assert exact_margin(q, above.witness)[0] >= 0
    if ref_delta - step >= 0:
        assert decide(q, ref_delta - step, 60).verdict != Verdict.ADVERSARIAL


def _check_bounds(q: Query, ref_delta: float) -> None:
    """Soundness of the certified bounds: at ε = δ* an adversarial example lies in the closed
    ball, so some lower bound on ``Z_label − Z_t`` (t a target) must be ≤ 0."""
    if not np.isfinite(ref_delta):
        return
    c = margin_matrix(q.network.num_classes, q.label, q.targets())
    for slope in (LowerSlope.ADAPTIVE, LowerSlope.PARALLEL):
        lower = crown_margins(q.network, q.x, ref_delta, c, q.norm, CrownOptions(slope)).lower
        assert lower.min() <= 0.0, ("crown", slope, lower)
    assert dual_bound(q.network, q.x, ref_delta, c, norm=q.norm).certified.min() <= 0.0


# The decide-only backends of the registry, each with its differential check (the minimisers
# are checked through minimal_adversarial: bab here, milp against bab in test_engine_bab).
DECIDER_CHECKS = {Backend.SMT: _check_z3, Backend.MARABOU: _check_marabou}


def test_every_decide_only_backend_has_a_differential_check():
    assert set(DECIDER_CHECKS) == {b for b, spec in BACKENDS.items() if not spec.minimises}


def _run_chunk(chunk: int, z3_all: bool) -> None:
    failures = []  # every case is checked; all disagreements are reported together
    for i in range(chunk * CHUNK, (chunk + 1) * CHUNK):
        q = make_case(i)
        ref = reference_minimal_distance(q)
        checks = [(str(b), check) for b, check in DECIDER_CHECKS.items()]  # smt: z3
        checks = checks if z3_all or i % Z3_EVERY == 0 else []
        checks.append(("bab", _check_bab))
        checks.append(("bounds", _check_bounds))
        for name, check in checks:
            try:
                check(q, ref.delta)
            except AssertionError as exc:
                first = str(exc).splitlines()[0] if str(exc) else "assertion failed"
                where = f"case {i} ({q.norm}, target={q.target}, reference δ*={ref.delta!r})"
                failures.append(f"{where} {name}: {first}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("chunk", range(N_CASES // CHUNK))
def test_differential_chunk(chunk):
    _run_chunk(chunk, z3_all=False)


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(N_CASES // CHUNK))
def test_differential_chunk_z3_all(chunk):
    _run_chunk(chunk, z3_all=True)


def test_case_mix_is_meaningful():
    """The generator covers what it claims: both norms, targeted and untargeted, edge pixels,
    finite and infinite δ*, and at least one ReLU that actually switches in most cases."""
    qs = [make_case(i) for i in range(0, N_CASES, 7)]
    assert {q.norm for q in qs} == {Norm.LINF, Norm.L1}
    assert any(q.target is None for q in qs) and any(q.target is not None for q in qs)
    assert sum(np.any((q.x == 0) | (q.x == 1)) for q in qs) > len(qs) // 2
    finite = [np.isfinite(reference_minimal_distance(q).delta) for q in qs[:20]]
    assert 10 <= sum(finite) < 20
