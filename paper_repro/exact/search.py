"""Public API: the provably minimal adversarial example of a query (Carlini et al., Sec. 3).

Two protocols:

* ``EXACT`` — minimise ``δ`` directly with the branch-and-bound
  (:mod:`paper_repro.exact.engines.bab`, default) or the big-M MILP
  (:mod:`paper_repro.exact.engines.milp`); optimal iff
  ``upper − lower ≤ tolerance``.
* ``BINARY_SEARCH`` — Carlini et al.'s protocol around a fixed-δ decider (BaB, MILP, SMT or
  Marabou): ``δ_max`` from the initial adversarial example, ``δ_min = 0``, bisect until
  ``δ_max − δ_min ≤ precision``.

Every reported witness has been checked in exact rational arithmetic.
"""

from __future__ import annotations

import enum
import math
import time
from dataclasses import dataclass

import numpy as np

from paper_repro.errors import PaperReproError
from paper_repro.exact.backends import Backend, backend_spec
from paper_repro.exact.decide import Decider, SmtSolver, Verdict
from paper_repro.exact.engine_parts.incumbent import attack_incumbent
from paper_repro.exact.witnesses.witness import (
    ExactNetwork,
    Witness,
    check_witness,
    float32_margin,
    float32_repair,
    initial_witness,
)
from paper_repro.query import MinAdvResult, Query, Status


class Protocol(enum.StrEnum):
    """``exact``: minimise δ directly; ``binary_search``: Carlini et al.'s bisection on δ."""

    EXACT = "exact"
    BINARY_SEARCH = "binary_search"


@dataclass(frozen=True)
class SolveOptions:
    """Options of :func:`minimal_adversarial`.

    Attributes:
        tolerance: ``EXACT`` stops when ``upper − lower ≤ tolerance`` (distance units).
        precision: ``BINARY_SEARCH`` stops when ``δ_max − δ_min ≤ precision`` (paper: 1e-3).
        protocol: see :class:`Protocol`.
        timeout: wall-clock seconds for the whole query.
        seed: seed of the initial attack's random starts.
        smt_solver: the solver of the ``smt`` backend (:class:`SmtSolver`: z3 or cvc5).
        progress: seconds between progress lines on stderr (0: none; BaB and binary search).
        max_distance: resolve ``δ*`` only up to this distance (``bab`` backend, ``exact``
            protocol): beyond it the search stops once it proves ``δ* ≥ max_distance``
            (status ``beyond``). ``None``: the whole domain.
    """

    tolerance: float = 1e-4
    precision: float = 1e-3
    protocol: Protocol = Protocol.EXACT
    timeout: float = 120.0
    seed: int = 0
    smt_solver: SmtSolver = SmtSolver.Z3
    progress: float = 0.0
    max_distance: float | None = None

    def __post_init__(self) -> None:
        if self.max_distance is not None and not self.max_distance > 0:
            raise PaperReproError(f"max_distance must be > 0, got {self.max_distance}")
        if not (self.tolerance >= 0 and math.isfinite(self.tolerance)):
            raise PaperReproError(f"tolerance must be finite and ≥ 0, got {self.tolerance}")
        if not (self.precision > 0 and math.isfinite(self.precision)):
            raise PaperReproError(f"precision must be finite and > 0, got {self.precision}")
        if not self.timeout > 0:
            raise PaperReproError(f"timeout must be > 0 seconds, got {self.timeout}")
        try:
            object.__setattr__(self, "protocol", Protocol(self.protocol))
        except ValueError:
            raise PaperReproError(
                f"unknown protocol {self.protocol!r}: expected exact or binary_search"
            ) from None
        object.__setattr__(self, "smt_solver", SmtSolver.parse(self.smt_solver))


