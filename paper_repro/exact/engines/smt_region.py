"""PySMT solvers run end to end against a certified bracket ``lower ≤ δ* ≤ upper`` (issue 16, 6).

Two questions per solver: at ``δ = upper`` the formula must be satisfiable, at
``δ = lower − tolerance`` unsatisfiable. :func:`ask_solvers` asks them either of the whole query
(:func:`paper_repro.exact.engines.smt.smt_decider`, the ``smt`` backend itself) or of one
activation region (``phases``, e.g. :func:`witness_phases` of the engine's witness): every hidden
ReLU's phase fixed, so the formula is a conjunction of linear constraints (untargeted queries
keep the disjunction over targets) that z3 and cvc5 solve on full 784-input networks.

A region-restricted ``unsat`` at ``lower − tolerance`` only proves that *this region* has no
adversarial example that close; it is weaker than the engine's lower bound, which covers every
region. A region-restricted ``sat`` at ``upper`` is a full proof that ``δ* ≤ upper``.

Exact rational simplex does not scale to MNIST's 784 inputs even in one region (z3 and cvc5 give
``unknown`` after 20 s; z3's older arithmetic solver after 240 s): :func:`freeze_inputs` makes a
real model's query small by freezing all but a few pixels at ``x`` (a new query, asked of the
engine and of the solvers alike). cvc5 checks its time limit only between simplex pivots, and
one pivot on 784-input rows took minutes, so cvc5 runs in a forked child killed at
``timeout + 5 s`` (z3 is interrupted in-process).
"""

from __future__ import annotations

import functools
import multiprocessing
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from pysmt.environment import Environment

from paper_repro.errors import PaperReproError
from paper_repro.exact.decide import SmtSolver, Verdict
from paper_repro.exact.engines.smt import encode, smt_decider, solve_encoding
from paper_repro.exact.witnesses.rational import exact_activations, frac
from paper_repro.network import ReluNetwork
from paper_repro.query import Norm, Query

__all__ = ["SmtAnswer", "ask_solvers", "freeze_inputs", "installed_solvers", "witness_phases"]

_GRACE_S = 5.0
"""Seconds past the time limit before a cvc5 child process is killed."""

_SMT_VERDICT = {Verdict.ADVERSARIAL: "sat", Verdict.ROBUST: "unsat", Verdict.UNKNOWN: "unknown"}


@dataclass(frozen=True)
class SmtAnswer:
    """One solver's answer to one question.

    Attributes:
        solver: ``z3`` or ``cvc5``.
        question: ``upper`` (expected ``sat``) or ``lower`` (expected ``unsat``).
        delta: the radius asked, exactly the float used.
        verdict: ``sat``, ``unsat`` or ``unknown`` (timeout or solver gave up).
        agrees: whether the verdict is the expected one; ``None`` for ``unknown``.
        seconds: wall time of encoding and solving.
    """

    solver: str
    question: str
    delta: float
    verdict: str
    agrees: bool | None
    seconds: float


def installed_solvers() -> tuple[SmtSolver, ...]:
    """The :class:`SmtSolver` s that PySMT can run here (z3 always; cvc5 with the extra)."""
    names = Environment().factory.all_solvers()
    return tuple(s for s in SmtSolver if s == SmtSolver.Z3 or s.value in names)


def witness_phases(network: ReluNetwork, witness: np.ndarray) -> tuple[tuple[bool, ...], ...]:
    """Every hidden ReLU's phase at ``witness`` (``[n_0]`` floats), in exact rationals: ``True``
    where the pre-activation is ``> 0``. A pre-activation exactly ``0`` (both phases hold there)
    is fixed inactive, so the witness always lies in the region."""
    w = np.asarray(witness, dtype=np.float64).reshape(-1)
    if w.shape[0] != network.input_dim or not np.all(np.isfinite(w)):
        raise PaperReproError(f"witness must be {network.input_dim} finite values")
    hidden = exact_activations(network, [frac(v) for v in w])[:-1]
    return tuple(tuple(v > 0 for v in layer) for layer in hidden)


