"""``verify``: decide a VNN-LIB property of a ReLU network (VNN-COMP's ``sat`` / ``unsat``).

The property (:class:`~paper_repro.vnnlib.Property`) is a disjunction of cases, each an input box
``[l, u]`` and output constraints ``C y ≤ d``. It is ``sat`` iff some case has a point.

1. **Falsifier** (:mod:`paper_repro.exact.frontends.falsify`): multi-restart PGD on every case; a
   candidate is accepted only after the exact check below, and reported at once.
2. **Reduction to the fixed-δ engines**, per case (unless ``VerifyOptions.split_bab`` is
   ``None``, first the batched bound engine
   :class:`paper_repro.exact.engines.split_bab.SplitSearch`, resumed in the second pass if it
   ran out of its share; then, if it gives up before the deadline, the LP engine
   :meth:`paper_repro.exact.engines.bab.BabEngine.decide`): the float box ``[l_f, l_f + s]``
   (``l_f`` the property's lower bound rounded down, ``s`` the width rounded up so that it
   covers the exact box) is the image of ``z ∈ [0,1]^{n′}`` under
   ``x = l_f + s ⊙ z`` (coordinates with ``s = 0`` are constants, folded into the bias), folded
   into the first layer; that cube is the engine's L∞ ball of radius 0.5 around ``z = 0.5``. The
   constraints become an extra linear output layer ``o_0 = 0``, ``o_k = c_k·y − d_k − E_k``
   folded into the last layer, with target class 0: the engine's "``o_0 ≥ o_k`` for all ``k``"
   (ties count) is "every constraint holds". ``E_k`` is a rigorous bound on the float rounding
   of the two folds (:func:`_fold`), so ``robust`` for the folded network implies that no point of
   the exact box meets the case, strict or not: ``unsat`` only comes from the engine's safe
   bounds. An engine witness is mapped back to ``x``; if it fails the exact check (it lies
   within ``2E`` of the boundary), the case is decided again with ``+2E``, whose witnesses meet
   the constraints exactly (strict ones too).
3. **Exact check** (:func:`check_point`): every reported point is a float64 ``x`` inside the
   property's box and satisfying the case's constraints (strict ones strictly) in exact rational
   arithmetic on the *original* network (:func:`~paper_repro.exact.witnesses.witness.exact_logits`).
"""

from __future__ import annotations

import enum
import math
import time
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from paper_repro.bounds.safe import gamma
from paper_repro.errors import PaperReproError
from paper_repro.exact.decide import Verdict
from paper_repro.exact.engines.bab import BabEngine, BabOptions
from paper_repro.exact.engines.split_bab import (
    SplitBabOptions,
    SplitSearch,
    crown_bounds,
    crown_proves,
    root_bounds,
)
from paper_repro.exact.frontends.falsify import PgdOptions, pgd_falsify
from paper_repro.exact.witnesses.rational import exact_activations
from paper_repro.exact.witnesses.witness import ExactNetwork, exact_logits, round_down, round_up
from paper_repro.models import network_to_torch
from paper_repro.network import ReluNetwork
from paper_repro.query import Norm, Query
from paper_repro.vnnlib import Case, Property

_U = 2.0**-53
_KEEP_BYTES = 2**30
"""Most bytes of open nodes kept, over all cases, by timed-out split-BaB searches for the
second pass (a search that would exceed it starts again instead)."""


class VerifyStatus(enum.StrEnum):
    """VNN-COMP answers: ``sat`` (a checked counterexample), ``unsat`` (proved), ``timeout``
    (the time limit ended the search), ``unknown`` (gave up for another reason, stated)."""

    SAT = "sat"
    UNSAT = "unsat"
    TIMEOUT = "timeout"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class VerifyOptions:
    """``timeout``: wall seconds for the whole property; ``seed``: falsifier and engine seed;
    ``pgd``: falsifier options (``None``: no falsifier); ``falsify_share``: most fraction of the
    timeout the falsifier may use; ``split_bab``: options of the batched bound engine, tried
    first on each case (the LP engine decides the cases it gives up on before the deadline);
    ``None``: the LP engine only (docs/verify.md compares the two on the development
    benchmark)."""

    timeout: float = 60.0
    seed: int = 0
    pgd: PgdOptions | None = PgdOptions()  # noqa: RUF009 (frozen: shared safely)
    falsify_share: float = 0.3
    split_bab: SplitBabOptions | None = SplitBabOptions()  # noqa: RUF009 (frozen)

    def __post_init__(self) -> None:
        if not (self.timeout > 0 and math.isfinite(self.timeout)):
            raise PaperReproError(f"timeout must be finite and > 0 seconds, got {self.timeout}")


