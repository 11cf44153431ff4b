"""``verify``: decide a VNN-LIB property of a ReLU network (VNN-COMP's ``sat`` / ``unsat``).

The property (:class:`~paper_repro.vnnlib.Property`) is a disjunction of cases, each an input box
``[l, u]`` and output constraints ``C y ≤ d``. It is ``sat`` iff some case has a point.

1. **Falsifier** (:mod:`paper_repro.exact.frontends.falsify`): multi-restart PGD on every case; a
   candidate is accepted only after the exact check below, and reported at once.
2. **Reduction to the fixed-δ engines**, per case (unless ``VerifyOptions.split_bab`` is
   ``None``, first the batched bound engine
   :class:`paper_repro.exact.engines.split_bab.SplitSearch`, resumed in a later pass if it
   ran out of its share; then, if it gives up before the deadline, the LP engine
   :meth:`paper_repro.exact.engines.bab.BabEngine.decide`): the float box ``[l_f, l_f + s]``
   (``l_f`` the property's lower bound rounded down, ``s`` the width rounded up so that it
   covers the exact box) is the image of ``z ∈ [0,1]^{n′}`` under
   ``x = l_f + s ⊙ z`` (coordinates with ``s = 0`` are constants, folded into the bias), folded
   into the first layer; that cube is the engine's L∞ ball of radius 0.5 around ``z = 0.5``. The
   constraints become an extra linear output layer ``o_0 = 0``, ``o_k = c_k·y − d_k − E_k``
   folded into the last layer, with target class 0: the engine's "``o_0 ≥ o_k`` for all ``k``"
   (ties count) is "every constraint holds". ``E_k`` is a rigorous bound on the float rounding
   of the two folds (:func:`~paper_repro.exact.frontends.case_fold.fold_case`), so ``robust``
   for the folded network implies that no point of the exact box meets the case, strict or
   not: ``unsat`` only comes from the engine's safe bounds. An engine witness is mapped back
   to ``x``; if it fails the exact check (it lies within ``2E`` of the boundary), the case is
   decided again with ``+2E``, whose witnesses meet the constraints exactly (strict ones too).
3. **Exact check** (:func:`check_point`): every reported point is a float64 ``x`` inside the
   property's box and satisfying the case's constraints (strict ones strictly) in exact rational
   arithmetic on the *original* network (:func:`~paper_repro.exact.witnesses.witness.exact_logits`).
"""

from __future__ import annotations

import enum
import math
import sys
import time
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from paper_repro.bounds.refine_layers import refine_bounds
from paper_repro.errors import PaperReproError
from paper_repro.exact.decide import Decision, Verdict
from paper_repro.exact.engines.bab import BabEngine, BabOptions
from paper_repro.exact.engines.input_split import InputSplitOptions, InputSplitSearch
from paper_repro.exact.engines.split_bab import (
    SplitBabOptions,
    SplitSearch,
    crown_bounds,
    crown_proves,
    root_bounds,
)
from paper_repro.exact.frontends.case_fold import (
    FloatBox,
    float_box,
    fold_case,
    from_cube,
    polytope,
)
from paper_repro.exact.frontends.falsify import PgdOptions, pgd_falsify
from paper_repro.exact.frontends.point_check import check_point, float32_slack
from paper_repro.exact.frontends.progress import Progress
from paper_repro.exact.witnesses.witness import ExactNetwork, round_down
from paper_repro.network import ReluNetwork
from paper_repro.query import Norm, Query
from paper_repro.vnnlib import Case, Property

_PASSES = 8
"""Most passes over the cases of a property (see :func:`verify_property`)."""