def minimal_adversarial(
    query: Query,
    backend: Backend = Backend.BAB,
    options: SolveOptions = SolveOptions(),
    initial: np.ndarray | None = None,
) -> MinAdvResult:
    """Certified bracket ``lower ≤ δ* ≤ upper`` of the minimal adversarial distance of ``query``.

    Args:
        query: network, ``x`` (``[n_0]`` in [0,1]), label, target (or untargeted), norm.
        backend: the engine (``smt``/``marabou`` need ``BINARY_SEARCH``).
        options: tolerance, precision, protocol, timeout, seed.
        initial: an optional adversarial example ``[n_0]`` (e.g. from CW); it is checked exactly and
            used as the first incumbent / ``δ_max``. Without it a targeted attack is run.

    Returns:
        A :class:`MinAdvResult` whose witness (if any) is exactly adversarial with distance
        ``upper``; ``lower = upper = inf`` and no witness when no adversarial example exists.

    Raises:
        PaperReproError: unknown backend/protocol, or an exact-only request for a decider backend.
    """
    spec = backend_spec(backend)  # the registry: paper_repro.exact.backends
    backend = spec.backend
    if options.max_distance is not None and (
        backend != Backend.BAB or options.protocol != Protocol.EXACT
    ):
        raise PaperReproError(
            "max_distance is supported by the bab backend with the exact protocol only"
        )
    if options.protocol == Protocol.BINARY_SEARCH:
        res = binary_search(query, spec.decider(options), options, initial, str(backend))
        return _with_crown_lower(query, res, options.precision)
    minimize = spec.minimizer(options)
    start = time.monotonic()
    deadline = start + options.timeout
    out, extra = minimize(query, initial, deadline)
    attack = out.attack.distance if out.attack is not None else math.inf
    res = _result(
        query,
        out.lower,
        out.best,
        attack,
        start,
        str(backend),
        out.unstable,
        out.nodes,
        options.tolerance,
        extra,
    )
    return _with_crown_lower(query, res, options.tolerance)


def _with_crown_lower(query: Query, res: MinAdvResult, tol: float) -> MinAdvResult:
    """Raise an open bracket's lower end to CROWN's certified radius when that is larger (with no
    witness, over the whole domain: ``inf`` when CROWN proves no adversarial example exists)."""
    if res.status not in (Status.TIMEOUT, Status.UNKNOWN, Status.BEYOND):
        return res
    from dataclasses import replace

    from paper_repro.exact.engine_parts.certified_start import crown_lower_bound, crown_unreachable

    if math.isfinite(res.upper):
        certified = crown_lower_bound(query, res.upper)
    else:
        domain = query.domain_radius()
        unreachable = crown_unreachable(query, domain)
        certified = math.inf if unreachable else crown_lower_bound(query, domain)
    extra = {**res.extra, "crown_lower": certified}
    if certified <= res.lower:
        return replace(res, extra=extra)
    closed = (res.upper - certified <= tol) if math.isfinite(res.upper) else math.isinf(certified)
    return replace(
        res,
        lower=certified,
        status=Status.OPTIMAL if closed else res.status,
        message="" if closed else res.message,
        extra=extra,
    )


def binary_search(
    query: Query,
    decider: Decider,
    options: SolveOptions,
    initial: np.ndarray | None = None,
    backend: str = "decider",
) -> MinAdvResult:
    """Carlini et al.'s protocol: ``δ_max`` = distance of the initial adversarial example (given,
    else a targeted attack; else the whole domain is asked once), ``δ_min = 0``; ask the decider at
    the midpoint until ``δ_max − δ_min ≤ precision``. A decider witness lowers ``δ_max`` to its
    exact
    distance; ``robust`` raises ``δ_min``; ``unknown`` or the deadline ends the search with the
    bracket so far (status ``timeout``)."""
    start = time.monotonic()
    deadline = start + options.timeout
    exact = ExactNetwork(query.network)
    best = initial_witness(query, initial)
    if best is None:
        for t in query.targets():
            w = attack_incumbent(query, t, seed=options.seed, seconds=1.0, exact=exact)
            if w is not None and (best is None or w.distance < best.distance):
                best = w
    attack = best.distance if best is not None else math.inf
    domain = query.domain_radius()
    lo, calls, message = 0.0, 0, ""
    hi = best.distance if best is not None else domain
    if best is None:  # no attack succeeded: ask once whether anything exists at all
        verdict, best, message = _ask(query, decider, exact, domain, deadline)
        calls += 1
        if verdict == Verdict.ROBUST:
            return _result(query, math.inf, None, attack, start, backend, 0, calls, 0.0, {})
        hi = best.distance if best is not None else hi
    while not message and hi - lo > options.precision:
        mid = (lo + hi) / 2.0
        verdict, w, message = _ask(query, decider, exact, mid, deadline)
        calls += 1
        if options.progress > 0:
            import sys

            print(
                f"# binary search: δ = {mid:.6g} {verdict}, bracket [{lo:.6g}, {hi:.6g}] "
                f"after {time.monotonic() - start:.1f} s",
                file=sys.stderr,
                flush=True,
            )
        before = (lo, hi)
        if verdict == Verdict.ROBUST:
            lo = mid
        elif verdict == Verdict.ADVERSARIAL and w is not None:
            best, hi = w, min(hi, w.distance)
        if not message and (lo, hi) == before:
            message = "the decider's witness is farther than δ_max: no progress"
    lower = lo if best is not None else 0.0
    res = _result(query, lower, best, attack, start, backend, 0, calls, options.precision, {})
    if not message:
        return res
    # a decider that stopped with time left gave up: unknown, not timeout
    slack = max(0.05, 0.01 * options.timeout)
    timed_out = message.startswith("timeout") or time.monotonic() >= deadline - slack
    return _replace(res, Status.TIMEOUT if timed_out else Status.UNKNOWN, message)