@dataclass(frozen=True)
class VerifyResult:
    """The answer. For ``sat``: ``x`` (float64 ``[n]``, the point to run), ``point`` (the exact
    point checked: ``x`` itself except on coordinates whose box holds no float64, e.g. ``l = u =
    0.1``, where it is the exact bound), its exact outputs ``y``, the ``case`` it meets,
    ``exact_slack`` (least ``d − c·y`` over the case's constraints, rounded down; ≥ 0) and
    ``float32_slack`` (the same from the float32 torch model at ``x``; may be slightly negative
    by rounding). ``found_by``: ``box``, ``pgd`` or ``bab``. ``message``: why ``timeout`` or
    ``unknown``."""

    status: VerifyStatus
    seconds: float
    x: np.ndarray | None = None
    point: tuple[Fraction, ...] | None = None
    y: tuple[Fraction, ...] | None = None
    case: int | None = None
    exact_slack: float | None = None
    float32_slack: float | None = None
    found_by: str = ""
    message: str = ""


@dataclass(frozen=True)
class _FloatBox:
    """A case's box in floats: ``[lo, lo + s]`` covers it exactly (``lo`` rounded down, ``s``
    rounded up); ``inner_lo ≤ x ≤ inner_hi`` are floats inside it, except on the coordinates of
    ``rational`` (no float64 inside; the exact value used instead), where both are the nearest
    float."""

    lo: np.ndarray
    s: np.ndarray
    inner_lo: np.ndarray
    inner_hi: np.ndarray
    rational: dict[int, Fraction]


def check_point(
    network: ReluNetwork | ExactNetwork,
    case: Case,
    x: np.ndarray,
    rational: dict[int, Fraction] | None = None,
) -> tuple[list[Fraction], list[Fraction]] | None:
    """``(point, outputs)`` in exact rationals if the point — ``x`` (float64 ``[n]``) with the
    coordinates of ``rational`` replaced by those exact values — lies in ``case``'s box and meets
    every constraint of ``case`` exactly on ``network`` (strict ones strictly), else ``None``."""
    exact = network if isinstance(network, ExactNetwork) else ExactNetwork(network)
    xf = np.asarray(x, np.float64).reshape(-1)
    if not np.all(np.isfinite(xf)):
        return None
    point = [Fraction(float(v)) for v in xf]
    for i, v in (rational or {}).items():
        point[i] = v
    if not case.box.contains(point):
        return None
    y = exact_logits(exact, xf) if not rational else exact_activations(exact.network, point)[-1]
    return (point, y) if all(c.holds(y) for c in case.constraints) else None