_KEEP_BYTES = 2**30
"""Most bytes of open nodes kept, over all cases, by timed-out split-BaB searches for the
later passes (a search that would exceed it starts again instead)."""


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
    ``None``: none (docs/verify.md compares it with the LP engine on the development benchmark);
    ``input_split``: options of input bisection, used instead of ``split_bab`` on
    cases whose box has at most ``input_split.max_dim`` inputs of non-zero width (``None``:
    never; both ``None``: the LP engine alone, as ``--engine lp``); ``progress``: seconds
    between progress lines on stderr (which case of which pass, how many are proved; 0: none),
    also given to the LP engine; split-BaB's own lines come from ``split_bab.progress``."""

    timeout: float = 60.0
    seed: int = 0
    pgd: PgdOptions | None = PgdOptions()  # noqa: RUF009 (frozen: shared safely)
    falsify_share: float = 0.3
    split_bab: SplitBabOptions | None = SplitBabOptions()  # noqa: RUF009 (frozen)
    input_split: InputSplitOptions | None = InputSplitOptions()  # noqa: RUF009 (frozen)
    progress: float = 0.0

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
    boxes = [float_box(c) for c in prop.cases]
    say = Progress(options.progress, start).say

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
            polys = [polytope(prop.cases[k]) for k in ks]

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
        say(f"falsifier: no counterexample in {len(groups)} box(es)", force=True)
    # pass 1: every case gets an equal share of the time left; then the cases that ran out of
    # their share are decided again with the time the easy ones left, pass after pass while a
    # pass leaves time (a split-BaB search resumes from its open nodes, the LP engine starts
    # again); at most _PASSES passes, in case an engine kept giving up early with "timeout"
    pending = list(range(len(prop.cases)))
    reasons: dict[int, tuple[bool, str]] = {}
    shared: dict = {}  # split-BaB root bounds per box, timed-out searches per case
    proved: set[int] = set()
    for pass_no in range(_PASSES):
        todo = [k for k in pending if pass_no == 0 or reasons.get(k, (False, ""))[0]]
        if not todo:
            break
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
            end = min(deadline, now + share)
            say(
                f"pass {pass_no + 1}, case {k} ({i + 1} of {len(todo)} this pass, {share:.1f} s);"
                f" {len(proved)} of {len(prop.cases)} cases proved"
            )
            out = _decide_case(network, k, case, boxes[k], options, (end, deadline), shared)
            if isinstance(out, np.ndarray):
                found = sat(out, k, "bab")
                if found is not None:
                    return found
                out = (False, "the engine's witness fails the exact check")
            if out is None:
                reasons.pop(k, None)
                proved.add(k)
            else:
                reasons[k] = out
        pending = sorted(reasons)
        say(f"pass {pass_no + 1} done: {len(proved)} of {len(prop.cases)} cases proved", True)
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
    k: int,
    case: Case,
    box: FloatBox,
    options: VerifyOptions,
    deadlines: tuple[float, float],
    shared: dict,
) -> np.ndarray | tuple[bool, str] | None:
    """The engines on one case: ``None`` (proved: no point), a candidate ``x`` (float64
    ``[n]``), or ``(timed_out, why it gave up)``. ``k``: the case's index (for progress lines);
    ``deadlines``: the case's share and the property's.

    First :class:`~paper_repro.exact.engines.split_bab.SplitSearch` (on a box with at most
    ``options.input_split.max_dim`` inputs of non-zero width,
    :class:`~paper_repro.exact.engines.input_split.InputSplitSearch`) on the *outer* fold (pad
    ``−E``: ``robust`` proves the case empty), with the root bounds ``shared`` by the cases of
    one box; a search that times out is kept in ``shared`` and resumed by the next call for
    the same case. A split-BaB search still open after ``refine_after`` of the time left has
    the box's root bounds refined first (:func:`_run_split`). If it gives up before the deadline (a
    leaf, memory) or its candidate fails the exact check, the LP engine: on the outer fold,
    then, if that finds a point that fails the exact check, on the *inner* fold (pad ``+2E``:
    its points meet the case exactly, strict constraints strictly, up to the rounding of
    ``x = l + s⊙z``)."""
    deadline, total = deadlines
    few = options.input_split is not None and int((box.s > 0).sum()) <= options.input_split.max_dim
    if options.split_bab is not None or few:
        folded, active = fold_case(network, case, box.lo, box.s, -1.0)
        search = shared.get(("search", id(case)))
        rows = np.eye(folded.num_classes)[1:]  # o_k − o_0 with o_0 = 0: the case's rows
        zeros, ones = np.zeros(folded.input_dim), np.ones(folded.input_dim)
        key = _box_key(case)
        if search is None and few:
            search = InputSplitSearch(folded, zeros, ones, rows, options.input_split)
        elif search is None:
            if ("crown", key) not in shared:
                shared[("crown", key)] = crown_bounds(folded, zeros, ones)
            crown = shared[("crown", key)]
            if crown_proves(folded, zeros, ones, rows, crown):  # easy cases: no optimisation
                return None
            if key not in shared:
                shared[key] = root_bounds(folded, zeros, ones, options.split_bab, crown)
            search = SplitSearch(
                folded, zeros, ones, rows, options.split_bab, shared[key], f"case {k}"
            )
        if isinstance(search, SplitSearch):
            d = _run_split(search, key, options.split_bab, (deadline, total), shared)
        else:
            d = search.run(deadline)
        # a timed-out search is resumed in a later pass while the kept ones fit in memory
        shared.pop(("search", id(case)), None)
        searches = (SplitSearch, InputSplitSearch)
        kept = sum(v.open_bytes for v in shared.values() if isinstance(v, searches))
        if d.message.startswith("timeout") and kept + search.open_bytes <= _KEEP_BYTES:
            shared[("search", id(case))] = search
        if d.verdict == Verdict.ROBUST:
            return None
        if d.verdict == Verdict.ADVERSARIAL and d.witness is not None:
            x = from_cube(box, active, d.witness)
            if check_point(network, case, x, box.rational) is not None:
                return x
        elif d.message.startswith("timeout") or time.monotonic() >= deadline:
            return True, f"{'input split' if few else 'split-BaB'} {d.message}"
    for pad in (-1.0, 2.0):
        folded, active = fold_case(network, case, box.lo, box.s, pad)
        query = Query(folded, np.full(folded.input_dim, 0.5), 1, 0, Norm.LINF)
        bab = BabOptions(seed=options.seed, attack=False, progress=options.progress)
        engine = BabEngine(query, bab)
        decision = engine.decide(0.5, deadline)
        if decision.verdict == Verdict.ROBUST:
            if pad < 0:
                return None
            return False, "a point exists only within float rounding of the boundary"
        if decision.verdict != Verdict.ADVERSARIAL or decision.witness is None:
            timed_out = time.monotonic() >= deadline or decision.message.startswith("timeout")
            return timed_out, decision.message or "the engine gave up"
        x = from_cube(box, active, decision.witness)
        if pad > 0 or check_point(network, case, x, box.rational) is not None:
            return x
    raise AssertionError("unreachable")  # pragma: no cover