def _ask(query: Query, decider: Decider, exact: ExactNetwork, delta: float, deadline: float):
    """One decider call → (verdict, checked witness, stop message)."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return Verdict.UNKNOWN, None, "timeout"
    d = decider(query, float(delta), remaining)
    if d.verdict == Verdict.UNKNOWN:
        return d.verdict, None, d.message or "decider gave up"
    if d.verdict == Verdict.ROBUST:
        return d.verdict, None, ""
    found = [check_witness(exact, query.x, d.witness, t, query.norm) for t in query.targets()]
    found = [w for w in found if w is not None]
    if not found:
        return Verdict.UNKNOWN, None, "decider returned a witness that fails the exact check"
    return d.verdict, min(found, key=lambda w: w.distance), ""


def _result(query, lower, best, attack, start, backend, unstable, nodes, tol, extra):
    best, f32_valid = _float32_valid(query, best, float(lower), tol)
    extra = {**extra, "float32_valid": f32_valid} if best is not None else extra
    upper = math.inf if best is None else best.distance
    lower = min(float(lower), upper)
    gap_ok = (upper - lower <= tol) if math.isfinite(upper) else not math.isfinite(lower)
    gave_up = bool(extra.get("finished"))  # the search ended with time left: not a timeout
    status = Status.OPTIMAL if gap_ok else (Status.UNKNOWN if gave_up else Status.TIMEOUT)
    beyond = gave_up and not gap_ok and lower >= extra.get("max_distance", math.inf)
    status = Status.BEYOND if beyond else status
    return MinAdvResult(
        status=status,
        lower=lower,
        upper=upper,
        witness=None if best is None else best.x.copy(),
        witness_class=None if best is None else best.target,
        attack_distance=float(attack),
        seconds=time.monotonic() - start,
        backend=backend,
        unstable_relus=int(unstable),
        margin_exact=None if best is None else best.margin,
        margin_float32=None if best is None else float32_margin(query.network, best.x, best.target),
        nodes=int(nodes),
        message=(
            "δ* ≥ max_distance: not resolved further (the lower end is proven)"
            if beyond
            else _open_reason(extra)
            if not gap_ok
            else ("" if f32_valid else _F32_NOTE)
        ),
        extra=dict(extra),
    )


_F32_NOTE = (
    "the witness is exactly adversarial but the float32 model misses the target by rounding "
    "(margin_float32 < 0) and no float32-valid point was found within the tolerance"
)


def _float32_valid(
    query: Query, best: Witness | None, lower: float, tol: float
) -> tuple[Witness | None, bool]:
    """The witness contract: exactly adversarial *and* reaching the target in the float32 model.

    A witness whose float32 margin is negative (it sits on the decision boundary) is pushed
    across it by :func:`~paper_repro.exact.witnesses.witness.float32_repair`, allowed to grow the
    distance only while ``upper − lower`` stays within ``tol`` (so an optimal bracket stays
    optimal). Returns the witness and whether it is float32-valid (``True`` for no witness)."""
    if best is None or float32_margin(query.network, best.x, best.target) >= 0.0:
        return best, True  # (a margin of exactly 0 is a tie, which the query counts)
    room = tol - (best.distance - lower) if best.distance - lower <= tol else tol
    limit = best.distance + max(0.0, room)
    fixed = float32_repair(ExactNetwork(query.network), query.x, best, query.norm, limit)
    return (fixed, True) if fixed is not None else (best, False)


def _open_reason(extra: dict) -> str:
    """Why a bracket stayed open: the deadline, or a search that ran out of nodes whose last
    regions' witnesses could not be made exact (the bracket is certified either way)."""
    if extra.get("finished"):
        return "search exhausted without an exact witness at the lower bound (bracket certified)"
    return "time limit reached before the bracket closed"


def _replace(res: MinAdvResult, status: Status, message: str) -> MinAdvResult:
    from dataclasses import replace

    return replace(res, status=status, message=message)
