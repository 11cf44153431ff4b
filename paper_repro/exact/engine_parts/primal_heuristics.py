"""The primal side of the branch-and-bound: the incumbent and the heuristics that improve it.

:class:`Incumbents` keeps the closest exactly-checked witness found so far (the search's ``upper``)
and turns LP points into witnesses: the point itself (repaired over the boundary), the exact
``min δ`` LP of its linear region (:mod:`paper_repro.exact.engine_parts.region`), and, after each
improvement, a walk over the neighbouring linear regions (as Dathathri et al. search them). Nothing
here can make a bound unsound: every witness is checked exactly before it is kept.
"""

from __future__ import annotations

import numpy as np

from paper_repro.bounds.interval import Bounds
from paper_repro.bounds.relaxed_lp import RelaxedLP
from paper_repro.bounds.symbolic import Phases
from paper_repro.exact.engine_parts.region import (
    activation_pattern,
    boundary_flips,
    region_lp,
    region_witness,
)
from paper_repro.exact.witnesses.witness import ExactNetwork, Witness, fit_within, repair
from paper_repro.query import Norm, Query


class Incumbents:
    """Best witness of one query's search and the region heuristics (one HiGHS model per target).

    Attributes:
        best: the incumbent (exactly checked), or ``None``.
        decide_delta: in fixed-δ mode, witnesses are pulled within this radius when possible.
    """

    def __init__(self, query: Query, descent_budget: int = 40) -> None:
        self.net, self.x, self.norm = query.network, query.x, query.norm
        self.exact = ExactNetwork(self.net)
        self.descent_budget = descent_budget
        self.best: Witness | None = None
        self.decide_delta: float | None = None
        self.tried: set[bytes] = set()
        self.region_lps: dict[int, RelaxedLP] = {}

    def offer(self, w: Witness | None) -> None:
        """Keep ``w`` if it is closer than the incumbent (in decide mode, pulled within δ)."""
        if w is not None and self.decide_delta is not None:
            w = fit_within(self.exact, self.x, w, self.decide_delta, self.norm) or w
        if w is not None and (self.best is None or w.distance < self.best.distance):
            self.best = w

    def from_lp_point(
        self, target: int, xp: np.ndarray, bounds: Bounds, radius: float, region: bool = True
    ) -> None:
        """Incumbents from an LP point ``xp`` (``[n_0]``) and, if ``region``, from the exact LP
        of its activation region."""
        logits = self.net.forward(xp)
        if logits[target] >= logits.max() - 1e-9 and self._may_improve(xp):
            self.offer(repair(self.exact, self.x, xp, target, self.norm))
        if region:
            self.try_region(target, activation_pattern(self.net, xp), bounds, radius)

    def _may_improve(self, xp: np.ndarray) -> bool:
        """False when ``xp`` is clearly farther than the incumbent (minimisation mode only): its
        exact check would be wasted. A pure speed filter; it never accepts anything."""
        if self.best is None or self.decide_delta is not None:
            return True
        d = np.abs(xp - self.x)
        dist = float(d.max() if self.norm == Norm.LINF else d.sum())
        return dist < self.best.distance * (1 + 1e-9)

    def try_region(
        self, target: int, pattern: Phases, bounds: Bounds, radius: float, descend: bool = True
    ) -> None:
        """Solve the exact LP of one activation region once per (target, pattern) (``bounds``:
        sound pre-activation bounds on ``R(x, radius)``); when that improves the incumbent,
        :meth:`descend` from it."""
        key = bytes([target]) + b"".join(p.tobytes() for p in pattern)
        if key in self.tried or not pattern:
            return
        self.tried.add(key)
        before = self.best
        self.offer(self.region_witness(target, pattern, bounds, radius))
        if descend and self.best is not before and self.decide_delta is None:
            self.descend(bounds, radius)

    def descend(self, bounds: Bounds, radius: float) -> None:
        """Local search over linear regions: the incumbent sits on its region's boundary, so solve
        the neighbouring regions across its near-zero ReLUs (:func:`boundary_flips`) and move to
        the first that improves; repeat until none does or ``descent_budget`` LPs are spent."""
        budget = self.descent_budget
        while budget > 0 and self.best is not None:
            start = self.best
            for pattern in boundary_flips(self.net, start.x, limit=min(8, budget)):
                budget -= 1
                self.try_region(start.target, pattern, bounds, radius, descend=False)
                if self.best is not start:
                    break
            if self.best is start:
                return

    def region_witness(
        self, target: int, pattern: Phases, bounds: Bounds, radius: float
    ) -> Witness | None:
        """Solve ``min δ`` exactly inside one activation region (all ReLUs fixed), then check.
        For L∞ the region LP is a fixed-radius one (no 2n rows for δ; Newton steps on the
        radius, :func:`~paper_repro.exact.engine_parts.region.region_witness`)."""
        if target not in self.region_lps:
            linf = self.norm == Norm.LINF
            lp = RelaxedLP(self.net, self.x, self.norm, target, min_delta=not linf)
            self.region_lps[target] = region_lp(lp)
        upper = np.inf if self.best is None or self.decide_delta is not None else self.best.distance
        return region_witness(self.region_lps[target], self.exact, pattern, bounds, radius, upper)