def verify_property(
    network: ReluNetwork, prop: Property, options: VerifyOptions = VerifyOptions()
) -> VerifyResult:
    """Decide ``prop`` on ``network`` (see the module docstring).

    Raises:
        PaperReproError: the property's input/output counts do not match the network.
    """
    start = time.monotonic()
    deadline = start + options.timeout
    if prop.n_inputs != network.input_dim or prop.n_outputs != network.num_classes:
        raise PaperReproError(
            f"the property has {prop.n_inputs} inputs and {prop.n_outputs} outputs but the "
            f"network maps {network.input_dim} inputs to {network.num_classes} outputs"
        )
    if not prop.cases:
        return VerifyResult(VerifyStatus.UNSAT, time.monotonic() - start)
    exact = ExactNetwork(network)
    boxes = [_float_box(c) for c in prop.cases]

    def sat(x: np.ndarray, k: int, how: str) -> VerifyResult | None:
        x = np.clip(x, boxes[k].inner_lo, boxes[k].inner_hi)
        found = check_point(exact, prop.cases[k], x, boxes[k].rational)
        if found is None:
            return None
        point, y = found
        slack = min((c.slack(y) for c in prop.cases[k].constraints), default=None)
        return VerifyResult(
            VerifyStatus.SAT,
            time.monotonic() - start,
            x=x.copy(),
            point=tuple(point),
            y=tuple(y),
            case=k,
            exact_slack=None if slack is None else round_down(slack),
            float32_slack=float32_slack(network, prop.cases[k], x),
            found_by=how,
        )

    for k, case in enumerate(prop.cases):  # no output constraint: the box centre is a witness
        if not case.constraints:
            found = sat(0.5 * (boxes[k].inner_lo + boxes[k].inner_hi), k, "box")
            if found is not None:
                return found
    if options.pgd is not None:
        result: list[VerifyResult] = []
        groups: dict[tuple, list[int]] = {}  # cases by box (PGD runs per box)
        for k in range(len(prop.cases)):
            groups.setdefault(_box_key(prop.cases[k]), []).append(k)
        budget = time.monotonic() + options.falsify_share * options.timeout
        for ks in groups.values():
            box = boxes[ks[0]]
            polys = [_polytope(prop.cases[k]) for k in ks]

            def check(x: np.ndarray, i: int, ks=ks) -> bool:
                found = sat(x, ks[i], "pgd")
                if found is not None:
                    result.append(found)
                return found is not None

            pgd_falsify(
                network,
                box.inner_lo,
                box.inner_hi,
                polys,
                check,
                min(deadline, budget),
                options.pgd,
            )
            if result:
                return result[0]
    # pass 1: every case gets an equal share of the time left; pass 2: the cases that ran out
    # of their share are decided again with the time the easy ones left (a split-BaB search
    # resumes from its open nodes, the LP engine starts again)
    pending = list(range(len(prop.cases)))
    reasons: dict[int, tuple[bool, str]] = {}
    shared: dict = {}  # split-BaB root bounds per box, timed-out searches per case
    for rerun in (False, True):
        todo = [k for k in pending if not rerun or reasons.get(k, (False, ""))[0]]
        for i, k in enumerate(todo):
            now = time.monotonic()
            if now >= deadline:
                reasons[k] = (True, "time limit reached")
                continue
            case = prop.cases[k]
            if not case.constraints:  # the box centre failed: impossible for a non-empty box
                reasons[k] = (False, "no point of the box could be checked")
                continue
            share = (deadline - now) / (len(todo) - i)
            out = _decide_case(network, case, boxes[k], options, min(deadline, now + share), shared)
            if isinstance(out, np.ndarray):
                found = sat(out, k, "bab")
                if found is not None:
                    return found
                out = (False, "the engine's witness fails the exact check")
            if out is None:
                reasons.pop(k, None)
            else:
                reasons[k] = out
        pending = sorted(reasons)
        if not pending or time.monotonic() >= deadline:
            break
    if not reasons:
        return VerifyResult(VerifyStatus.UNSAT, time.monotonic() - start)
    timed_out = all(t for t, _ in reasons.values())
    status = VerifyStatus.TIMEOUT if timed_out else VerifyStatus.UNKNOWN
    message = "; ".join(f"case {k}: {why}" for k, (_, why) in sorted(reasons.items()))
    return VerifyResult(status, time.monotonic() - start, message=message)


