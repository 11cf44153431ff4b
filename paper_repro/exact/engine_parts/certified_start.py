"""A certified lower bound on ``δ*`` from CROWN, to tighten a bracket the exact search left open.

A targeted query cannot be met within ``ε`` when, for some class ``j ≠ t``, CROWN's sound lower
bound on ``Z_j − Z_t`` over ``{x′ ∈ [0,1]^n : ‖x′ − x‖ ≤ ε}`` is positive (then ``Z_t < Z_j``
everywhere in the ball). Bisection on ``ε`` gives the largest such radius; every radius it returns
was itself certified, so no monotonicity is assumed (as in :mod:`paper_repro.bounds.radius`).
"""

from __future__ import annotations

import numpy as np

from paper_repro.bounds.crown import CrownOptions, crown_margins
from paper_repro.query import Query


def _unreachable(query: Query, eps: float, options: CrownOptions) -> bool:
    """True if CROWN proves that no target of ``query`` is reached within ``eps``."""
    n = query.network.num_classes
    eye = np.eye(n)
    for t in query.targets():
        rows = np.stack([eye[j] - eye[t] for j in range(n) if j != t])  # [n−1, n]: Z_j − Z_t
        lower = crown_margins(query.network, query.x, eps, rows, query.norm, options).lower
        if not np.max(lower) > 0.0:
            return False
    return True


def crown_unreachable(query: Query, eps: float) -> bool:
    """True if CROWN proves that no target of ``query`` is reached within ``eps`` (for ``eps`` at
    least the domain's radius: that no adversarial example exists at all)."""
    return _unreachable(query, eps, CrownOptions())


def crown_lower_bound(query: Query, upper: float, rel_tol: float = 1e-3) -> float:
    """Largest ``ε ∈ [0, upper]`` (to ``rel_tol·upper``) with no adversarial example within ``ε``.

    Args:
        query: the minimal-distance query.
        upper: a known adversarial distance (the bracket's upper end); finite and ≥ 0.
        rel_tol: bisection stops when the interval is narrower than ``rel_tol · upper``.

    Returns:
        A certified lower bound on ``δ*`` (0.0 when nothing can be certified).
    """
    if not np.isfinite(upper) or upper <= 0.0:
        return 0.0
    options = CrownOptions()
    if not _unreachable(query, 0.0, options):
        return 0.0
    lo, hi = 0.0, float(upper)
    while hi - lo > rel_tol * upper:
        mid = 0.5 * (lo + hi)
        if _unreachable(query, mid, options):
            lo = mid
        else:
            hi = mid
    return lo