def freeze_inputs(query: Query, free: Sequence[int]) -> Query:
    """The query over the inputs ``free`` only: every other input is frozen at its value in
    ``x`` and folded into the first layer's bias. The folded bias is rounded to float64, so this
    is a new (slightly different) network: compare the solvers with the engine *on it*."""
    idx = np.array(sorted({int(i) for i in free}), dtype=np.int64)
    net = query.network
    if idx.size == 0 or idx[0] < 0 or idx[-1] >= net.input_dim:
        raise PaperReproError(f"free inputs must be a non-empty subset of 0..{net.input_dim - 1}")
    rest = np.setdiff1d(np.arange(net.input_dim), idx)
    w0 = net.weights[0]
    b0 = net.biases[0] + w0[:, rest] @ query.x[rest]
    small = ReluNetwork.from_arrays([w0[:, idx], *net.weights[1:]], [b0, *net.biases[1:]])
    return Query(small, query.x[idx], query.label, query.target, query.norm)


def _hard_limited(solve: Callable[[], Verdict], seconds: float) -> Verdict:
    """``solve()`` in a forked child process, killed (``unknown``) after ``seconds``."""
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)

    def child() -> None:
        try:
            send.send(("ok", solve().value))
        except Exception as err:  # reported to the parent, which raises it
            send.send(("error", f"{type(err).__name__}: {err}"))

    proc = ctx.Process(target=child, daemon=True)
    proc.start()
    send.close()
    try:
        kind, value = receive.recv() if receive.poll(seconds) else ("ok", Verdict.UNKNOWN.value)
    except EOFError:  # the child died without answering
        kind, value = "ok", Verdict.UNKNOWN.value
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
        receive.close()
    if kind == "error":
        raise PaperReproError(f"the SMT solver failed: {value}")
    return Verdict(value)


def _verdict(
    query: Query,
    solver: SmtSolver,
    delta: float,
    timeout: float,
    phases: Sequence[Sequence[bool]] | None,
) -> Verdict:
    """One verdict: the whole query (the ``smt`` backend's decider) or the region's formula."""
    if phases is None:
        return smt_decider(solver)(query, delta, timeout).verdict
    t0 = time.perf_counter()
    enc = encode(query, delta, env=Environment(), phases=phases)
    return solve_encoding(enc, solver, max(timeout - (time.perf_counter() - t0), 1e-3))[0]


def ask_solvers(
    query: Query,
    lower: float,
    upper: float,
    tolerance: float,
    solvers: Iterable[SmtSolver | str] = (SmtSolver.Z3, SmtSolver.CVC5),
    timeout: float = 20.0,
    phases: Sequence[Sequence[bool]] | None = None,
) -> list[SmtAnswer]:
    """Each solver's verdict at ``δ = upper`` and at ``δ = lower − tolerance``, and whether it
    agrees with the bracket. ``upper`` is skipped where infinite, ``lower`` where negative; an
    infinite ``lower`` (no example anywhere) is asked at the domain's diameter (1 for L∞, ``n``
    for L1).

    Args:
        query: the query the bracket answers.
        lower, upper: the engine's bracket ``lower ≤ δ* ≤ upper``.
        tolerance: the gap below ``lower`` asked (the engine's tolerance, e.g. 1e-4).
        solvers: which solvers; one not installed for PySMT is a :class:`PaperReproError`.
        timeout: seconds per solver call; past it the verdict is ``unknown``.
        phases: ``None`` asks the whole query (the ``smt`` backend's decider); otherwise the
            region with these fixed phases (see :func:`witness_phases`).
    """
    chosen = [SmtSolver.parse(s) for s in solvers]
    missing = [s.value for s in chosen if s not in installed_solvers()]
    if missing:
        raise PaperReproError(f"SMT solver(s) {', '.join(missing)} not installed for PySMT")
    diameter = 1.0 if query.norm == Norm.LINF else float(query.network.input_dim)
    below = min(float(lower) - float(tolerance), diameter)
    questions = {"upper": float(upper), "lower": below}
    expected = {"upper": Verdict.ADVERSARIAL, "lower": Verdict.ROBUST}
    out = []
    for solver in chosen:
        for question, delta in questions.items():
            if delta < 0 or not np.isfinite(delta):
                continue
            t0 = time.perf_counter()
            solve = functools.partial(_verdict, query, solver, delta, timeout, phases)
            if solver == SmtSolver.Z3:
                verdict = solve()
            else:
                verdict = _hard_limited(solve, timeout + _GRACE_S)
            agrees = None if verdict == Verdict.UNKNOWN else verdict == expected[question]
            seconds = time.perf_counter() - t0
            out.append(
                SmtAnswer(solver.value, question, delta, _SMT_VERDICT[verdict], agrees, seconds)
            )
    return out
