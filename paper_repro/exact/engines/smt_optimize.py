"""Exact minimal distance ``δ*`` by optimisation modulo theories (z3 ``Optimize``).

The δ of :func:`paper_repro.exact.engines.smt.encode` is left as a free real ``delta`` and minimised
by z3's OMT engine over linear real arithmetic: an exact rational optimum, no bisection. Used as the
exact "z3 path" in tests; slow beyond tiny networks.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from fractions import Fraction

from paper_repro.exact.engines.smt import encode, encoding_to_smtlib
from paper_repro.query import Query


@dataclass(frozen=True)
class SmtOptimum:
    """Exact ``δ*`` from :func:`z3_minimal_distance`.

    Attributes:
        delta: ``δ*`` as an exact rational, ``None`` if no adversarial example exists (within
            ``delta_max``) or on timeout.
        witness: the optimal ``x′`` in exact rationals (``len n_0``), or ``None``.
        status: ``"optimal"``, ``"infeasible"`` or ``"timeout"``.
        seconds: wall time.
    """

    delta: Fraction | None
    witness: tuple[Fraction, ...] | None
    status: str
    seconds: float


def z3_minimal_distance(
    query: Query, timeout_s: float = 60.0, delta_max: float | Fraction | None = None
) -> SmtOptimum:
    """``δ* = min δ`` over the symbolic-δ formula of :func:`encode`, by z3's ``Optimize`` (OMT
    over linear real arithmetic: exact rationals, no bisection) on the PySMT SMT-LIB script."""
    import z3

    t0 = time.perf_counter()
    enc = encode(query, None, delta_max=delta_max)
    script = encoding_to_smtlib(enc, check_sat=False)
    ctx = z3.Context()
    opt = z3.Optimize(ctx=ctx)
    opt.set("timeout", max(1, int(timeout_s * 1000)))
    opt.add(z3.parse_smt2_string(script, ctx=ctx))
    d = z3.Real("delta", ctx)
    opt.minimize(d)
    timer = threading.Timer(timeout_s + 0.05, ctx.interrupt)
    timer.start()
    try:
        res = opt.check()
    finally:
        timer.cancel()
    if res == z3.unsat:
        return SmtOptimum(None, None, "infeasible", time.perf_counter() - t0)
    if res != z3.sat:
        return SmtOptimum(None, None, "timeout", time.perf_counter() - t0)
    model = opt.model()

    def val(name: str) -> Fraction:
        v = model.eval(z3.Real(name, ctx), model_completion=True)
        return Fraction(v.as_fraction())

    wit = tuple(val(f"xp_{i}") for i in range(query.network.input_dim))
    return SmtOptimum(val("delta"), wit, "optimal", time.perf_counter() - t0)
