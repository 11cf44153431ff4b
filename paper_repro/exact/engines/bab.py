"""Branch-and-bound that minimises ``δ = ‖x′ − x‖`` directly (the default exact engine).

Every node is a set of ReLU phase splits. Its lower bound is the smallest radius ``ρ`` at which the
node's triangle relaxation (:class:`paper_repro.bounds.lp.RelaxedLP`, bounds computed on ``R(x, U)``
with ``U`` the incumbent's distance) can reach the target. It is found by Newton steps on ``ρ``: the
fixed-radius LP ``min s`` (output-constraint slack) is solved at the probe; while ``s > 0`` its
dual vector, turned into a rigorous Neumaier–Shcherbina bound that is a function of the radius,
proves a larger radius below which the subtree holds no adversarial example. Infeasible splits are
certified by HiGHS's Farkas ray the same way. A node with unsplit unstable ReLUs is first (and
usually only) solved at the stop radius ``U − tolerance``: pruned if the relaxation cannot reach
the target there, else branched at once on that LP's duals, with the looser bound its dual proves
(the stop probe, :func:`~paper_repro.exact.engine_parts.node_bound.newton_bound`). The LP point run
through the true network, and the exact LP of its linear region, give incumbents (checked exactly).
As ``U`` shrinks the pre-activation bounds are recomputed on the smaller region. Nodes are explored
best-first; the branching ReLU maximises (dual weight of its triangle row) × (triangle height).
This is the BaB scheme of Bunel et al. (2018) applied to Carlini et al.'s minimal-distortion
objective instead of their binary search over δ.

:meth:`BabEngine.decide` is the fixed-δ form (a :data:`~paper_repro.exact.decide.Decider`).
"""

from __future__ import annotations

import heapq
import itertools
import time
from dataclasses import dataclass, field

import numpy as np

from paper_repro.bounds.hull_cuts import HullCutPool
from paper_repro.bounds.interval import (
    Bounds,
    InputRegion,
    count_unstable,
    interval_bounds,
    linear_range,
)
from paper_repro.bounds.lp import RelaxedLP, lp_tighten
from paper_repro.bounds.symbolic import (
    Phases,
    ReluRelaxation,
    margin_lower_bounds,
    symbolic_bounds,
)
from paper_repro.exact.decide import Decision, SearchOutcome, Verdict
from paper_repro.exact.engine_parts.bab_options import BabOptions
from paper_repro.exact.engine_parts.incumbent import attack_incumbent
from paper_repro.exact.engine_parts.node_bound import (
    NodeBound,
    NodeBoundResult,
    branch_choice,
    direct_bound,
    has_free_relu,
    newton_bound,
)
from paper_repro.exact.engine_parts.primal_heuristics import Incumbents
from paper_repro.exact.engine_parts.region import activation_pattern
from paper_repro.exact.witnesses.witness import Witness
from paper_repro.query import Norm, Query

_Relaxed = tuple[Bounds, list[ReluRelaxation]]
"""A node's bounds and its hidden layers' relaxations (computed once, by the symbolic bounds)."""


@dataclass(order=True)
class _Node:
    """A subtree: ReLU splits ``fixed``; ``hint``: the parent's dual weights for branching."""

    lb: float
    depth_key: int
    seq: int
    target: int = field(compare=False)
    fixed: Phases = field(compare=False)
    basis: object = field(compare=False, default=None)
    hint: list | None = field(compare=False, default=None)


@dataclass(frozen=True)
class _CapBounds:
    """What every node at one incumbent radius ``cap`` shares: the base bounds it was built on,
    the input region, the first layer's range and the memo of deeper layers' backward bounds
    (:func:`~paper_repro.bounds.symbolic.symbolic_bounds`)."""

    cap: float
    base: Bounds
    region: InputRegion
    first: tuple[np.ndarray, np.ndarray]
    memo: dict