def _decide_case(
    network: ReluNetwork,
    case: Case,
    box: _FloatBox,
    options: VerifyOptions,
    deadline: float,
    shared: dict,
) -> np.ndarray | tuple[bool, str] | None:
    """The engines on one case: ``None`` (proved: no point), a candidate ``x`` (float64
    ``[n]``), or ``(timed_out, why it gave up)``.

    First :class:`~paper_repro.exact.engines.split_bab.SplitSearch` on the *outer* fold (pad
    ``−E``: ``robust`` proves the case empty), with the root bounds ``shared`` by the cases of
    one box; a search that times out is kept in ``shared`` and resumed by the next call for
    the same case. If it gives up before the deadline (a leaf, memory) or its candidate fails the
    exact check, the LP engine: on the outer fold, then, if that finds a point that fails the
    exact check, on the *inner* fold (pad ``+2E``: its points meet the case exactly, strict
    constraints strictly, up to the rounding of ``x = l + s⊙z``)."""
    if options.split_bab is not None:
        folded, active = _fold(network, case, box.lo, box.s, -1.0)
        search = shared.get(("search", id(case)))
        if search is None:
            zeros, ones = np.zeros(folded.input_dim), np.ones(folded.input_dim)
            key = _box_key(case)
            if ("crown", key) not in shared:
                shared[("crown", key)] = crown_bounds(folded, zeros, ones)
            crown = shared[("crown", key)]
            rows = np.eye(folded.num_classes)[1:]  # o_k − o_0 with o_0 = 0: the case's rows
            if crown_proves(folded, zeros, ones, rows, crown):  # easy cases: no optimisation
                return None
            if key not in shared:
                shared[key] = root_bounds(folded, zeros, ones, options.split_bab, crown)
            search = SplitSearch(folded, zeros, ones, rows, options.split_bab, shared[key])
        d = search.run(deadline)
        # a timed-out search is resumed in the second pass while the kept ones fit in memory
        shared.pop(("search", id(case)), None)
        kept = sum(v.open_bytes for v in shared.values() if isinstance(v, SplitSearch))
        if d.message.startswith("timeout") and kept + search.open_bytes <= _KEEP_BYTES:
            shared[("search", id(case))] = search
        if d.verdict == Verdict.ROBUST:
            return None
        if d.verdict == Verdict.ADVERSARIAL and d.witness is not None:
            x = _from_cube(box, active, d.witness)
            if check_point(network, case, x, box.rational) is not None:
                return x
        elif d.message.startswith("timeout") or time.monotonic() >= deadline:
            return True, f"split-BaB {d.message}"
    for pad in (-1.0, 2.0):
        folded, active = _fold(network, case, box.lo, box.s, pad)
        query = Query(folded, np.full(folded.input_dim, 0.5), 1, 0, Norm.LINF)
        engine = BabEngine(query, BabOptions(seed=options.seed, attack=False))
        decision = engine.decide(0.5, deadline)
        if decision.verdict == Verdict.ROBUST:
            if pad < 0:
                return None
            return False, "a point exists only within float rounding of the boundary"
        if decision.verdict != Verdict.ADVERSARIAL or decision.witness is None:
            timed_out = time.monotonic() >= deadline or decision.message.startswith("timeout")
            return timed_out, decision.message or "the engine gave up"
        x = _from_cube(box, active, decision.witness)
        if pad > 0 or check_point(network, case, x, box.rational) is not None:
            return x
    raise AssertionError("unreachable")  # pragma: no cover


