"""The fixed-δ query answered by Marabou (maraboupy 2.0.0, the successor of Reluplex).

The network is written straight into a ``MarabouCore.InputQuery``: input variables ``x′`` with
bounds ``[max(0, x−δ), min(1, x+δ)]`` (exact for L∞; for L1 extra variables ``p, q ≥ 0`` with
``x′ − p + q = x`` and ``Σ p + q ≤ δ``), one equation per affine neuron, one ``ReLU`` constraint per
hidden neuron, and for a target ``t`` the inequalities ``Z_t − Z_j ≥ 0`` for all ``j ≠ t``.
Untargeted queries run one Marabou query per target class. A ``sat`` answer is accepted only if
its witness passes the exact rational check
(:func:`paper_repro.exact.witnesses.rational.repair_witness`: exact distance and margin); otherwise
the answer is ``unknown``.

Caveat: Marabou works in floating point with tolerances, so its ``unsat`` is not an exact proof the
way the SMT path is; :func:`marabou_decider` therefore claims ``robust`` only with a safety slack
on δ (see there).
"""

from __future__ import annotations

import math
import time

import numpy as np

from paper_repro.errors import PaperReproError
from paper_repro.exact.decide import Decider, Decision, Verdict
from paper_repro.exact.witnesses.rational import repair_witness
from paper_repro.query import Norm, Query


def _build(query: Query, delta: float, target: int, margin: float = 0.0):
    """The ``InputQuery`` "∃x′ within δ classified as ``target``" and the ``x′`` variables."""
    from maraboupy import MarabouCore

    net, x, n = query.network, query.x, query.network.input_dim
    ipq = MarabouCore.InputQuery()
    count = 0

    def new_vars(k: int) -> list[int]:
        nonlocal count
        out = list(range(count, count + k))
        count += k
        return out

    xin = new_vars(n)
    pq = new_vars(2 * n) if query.norm == Norm.L1 else []
    hidden = [(new_vars(w.shape[0]), new_vars(w.shape[0])) for w in net.weights[:-1]]
    logits = new_vars(net.num_classes)
    ipq.setNumberOfVariables(count)
    lo = np.maximum(0.0, x - delta)
    hi = np.minimum(1.0, x + delta)
    for i, v in enumerate(xin):
        ipq.setLowerBound(v, float(lo[i]))
        ipq.setUpperBound(v, float(hi[i]))
        ipq.markInputVariable(v, i)
    if pq:
        budget = MarabouCore.Equation(MarabouCore.Equation.LE)
        for i in range(n):
            p, q = pq[i], pq[n + i]
            ipq.setLowerBound(p, 0.0)
            ipq.setUpperBound(p, float(1.0 - x[i]))
            ipq.setLowerBound(q, 0.0)
            ipq.setUpperBound(q, float(x[i]))
            eq = MarabouCore.Equation(MarabouCore.Equation.EQ)  # x′ − p + q = x
            eq.addAddend(1.0, xin[i])
            eq.addAddend(-1.0, p)
            eq.addAddend(1.0, q)
            eq.setScalar(float(x[i]))
            ipq.addEquation(eq)
            budget.addAddend(1.0, p)
            budget.addAddend(1.0, q)
        budget.setScalar(float(delta))
        ipq.addEquation(budget)
    prev = xin
    for k, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        outs = hidden[k][0] if k < len(hidden) else logits
        for j, o in enumerate(outs):
            eq = MarabouCore.Equation(MarabouCore.Equation.EQ)  # o − W_j · prev = b_j
            eq.addAddend(1.0, o)
            for i, v in enumerate(prev):
                if w[j, i] != 0.0:
                    eq.addAddend(-float(w[j, i]), v)
            eq.setScalar(float(b[j]))
            ipq.addEquation(eq)
        if k < len(hidden):
            for h, z in zip(*hidden[k], strict=True):
                ipq.setLowerBound(z, 0.0)
                MarabouCore.addReluConstraint(ipq, h, z)
            prev = hidden[k][1]
    for j, v in enumerate(logits):
        ipq.markOutputVariable(v, j)
        if j != target:
            eq = MarabouCore.Equation(MarabouCore.Equation.GE)  # Z_t − Z_j ≥ margin
            eq.addAddend(1.0, logits[target])
            eq.addAddend(-1.0, v)
            eq.setScalar(float(margin))
            ipq.addEquation(eq)
    return ipq, xin