def _run_split(
    search: SplitSearch,
    key: tuple,
    options: SplitBabOptions,
    deadlines: tuple[float, float],
    shared: dict,
) -> Decision:
    """Run ``search`` to the case's deadline; if it is still open after
    ``options.refine_after`` of the property's time left and its box's root bounds
    (``shared[key]``) have not been refined yet, refine them
    (:func:`~paper_repro.bounds.refine_layers.refine_bounds`, at most ``options.refine_share``
    of the property's time left) and continue with them. A search resumed after its box's
    bounds were refined continues with the refined ones."""
    deadline, total = deadlines
    if shared[key] is not search.root_pre:
        search.set_root_bounds(shared[key])
    net = search.bounder.net
    if options.refine is None or ("refined", key) in shared or len(net.weights) < 3:
        return search.run(deadline)
    now = time.monotonic()
    d = search.run(min(deadline, now + options.refine_after * (total - now)))
    if not d.message.startswith("timeout") or time.monotonic() >= deadline:
        return d
    now = time.monotonic()
    box = search.bounder.region
    pre, report = refine_bounds(
        net, box.lo, box.hi, shared[key], options.refine, now + options.refine_share * (total - now)
    )
    shared[key], shared[("refined", key)] = pre, report
    if options.progress > 0:
        print(
            f"# refined the root bounds of hidden layers {list(report.layers)}: "
            f"{report.nodes} subdomains, {report.stabilised} ReLUs stabilised, "
            f"{time.monotonic() - now:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    search.set_root_bounds(pre)
    return search.run(deadline)


def _box_key(case: Case) -> tuple:
    return (case.box.lower, case.box.upper, case.box.lower_strict, case.box.upper_strict)