def _from_cube(box: _FloatBox, active: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``x = l + s⊙z`` on the ``active`` coordinates (``l`` elsewhere), clipped into the box."""
    x = box.lo.copy()
    x[active] = box.lo[active] + box.s[active] * np.asarray(z)
    return np.clip(x, box.inner_lo, box.inner_hi)


def float32_slack(network: ReluNetwork, case: Case, x: np.ndarray) -> float:
    """``min_k (d_k − c_k·y)`` with ``y`` from the float32 torch model at ``x`` (``inf`` if the
    case has no constraint)."""
    import torch

    model = network_to_torch(network, torch.float32)
    with torch.no_grad():
        y = model(torch.as_tensor(np.asarray(x), dtype=torch.float32).reshape(1, -1))[0]
    y64 = y.double().numpy()
    c, d = _polytope(case)
    return float(np.min(d - c @ y64)) if c.shape[0] else math.inf


def _box_key(case: Case) -> tuple:
    return (case.box.lower, case.box.upper, case.box.lower_strict, case.box.upper_strict)


def _polytope(case: Case) -> tuple[np.ndarray, np.ndarray]:
    """The case's constraints as floats: ``C`` ``[K, m]``, ``d`` ``[K]``."""
    m = len(case.constraints[0].coeffs) if case.constraints else 0
    c = np.array([[float(v) for v in k.coeffs] for k in case.constraints]).reshape(-1, m)
    d = np.array([float(k.rhs) for k in case.constraints])
    return c, d


def _float_box(case: Case) -> _FloatBox:
    """The :class:`_FloatBox` of ``case``."""
    box = case.box
    lo = np.array([round_down(v) for v in box.lower])
    s = np.array([round_up(v) for v in box.upper]) - lo
    for i in range(s.size):  # the width must reach the exact upper bound
        while Fraction(float(lo[i])) + Fraction(float(s[i])) < box.upper[i]:
            s[i] = math.nextafter(s[i], math.inf)
    inner_lo = np.array([_inside(v, st, 1) for v, st in zip(box.lower, box.lower_strict)])  # noqa: B905
    inner_hi = np.array([_inside(v, st, -1) for v, st in zip(box.upper, box.upper_strict)])  # noqa: B905
    rational = {}
    for i in np.flatnonzero(inner_lo > inner_hi):  # no float64 inside: use an exact value
        a, b = box.lower[i], box.upper[i]
        rational[int(i)] = a if a == b else (a + b) / 2
        inner_lo[i] = inner_hi[i] = float(rational[int(i)])
    return _FloatBox(lo, s, inner_lo, inner_hi, rational)


def _inside(v: Fraction, strict: bool, direction: int) -> float:
    """The float nearest ``v`` on its inner side (``direction`` +1: ``≥ v``; −1: ``≤ v``)."""
    f = round_up(v) if direction > 0 else round_down(v)
    if strict and Fraction(f) == v:
        f = math.nextafter(f, direction * math.inf)
    return f


def _fold(
    network: ReluNetwork, case: Case, lo: np.ndarray, s: np.ndarray, pad: float = -1.0
) -> tuple[ReluNetwork, np.ndarray]:
    """The engine's network ``z ↦ (0, C y(l + s⊙z) − d + pad·E)`` over ``z ∈ [0,1]^{n′}`` and
    the mask of the input coordinates kept (``s > 0``; at least one). ``pad < 0`` (outer):
    every output is ``≤`` the exact one; ``pad ≥ 1`` (inner): ``≥`` it, by ``(pad − 1) E`` more.

    ``E ≥ 0`` bounds the difference between the folded float network (before ``−E``) and the
    exact composition on the cube: first layer ``|ΔW z| + |Δb| ≤ 2(u |W₁ s| + γ_{n+1}(|W₁||l| +
    |b₁|))``, carried by ``|W_k|`` through the hidden layers (ReLU is 1-Lipschitz); last layer
    ``(|C|+ΔC)|W_L| e + (ΔC|W_L| + γ_m|C||W_L|) h_max + ΔC|b_L| + Δd + γ_{m+1}(|C||b_L| + |d|)``
    with ``h_max`` bounding the folded network's last hidden activations; all doubled."""
    ws, bs = list(network.weights), list(network.biases)
    if len(ws) == 1:  # y = relu(v) − relu(−v): one exact hidden layer for the fold
        m = ws[0].shape[0]
        ws = [np.vstack([ws[0], -ws[0]]), np.hstack([np.eye(m), -np.eye(m)])]
        bs = [np.concatenate([bs[0], -bs[0]]), np.zeros(m)]
    active = s > 0
    if not active.any():
        active[0] = True
    w1, b1 = ws[0], bs[0]
    w1a = w1[:, active] * s[active]
    b1f = b1 + w1 @ lo
    grow = 1.0 + 1e-9  # headroom for the rounding of the bound computations themselves
    rounding = gamma(w1.shape[1] + 1) * (np.abs(w1) @ np.abs(lo) + np.abs(b1))
    err = 2.0 * (_U * np.abs(w1a).sum(axis=1) + rounding)
    hmax = (np.abs(w1a).sum(axis=1) + np.abs(b1f)) * grow
    for w, b in zip(ws[1:-1], bs[1:-1], strict=True):
        err = (np.abs(w) @ err) * grow
        hmax = (np.abs(w) @ hmax + np.abs(b)) * grow
    cq = [k.coeffs for k in case.constraints]
    cf = np.array([[float(v) for v in row] for row in cq])
    dq = [k.rhs for k in case.constraints]
    df = np.array([float(v) for v in dq])
    dc = np.array([[float(abs(Fraction(float(v)) - v)) for v in row] for row in cq]) * 2.0
    dd = np.array([float(abs(Fraction(float(v)) - v)) for v in dq]) * 2.0
    wl, bl = ws[-1], bs[-1]
    m = wl.shape[0]
    aw, ac = np.abs(wl), np.abs(cf)
    out_w = cf @ wl
    out_b = cf @ bl - df
    e = (ac + dc) @ aw @ err
    e += (dc @ aw + gamma(m) * (ac @ aw)) @ hmax
    e += dc @ np.abs(bl) + dd + gamma(m + 1) * (ac @ np.abs(bl) + np.abs(df))
    e = 2.0 * e * grow + 1e-300
    out_b = np.nextafter(out_b + pad * e, np.inf if pad > 0 else -np.inf)
    last_w = np.vstack([np.zeros((1, wl.shape[1])), out_w])
    last_b = np.concatenate([[0.0], out_b])
    folded = ReluNetwork.from_arrays([w1a, *ws[1:-1], last_w], [b1f, *bs[1:-1], last_b])
    return folded, active