def marabou_decider(
    verbosity: int = 0, robust_slack_abs: float = 1e-4, robust_slack_rel: float = 1e-2
) -> Decider:
    """A :data:`Decider` backed by Marabou (see the module docstring for the encoding).

    ``adversarial`` is returned only with a witness verified in exact arithmetic. Marabou's
    ``unsat`` is floating point: measured on 74 random tiny queries it still said ``unsat`` up to
    7e-5 (1.3e-3 relative) *above* the exact ``δ*``. So ``robust`` at δ is claimed only when
    Marabou reports ``unsat`` at the inflated radius ``δ·(1 + robust_slack_rel) +
    robust_slack_abs``; between the two the answer is ``unknown`` (set both slacks to 0 for raw
    Marabou). Timeouts are whole seconds in Marabou (rounded up), shared by all sub-queries.
    """
    try:
        from maraboupy import MarabouCore
    except ImportError as exc:  # pragma: no cover - maraboupy is a dependency
        raise PaperReproError(f"maraboupy is not available: {exc}") from None
    if robust_slack_abs < 0 or robust_slack_rel < 0:
        raise PaperReproError("Marabou robustness slacks must be ≥ 0")

    def decide(query: Query, delta: float, timeout_s: float) -> Decision:
        if not (delta >= 0 and math.isfinite(delta)):
            raise PaperReproError(f"the radius δ must be finite and ≥ 0, got {delta}")
        t0 = time.perf_counter()
        inflated = delta * (1.0 + robust_slack_rel) + robust_slack_abs
        slack = 1e-7 * (1.0 + float(np.abs(query.network.forward(query.x)).max()))

        def solve(radius: float, target: int, margin: float):
            left = timeout_s - (time.perf_counter() - t0)
            if left <= 0:
                return "timeout", None
            ipq, xin = _build(query, float(radius), target, margin)
            options = MarabouCore.Options()
            options._timeoutInSeconds = max(1, math.ceil(left))
            options._verbosity = verbosity
            options._numWorkers = 1
            options._numBlasThreads = 1
            code, vals, _stats = MarabouCore.solve(ipq, options, "")
            if code != "sat":
                return code, None
            raw = np.array([vals[v] for v in xin], dtype=np.float64)
            return code, repair_witness(query, raw, delta)  # exact check within δ itself

        unknown = ""
        for target in query.targets():
            code, witness = solve(inflated, target, 0.0)
            if code == "unsat":
                continue  # robust for this target, with the safety slack
            if witness is not None:
                return Decision(Verdict.ADVERSARIAL, witness, time.perf_counter() - t0)
            if code != "sat":
                unknown = f"Marabou returned {code} for target {target}"
                continue
            # sat only near δ: look for an exactly verified witness within δ itself
            margins = (0.0, slack) if inflated > delta else (slack,)
            for margin in margins:
                code, witness = solve(delta, target, margin)
                if witness is not None:
                    return Decision(Verdict.ADVERSARIAL, witness, time.perf_counter() - t0)
                if code != "sat":
                    break
            unknown = (
                f"target {target}: no exactly verified witness within δ, and Marabou is sat "
                f"at the inflated radius {inflated:.6g}"
            )
        if unknown:
            return Decision(Verdict.UNKNOWN, None, time.perf_counter() - t0, unknown)
        return Decision(Verdict.ROBUST, None, time.perf_counter() - t0)

    return decide
