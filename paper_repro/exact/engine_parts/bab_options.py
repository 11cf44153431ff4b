"""Options of the branch-and-bound (:class:`~paper_repro.exact.engines.bab.BabEngine`)."""

from __future__ import annotations

from dataclasses import dataclass

from paper_repro.exact.engine_parts.node_bound import NodeBound


@dataclass(frozen=True)
class BabOptions:
    """Knobs of the branch-and-bound.

    Attributes:
        tolerance: stop when ``upper − lower ≤ tolerance`` (same units as δ).
        lp_tighten: LP-tighten hidden bounds (layers ≥ 2) whenever the region is recomputed.
        retighten_ratio: recompute bounds when ``U`` falls below this fraction of their radius.
        newton_steps: fixed-radius LP solves per node (Newton steps on the radius, from below).
        adversarial_tightening: for a targeted query, tighten bounds only over the points of the
            region that reach the target (:func:`~paper_repro.bounds.lp.lp_tighten`).
        node_bound: :class:`NodeBound` (``None``: ``direct`` for L1, ``newton`` for L∞).
        tighten_after: node LP solves before the first LP tightening. The first nodes'
            region solves may still improve the attack's incumbent, and the bounds are then
            tightened on that smaller radius. 10 rather than 30 (measured in one process,
            alternating per instance): −4 % time on the 18 median-band L∞ instances, −5 % on
            the 18 L1 ones, −1 % on the 14-instance benchmark sample; +2 % LP solves on the
            4 hard PGD instances.
        descent_budget: region LPs of one
            :meth:`~paper_repro.exact.engine_parts.primal_heuristics.Incumbents.descend` walk.
        hull_cuts: most first-layer convex-hull cuts (:mod:`~paper_repro.bounds.hull_cuts`)
            added to a target's fixed-radius LP (0, the default: none; measured slower on the
            benchmark), ``cut_rounds`` per node bound, from the ``cuts_after``-th LP solve on;
            they are dropped when the region shrinks, and the bounds LP-tightened again once
            the pool is full.
        progress: seconds between progress lines on stderr (0: none).
        region_share: in a fixed-δ search (:meth:`BabEngine.decide`), the exact LPs of the LP
            points' activation regions (a primal heuristic) are limited to 2 plus this
            fraction of the node LP solves, so that a hard proof is not slowed by them
            (docs/verify.md has the measurement).
        crown_filter: before a node's LP, bound ``logit_j − logit_target`` by one backward
            pass through the node's relaxation
            (:func:`~paper_repro.bounds.symbolic.margin_lower_bounds`); a positive bound
            discards the node without an LP. ``None`` (auto): on in fixed-δ searches and on
            networks with a hidden layer of ≥ 64 units, where it saves LPs; off for the
            minimisation on the papers' narrow networks, whose LPs are cheaper than the pass
            (docs/engine.md).
        tighten_refresh: LP tightening rebuilds its relaxation from the bounds tightened so
            far every this many LPs of a layer (0: between layers only;
            :func:`~paper_repro.bounds.lp.lp_tighten`'s ``refresh_every``).
        stop_first: bound a node with free ReLUs by one LP at the stop radius (the incumbent's
            distance less the tolerance, or δ) instead of Newton steps (``newton_bound``'s
            ``stop_first``); the default.
        max_distance: resolve ``δ*`` only up to this distance (``None``: the whole domain).
            Nodes whose bound exceeds it are pruned, so a finished search either brackets
            ``δ* ≤ max_distance`` to the tolerance or proves ``δ* ≥ max_distance`` (the lower
            end is then ``max_distance``).
    """

    tolerance: float = 1e-4
    lp_tighten: bool = True
    retighten_ratio: float = 0.8
    attack: bool = True
    seed: int = 0
    max_nodes: int | None = None
    newton_steps: int = 10
    adversarial_tightening: bool = True
    node_bound: NodeBound | None = None
    tighten_after: int = 10
    descent_budget: int = 40
    hull_cuts: int = 0
    cut_rounds: int = 1
    cuts_after: int = 0
    stop_first: bool = True
    progress: float = 0.0
    region_share: float = 0.25
    crown_filter: bool | None = None
    tighten_refresh: int = 16
    max_distance: float | None = None
