"""Exact witnesses from one activation region: with every ReLU phase fixed the network is affine, so
``min ‖x′ − x‖`` over the region (intersected with the target's cell) is a plain LP (solved
directly, or for L∞ by Newton steps over fixed-radius LPs). Its float
solution is made exactly adversarial by small phase/output margins and, if needed, a repair step
(:func:`paper_repro.exact.witnesses.witness.repair`); the result is always checked exactly."""

from __future__ import annotations

import time

import numpy as np

from paper_repro.bounds.interval import Bounds, InputRegion, linear_range
from paper_repro.bounds.relaxed_lp import RelaxedLP
from paper_repro.bounds.symbolic import Phases
from paper_repro.exact.engine_parts.node_bound import newton_bound
from paper_repro.exact.witnesses.witness import ExactNetwork, Witness, repair
from paper_repro.network import ReluNetwork
from paper_repro.query import Norm

REGION_MARGINS = (1e-11, 1e-8)
"""Output / phase margins tried in order."""

SCREEN_SLACK = 1e-7
"""A region is skipped when one of its constraints misses by more than this (logit units)."""

MIN_GAIN = 1e-6
"""With a fixed-radius LP, a region is solved only if it reaches the target within
``upper (1 − MIN_GAIN)``: a region whose optimum is the incumbent itself (or within a millionth
of it) is not solved again."""


def region_lp(lp: RelaxedLP) -> RelaxedLP:
    """Prepare a :class:`RelaxedLP` (``min δ`` or fixed-radius) for region solves (tight primal
    feasibility: its points become witnesses)."""
    lp.highs.setOptionValue("primal_feasibility_tolerance", 1e-10)
    return lp


def region_witness(
    lp: RelaxedLP,
    exact: ExactNetwork,
    pattern: Phases,
    bounds: Bounds,
    radius: float,
    upper: float = np.inf,
) -> Witness | None:
    """The closest exactly-checked adversarial example (for ``lp.target``) inside the activation
    region ``pattern`` (``±1`` per hidden ReLU) within ``R(x, radius)``, or ``None``.

    Args:
        lp: an LP of the query and target, reconfigured here: a ``min δ`` LP
            (``min_delta=True``, solved once) or a fixed-radius LP (``min_delta=False``, for
            L∞, whose ``min δ`` LP needs 2n extra rows): the region is then first solved at the
            single radius ``r = min(radius, upper (1 − MIN_GAIN))`` and skipped unless the target
            is reached there (most regions cannot beat the incumbent), and its ``min δ`` is
            found by Newton steps on the radius up to ``r`` (:func:`_solve_newton`).
        exact: the network in exact form.
        pattern: the phases, one int8 array per hidden layer.
        bounds: sound pre-activation bounds on ``R(x, radius)`` (restricting the LP).
        radius: the region radius.
        upper: skip the witness repair and exact check when the LP optimum is not below this
            (e.g. the incumbent's distance): a speed filter only. With a finite ``upper`` the
            LP is skipped when :func:`region_possible` rules the region out within ``upper``.
    """
    net = exact.network
    if np.isfinite(upper) and not region_possible(net, lp.x, lp.norm, pattern, lp.target, upper):
        return None
    fixed_radius = not lp.min_delta
    r = min(radius, upper * (1 - MIN_GAIN))
    if fixed_radius and not _reaches(lp, pattern, bounds, r):
        return None
    for m in REGION_MARGINS:
        if fixed_radius:
            found, feasible = _solve_newton(lp, exact, pattern, bounds, r, m)
        else:
            found, feasible = _solve(lp, exact, pattern, bounds, radius, m, upper)
        if found is not None or not feasible:
            return found  # a larger margin only shrinks the region: no optimum below upper stays so
    return None


def _reaches(lp: RelaxedLP, pattern: Phases, bounds: Bounds, radius: float) -> bool:
    """Whether the fixed-radius LP of the region reaches the target within ``radius`` (float
    answer, ``s ≤ 1e-9``; used only to skip work)."""
    lp.configure(radius, bounds, pattern, slack=True)
    sol = lp.solve(1.0, bound=False)
    return bool(sol.optimal and sol.col_value[lp.slack_col] <= 1e-9)


def _solve(lp, exact, pattern, bounds, radius, m, upper=np.inf) -> tuple[Witness | None, bool]:
    """(witness or ``None``, whether the margin-``m`` region LP had an optimum below ``upper``)."""
    if not _configure(lp, pattern, bounds, radius, m, slack=False):
        return None, False
    try:
        sol = lp.solve(1.0)
    finally:
        lp.set_output_rows(True, margin=0.0)
    if not sol.optimal or sol.value >= upper * (1 + 1e-9):
        return None, False
    xp = np.clip(lp.x + lp.displacement(sol.col_value), 0.0, 1.0)
    return repair(exact, lp.x, xp, lp.target, lp.norm), True