class BabEngine:
    """Branch-and-bound for one :class:`~paper_repro.query.Query`; holds its own HiGHS models."""

    def __init__(self, query: Query, options: BabOptions | None = None) -> None:
        self.q = query
        self.opt = options or BabOptions()
        self.net, self.x, self.norm = query.network, query.x, query.norm
        self.domain = query.domain_radius()
        # the distances of interest: the domain, or less with max_distance (nodes beyond it are
        # pruned, so a finished search only proves δ* ≥ limit there)
        cap = self.opt.max_distance
        self.limit = self.domain if cap is None else min(self.domain, float(cap))
        self.lps: dict[int, RelaxedLP] = {}
        self.node_lps: dict[int, RelaxedLP] = {}
        self.pools: dict[int, HullCutPool] = {}
        self._shared: _CapBounds | None = None
        self.node_bound = self.opt.node_bound or (
            NodeBound.DIRECT if self.norm == Norm.L1 else NodeBound.NEWTON
        )
        self.inc = Incumbents(query, self.opt.descent_budget)
        self.exact = self.inc.exact
        self.nodes = 0
        self.filtered = 0  # nodes discarded by the CROWN filter (no LP)
        self.base: Bounds | None = None
        self.base_radius = np.inf
        self.tightened = self.cut_tightened = False

    # ---------------------------------------------------------------- incumbents and bounds
    @property
    def best(self) -> Witness | None:
        """The incumbent (:attr:`Incumbents.best`)."""
        return self.inc.best

    def offer(self, w: Witness | None) -> None:
        """:meth:`Incumbents.offer`."""
        self.inc.offer(w)

    def _lp(self, target: int) -> RelaxedLP:
        """The fixed-radius probe LP (objective ``min s``) of ``target``."""
        if target not in self.lps:
            cuts = self.opt.hull_cuts > 0
            lp = RelaxedLP(
                self.net, self.x, self.norm, target, False, cuts, free_slack=self.opt.stop_first
            )
            self.lps[target] = lp
            if cuts:
                self.pools[target] = HullCutPool(lp, self.opt.hull_cuts)
        return self.lps[target]

    def _node_lp(self, target: int) -> RelaxedLP:
        """The ``min δ + M s`` LP of ``target`` used by :attr:`NodeBound.DIRECT` nodes."""
        if target not in self.node_lps:
            self.node_lps[target] = RelaxedLP(self.net, self.x, self.norm, target, min_delta=True)
        return self.node_lps[target]

    def _refresh_base(self, radius: float, deadline: float) -> None:
        """Sound bounds on ``R(x, radius)``: IBP ∩ symbolic (∩ LP-tightened)."""
        region = InputRegion(self.x, radius, self.norm)
        bounds = symbolic_bounds(self.net, region, interval_bounds(self.net, region))
        if radius < self.opt.retighten_ratio * self.base_radius:
            for pool in self.pools.values():  # cuts of the larger box: make room for new ones
                pool.clear()
            self.cut_tightened = False
        self.tightened = self.nodes >= self.opt.tighten_after
        if self.opt.lp_tighten and len(self.net.hidden_sizes) > 1 and self.tightened:
            lp = self._lp(self.q.targets()[0])
            budget = min(deadline, time.monotonic() + max(0.0, deadline - time.monotonic()) / 4)
            targets = self.q.targets()
            bounds = lp_tighten(
                lp,
                radius,
                bounds,
                budget,
                adversarial=self.opt.adversarial_tightening and len(targets) == 1,
                refresh_every=self.opt.tighten_refresh,
            )
            bounds = symbolic_bounds(self.net, region, bounds)
        self.base, self.base_radius = bounds, radius

    def _cap(self, delta: float | None) -> float:
        cap = self.limit if delta is None else delta
        return cap if self.best is None else min(cap, self.best.distance)

    def _prunable(self, lb: float, delta: float | None) -> bool:
        """A subtree whose bound is ``lb`` holds nothing of interest: nothing within the cap,
        or (minimising) nothing closer than the incumbent by more than the tolerance."""
        if lb > self._cap(delta):
            return True
        tol = self.opt.tolerance if delta is None else 0.0
        return self.best is not None and lb >= self.best.distance - 0.99 * tol

    # ---------------------------------------------------------------- the search
    def search(self, deadline: float, delta: float | None = None) -> SearchOutcome:
        """Best-first BaB until ``upper − lower ≤ tolerance`` (``delta=None``) or, for a fixed
        ``delta``, until a witness within ``delta`` is found or every node's bound exceeds it."""
        targets = self.q.targets()
        attack = self._attack() if self.opt.attack and delta is None else None
        self._refresh_base(self._cap(delta), deadline)
        assert self.base is not None
        unstable = count_unstable(self.base)
        if self.best is not None:  # polish the first incumbent inside its own linear region
            pattern = activation_pattern(self.net, self.best.x)
            self.inc.try_region(self.best.target, pattern, self.base, self._cap(delta))
        seq = itertools.count()
        fixed0 = [np.zeros(h, np.int8) for h in self.net.hidden_sizes]
        heap = [_Node(0.0, 0, next(seq), t, fixed0) for t in targets]
        closed = np.inf  # smallest bound of a subtree closed without reaching the incumbent
        finished = False

        def close(lb: float) -> float:
            return min(closed, lb) if lb <= self._cap(delta) else closed

        report = time.monotonic() + self.opt.progress if self.opt.progress > 0 else np.inf
        while True:
            if not heap:
                finished = True
                break
            if time.monotonic() >= report:
                report = time.monotonic() + self.opt.progress
                self._report(min(closed, heap[0].lb), len(heap))
            out_of_nodes = self.opt.max_nodes is not None and self.nodes >= self.opt.max_nodes
            if time.monotonic() > deadline or out_of_nodes:
                break
            if delta is not None and self.best is not None and self.best.distance <= delta:
                break
            node = heapq.heappop(heap)
            if self._prunable(node.lb, delta):
                closed = close(node.lb)
                continue
            children = self._process(node, delta, deadline)
            if children is None:
                continue  # empty subtree
            lb, kids = children
            if self._prunable(lb, delta) or not kids:
                closed = close(lb)
                continue
            for kid in kids:
                kid.seq = next(seq)
                heapq.heappush(heap, kid)
        upper = np.inf if self.best is None else self.best.distance
        open_lb = min((n.lb for n in heap), default=np.inf)
        lower = min(closed, open_lb, upper)
        if delta is None and self.limit < self.domain:
            lower = min(lower, self.limit)  # pruned beyond the limit: only δ* ≥ limit is proven
        if delta is not None and finished and closed > delta:
            lower = max(lower, delta)  # every subtree's bound exceeds δ
        return SearchOutcome(lower, self.best, self.nodes, finished, unstable, attack)

    def _report(self, lower: float, open_nodes: int) -> None:
        """One progress line on stderr: LP solves, open nodes, the bracket so far."""
        import sys

        upper = np.inf if self.best is None else self.best.distance
        print(
            f"# bab: {self.nodes} LP solves, {open_nodes} open nodes, "
            f"bracket [{min(lower, upper):.6g}, {upper:.6g}]",
            file=sys.stderr,
            flush=True,
        )

    def _attack(self) -> Witness | None:
        attack = None
        for t in self.q.targets():
            w = attack_incumbent(self.q, t, seed=self.opt.seed, seconds=1.0, exact=self.exact)
            self.offer(w)
            if w is not None and (attack is None or w.distance < attack.distance):
                attack = w
        return attack

    def _process(self, node: _Node, delta: float | None, deadline: float):
        """Bound one node; returns ``None`` (empty within the cap) or ``(lb, children)``."""
        cap = self._cap(delta)
        late = not self.tightened and self.nodes >= self.opt.tighten_after
        full = [p.added >= p.max_cuts for p in self.pools.values()]
        if full and all(full) and not self.cut_tightened:  # tighten again through the cuts
            self.cut_tightened = late = True
        if late or cap < self.opt.retighten_ratio * self.base_radius:
            self._refresh_base(cap, deadline)
        shared = self._shared
        if shared is None or shared.cap != cap or shared.base is not self.base:
            region = InputRegion(self.x, cap, self.norm)
            w, b = self.net.weights[0], self.net.biases[0]
            shared = _CapBounds(cap, self.base, region, linear_range(w, b, region), {})
            self._shared = shared
        relax: list[ReluRelaxation] = []  # the hidden layers' relaxations, for configure
        bounds = symbolic_bounds(
            self.net,
            shared.region,
            shared.base,
            node.fixed,
            shared.first,
            shared.memo,
            symbolic_outputs=False,
            relaxations=relax,
        )
        if any((lo > hi).any() for lo, hi in bounds):
            return None  # the splits contradict sound bounds
        crown = self.opt.crown_filter
        if crown is None:
            crown = delta is not None or max(self.net.hidden_sizes, default=0) >= 64
        if crown:  # one backward pass may already prove the node empty
            margins = margin_lower_bounds(
                self.net, shared.region, relax, node.target, shared.memo.get("mag")
            )
            if (margins > 0).any():
                self.filtered += 1
                return None
        # the stop probe needs a stop radius: an incumbent, or the fixed δ
        stop_probe = self.opt.stop_first and has_free_relu(bounds, node.fixed)
        stop_probe = stop_probe and (delta is not None or self.best is not None)
        if self.node_bound == NodeBound.DIRECT and not stop_probe:
            lp, res = self._bound_direct(node, cap, (bounds, relax), deadline)
        else:
            lp, res = self._bound_newton(
                node, node.lb, cap, (bounds, relax), deadline, delta=delta, stop_probe=stop_probe
            )
        if res.lb == np.inf:
            return None  # no adversarial example within the cap in this subtree
        lb, weights, sol, converged = res.lb, res.weights, res.solution, res.converged
        # the LP point's activation region lies inside the node (the point meets its splits), so
        # a node that cannot hold a closer example (or one within δ) cannot give a witness worth
        # its region LP
        if sol is not None and sol.optimal and not self._prunable(lb, delta):
            xp = np.clip(self.x + lp.displacement(sol.col_value), 0.0, 1.0)
            tries = len(self.inc.tried)  # region LPs solved so far
            region = delta is None or tries < 2 + self.opt.region_share * self.nodes
            self.inc.from_lp_point(node.target, xp, self.base, self._cap(delta), region)
        choice = branch_choice(weights, bounds, node.fixed)
        if choice is None:  # every ReLU fixed: the LP was exact; its bound is final
            leaf = [
                np.where(lo >= 0, 1, np.where(hi <= 0, -1, f)).astype(np.int8)
                for (lo, hi), f in zip(bounds[:-1], node.fixed, strict=True)
            ]
            self.inc.try_region(node.target, leaf, self.base, self._cap(delta))
            if not converged:  # the bound stopped short of the leaf's optimum: resume it later
                return lb, [_Node(lb, node.depth_key, 0, node.target, node.fixed, None, weights)]
            return lb, []
        basis = lp.highs.getBasis()
        k, i = choice
        depth = node_depth(node.fixed)
        kids = []
        for phase in (1, -1):
            fixed = [f.copy() for f in node.fixed]
            fixed[k][i] = phase
            kids.append(_Node(lb, -depth - 1, 0, node.target, fixed, basis, weights))
        return lb, kids

    def _bound_direct(
        self, node: _Node, cap: float, relaxed: _Relaxed, deadline: float
    ) -> tuple[RelaxedLP, NodeBoundResult]:
        """:func:`direct_bound`; leaves (whose LP is exact) and nodes whose safe bound lags the
        float optimum by more than a tenth of the tolerance (HiGHS's dual tolerances, scaled by
        the slack cost) are finished by Newton steps, which certify to the last digits. The
        direct LP (its point and basis) stays the node's LP."""
        lp, (bounds, relax) = self._node_lp(node.target), relaxed
        lp.configure(cap, bounds, node.fixed, relaxations=relax)
        res = direct_bound(lp, node.lb, cap, deadline, node.basis)
        self.nodes += res.solves
        sol = res.solution
        lag = sol.optimal and sol.value - res.lb > 0.1 * self.opt.tolerance
        if res.lb < np.inf and (lag or not has_free_relu(bounds, node.fixed)):
            _, refined = self._bound_newton(node, res.lb, cap, relaxed, deadline, fresh=True)
            res.lb, res.converged = max(res.lb, refined.lb), refined.converged
        return lp, res

    def _bound_newton(
        self,
        node: _Node,
        lb: float,
        cap: float,
        relaxed: _Relaxed,
        deadline: float,
        fresh: bool = False,
        delta: float | None = None,
        stop_probe: bool = False,
    ) -> tuple[RelaxedLP, NodeBoundResult]:
        """:func:`newton_bound` from the proven bound ``lb`` (and, unless ``fresh``, the parent's
        basis and branching hint), first by the stop probe if ``stop_probe``."""
        lp, (bounds, relax) = self._lp(node.target), relaxed
        lp.configure(cap, bounds, node.fixed, relaxations=relax)
        stop = np.inf if self.best is None else self.best.distance - self.opt.tolerance
        if delta is not None:  # a fixed-δ question: nothing beyond δ matters
            stop = min(stop, cap)
        refine, shared = None, self._shared
        if node.target in self.pools and self.nodes >= self.opt.cuts_after and shared is not None:
            refine = self.pools[node.target].refiner(shared.region, bounds[0], node.fixed[0])
        res = newton_bound(
            lp,
            lb,
            cap,
            deadline,
            steps=self.opt.newton_steps,
            stop_at=stop,
            basis=None if fresh else node.basis,
            hint=None if fresh else node.hint,
            refine=refine,
            rounds=self.opt.cut_rounds,
            stop_first=stop_probe,
        )
        self.nodes += res.solves
        return lp, res

    def decide(self, delta: float, deadline: float) -> Decision:
        """Fixed-δ question: is there an adversarial ``x′`` with ``‖x′ − x‖ ≤ delta``?"""
        start = time.monotonic()
        self.inc.decide_delta = float(delta)
        out = self.search(deadline, delta=float(delta))
        took = time.monotonic() - start
        if out.best is not None and out.best.distance <= delta:
            return Decision(Verdict.ADVERSARIAL, out.best.x, took)
        if out.finished and out.lower >= delta:
            return Decision(Verdict.ROBUST, None, took)
        if out.finished:  # a give-up, not a timeout: say why
            return Decision(
                Verdict.UNKNOWN,
                None,
                took,
                "search exhausted: some region reaches the target within δ but none of its "
                "points passed the exact check",
            )
        return Decision(Verdict.UNKNOWN, None, took, "timeout: branch-and-bound ran out of time")


def node_depth(fixed: Phases) -> int:
    """Number of branched ReLUs."""
    return int(sum(np.count_nonzero(f) for f in fixed))


def bab_decider(options: BabOptions | None = None):
    """A :data:`~paper_repro.exact.decide.Decider` backed by :class:`BabEngine` (fresh per call)."""

    def decide(query: Query, delta: float, timeout: float) -> Decision:
        engine = BabEngine(query, options)
        return engine.decide(delta, time.monotonic() + timeout)

    return decide