def _configure(
    lp: RelaxedLP, pattern: Phases, bounds: Bounds, radius: float, m: float, slack: bool
) -> bool:
    """Configure ``lp`` for the region with every ReLU at least ``m`` inside its phase and the
    output rows at margin ``m`` (reset them after solving); ``False``: the margins empty it."""
    shrunk = [(lo.copy(), hi.copy()) for lo, hi in bounds]
    for k, p in enumerate(pattern):
        lo, hi = shrunk[k]
        if np.any((p > 0) & (hi < m)) or np.any((p < 0) & (lo > -m)):
            return False
        shrunk[k] = (
            np.where(p > 0, np.maximum(lo, m), lo),
            np.where(p < 0, np.minimum(hi, -m), hi),
        )
    lp.configure(radius, shrunk, pattern, slack=slack)
    lp.set_output_rows(True, margin=m)
    return True


def _solve_newton(lp, exact, pattern, bounds, radius, m) -> tuple[Witness | None, bool]:
    """:func:`_solve` on a fixed-radius LP ``lp``: Newton steps on the radius from 0 up to
    ``radius`` (:func:`~paper_repro.exact.engine_parts.node_bound.newton_bound`; the LP is exact
    here, every phase being fixed), then, unless the last solve already reached the target, solves
    just past the root (1e-10, 1e-8, 1e-6 relative: the safe bound's root can lie a little below the
    LP's) for a point. On the benchmark's median L∞ instances about three warm solves of
    ~3 ms replace one ``min δ`` solve of ~11 ms (the first, cold, one ~66 ms)."""
    if not _configure(lp, pattern, bounds, radius, m, slack=True):
        return None, False
    try:
        res = newton_bound(lp, 0.0, radius, time.monotonic() + 1.0, steps=30, rel_tol=1e-12)
        if res.lb == np.inf or not res.converged:
            return None, res.lb != np.inf
        sol = res.solution
        # the safe bound's root can sit a little below the LP's own root: step just past it
        steps = iter((1e-10, 1e-8, 1e-6))
        while not (sol.optimal and sol.col_value[lp.slack_col] <= 1e-9):
            step = next(steps, None)
            if step is None:
                return None, True
            lp.set_probe(min(radius, res.lb * (1 + step) + 1e-13))
            sol = lp.solve(1.0, bound=False)
    finally:
        lp.set_output_rows(True, margin=0.0)
    xp = np.clip(lp.x + lp.displacement(sol.col_value), 0.0, 1.0)
    return repair(exact, lp.x, xp, lp.target, lp.norm), True


def region_possible(
    network: ReluNetwork, x: np.ndarray, norm: Norm, pattern: Phases, target: int, radius: float
) -> bool:
    """A cheap necessary condition for the region to reach ``target`` within ``R(x, radius)``.

    With every phase fixed the network is affine, so each phase condition ``p_i z_i ≥ 0`` and each
    output condition ``y_t ≥ y_j`` is one linear inequality in ``x′``; each must be satisfiable on
    its own over ``R(x, radius)`` (:func:`linear_range`, ``O(rows × n)``). A ``False`` is a speed
    filter for the region LP (it skips a candidate; it never accepts one)."""
    a, c = network.weights[0], network.biases[0]
    rows, offsets = [], []
    for k, p in enumerate(pattern):
        rows.append(-p[:, None] * a)  # −p z ≤ 0
        offsets.append(-p * c)
        on = (p > 0).astype(float)
        w = network.weights[k + 1]
        a, c = w @ (on[:, None] * a), w @ (on * c) + network.biases[k + 1]
    others = np.arange(len(c)) != target
    rows.append(a[others] - a[target])  # y_j − y_t ≤ 0
    offsets.append(c[others] - c[target])
    lo, _ = linear_range(np.vstack(rows), np.concatenate(offsets), InputRegion(x, radius, norm))
    return bool(np.all(lo <= SCREEN_SLACK))


def boundary_flips(network: ReluNetwork, xprime: np.ndarray, limit: int = 8) -> list[Phases]:
    """The activation regions adjacent to ``x′`` (``[n_0]``) across its near-zero ReLUs.

    A region LP's optimum lies on the region's boundary; where a ReLU's pre-activation is ~0
    there (``|z| ≤ 1e-6 (1 + max |z_k|)``), the neighbouring region, with that one phase flipped,
    may hold closer points. Returns at most ``limit`` patterns, the closest-to-zero ReLU first.
    """
    pre = network.pre_activations(np.asarray(xprime, np.float64))
    pattern = _signs(pre)
    near = [
        (abs(float(z[i])) / (1.0 + float(np.abs(z).max())), k, int(i))
        for k, z in enumerate(pre)
        for i in range(z.size)
    ]
    out = []
    for scaled, k, i in sorted(near)[:limit]:
        if scaled > 1e-6:
            break
        flipped = [p.copy() for p in pattern]
        flipped[k][i] = -flipped[k][i]
        out.append(flipped)
    return out


def activation_pattern(network: ReluNetwork, x: np.ndarray) -> Phases:
    """``±1`` per hidden ReLU at ``x`` (``[n_0]``); ``z = 0`` counts as active."""
    return _signs(network.pre_activations(x))


def _signs(pre: list[np.ndarray]) -> Phases:
    return [np.where(z >= 0, 1, -1).astype(np.int8) for z in pre]
