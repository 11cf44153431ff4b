"""Batched certified radii: torch float64 proposals, each confirmed by the numpy certificate.

:func:`paper_repro.bounds.radius.certified_radius` bisects ``ε`` image by image with the
outward-rounded numpy bounds (Wong & Kolter, Sec. 3.5: the largest ε with every margin bound of
Cor. 1 positive). :func:`propose_radii` searches the same ε for thousands of images at once in
torch float64, with the same bounds over the L∞ ball ∩ [0,1]^n: ``dual``, Wong & Kolter's dual
network (their Eq. 6–8, Alg. 1, ``α = u/(u−l)``; the value of :func:`~paper_repro.bounds.dual.
dual_bound`), and ``crown``, CROWN (Zhang et al., 2018) with the adaptive lower slope (the value
of :func:`~paper_repro.bounds.crown.crown_margins`; every hidden layer bounded by its own
backward pass with ``c = ±I``, as :func:`paper_repro.bounds.outward.layer_bounds` does).

Both are the Lagrangian bound of :func:`paper_repro.bounds.outward.linear_lower_bound` with
``Λ = s·g`` on the coefficients ``g`` of an unstable ReLU (``l < 0 < u``): ``s = u/(u−l)`` where
``g < 0`` (upper chord, intercept ``−l·u/(u−l)``); where ``g ≥ 0``, ``s = u/(u−l)`` (dual) or
``s = [u ≥ −l]`` (CROWN's lower line). The input term ``min_{x′∈[lo,hi]} g·x′ = g·m − |g|·r``
(box centre ``m``, half-width ``r``).

Torch float64 is not rounded outward, so a proposal is no certificate: :func:`confirm_radii`
checks each one with :func:`paper_repro.bounds.radius.certified_batch` (the outward-rounded
certificate of :func:`~paper_repro.bounds.radius.is_certified`, a few images per call), steps
it down where that fails and, as a last resort, falls back to the per-image ``certified_radius``.
Every radius it returns is 0 or was certified by the numpy routine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from paper_repro.bounds.radius import (
    BoundMethod,
    RadiusOptions,
    certified_batch,
    certified_radius,
    is_certified,
)
from paper_repro.errors import PaperReproError
from paper_repro.network import ReluNetwork

Layers = list[tuple[torch.Tensor, torch.Tensor]]
"""``(W_k, b_k)`` as float64 tensors, ``W_k``: ``[n_{k+1}, n_k]``."""

Bounds = list[tuple[torch.Tensor, torch.Tensor]]
"""``(l_k, u_k)`` of the hidden pre-activations ``ẑ_1 … ẑ_{L−1}``, ``[B, n_k]`` each."""

STEP_DOWN = 1.0 - 1e-6
"""Factor applied to a proposed radius that the numpy certificate rejects (tried twice)."""

FLOOR = 1e-9
"""A torch probe passes only if its margin bounds exceed ``FLOOR·(1 + |clean margin|)``: secant
steps land on the root itself, where ``> 0`` in torch is ``< 0`` after outward rounding (~1e-12;
without it 98 of 1,535 CROWN proposals for 24x24_wk were rejected)."""


def torch_layers(net: ReluNetwork) -> Layers:
    """The network's weights as float64 tensors (exact copies of the numpy arrays)."""
    return [
        (torch.from_numpy(np.array(w)), torch.from_numpy(np.array(b)))
        for w, b in zip(net.weights, net.biases, strict=True)
    ]


def _box(x: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre and half-width (``[B, n₀]``) of ``[x − ε, x + ε] ∩ [0,1]^n``; ``eps``: ``[B]``."""
    e = eps.to(x.dtype).unsqueeze(1)
    lo, hi = torch.clamp(x - e, min=0.0), torch.clamp(x + e, max=1.0)
    return 0.5 * (lo + hi), 0.5 * (hi - lo)


def _backward(
    layers: Layers,
    bounds: Bounds,
    mid: torch.Tensor,
    rad: torch.Tensor,
    c: torch.Tensor,
    method: BoundMethod,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Lower bounds on ``c·ẑ_K`` over the box (``K = len(layers)``), backward through ``layers``.

    Args:
        layers: ``(W_k, b_k)`` for ``k = 0 … K−1``.
        bounds: ``(l_k, u_k)`` of ``ẑ_1 … ẑ_{K−1}``, ``[B, n_k]`` each.
        mid, rad: the input box's centre and half-width, ``[B, n₀]``.
        c: objective rows, ``[B, m, n_K]``.
        method: ``dual`` (slope ``u/(u−l)``, linear in ``c``) or ``crown`` (adaptive).

    Returns:
        ``(lower(c), lower(−c))``, ``[B, m]`` each; the second only for ``dual``, whose bound
        is linear in ``c`` apart from the relaxation intercepts and the input term.
    """
    coef = c
    const = torch.zeros(c.shape[:2], dtype=c.dtype)  # Σ coef_k·b_k
    inter_neg = torch.zeros_like(const)  # Σ [g]_−·(−l·u/(u−l)) (upper chords of c)
    inter_pos = torch.zeros_like(const)  # Σ [g]_+·(−l·u/(u−l)) (upper chords of −c, dual)
    for k in range(len(layers) - 1, 0, -1):
        w, b = layers[k]
        const = const + coef @ b
        g = coef @ w  # [B, m, n_k]: coefficients on z_k = relu(ẑ_k)
        lo, hi = bounds[k - 1]
        unstable = (lo < 0) & (hi > 0)
        chord = torch.where(unstable, hi / torch.where(unstable, hi - lo, 1.0), 0.0)
        active = (lo >= 0).to(g.dtype)
        upper = (chord + active).unsqueeze(1)  # slope where g < 0
        intercept = (-lo * chord).unsqueeze(-1)  # [B, n_k, 1], 0 where stable
        inter_neg = inter_neg + torch.bmm(g.clamp(max=0.0), intercept).squeeze(-1)
        if method == BoundMethod.DUAL:
            inter_pos = inter_pos + torch.bmm(g.clamp(min=0.0), intercept).squeeze(-1)
            coef = g * upper
        else:
            lower = (torch.where(unstable, (hi >= -lo).to(g.dtype), 0.0) + active).unsqueeze(1)
            coef = torch.where(g < 0, g * upper, g * lower)
    w0, b0 = layers[0]
    const = const + coef @ b0
    centre = (coef * (mid @ w0.T).unsqueeze(1)).sum(-1)  # g₀·m with g₀ = coef W₀
    spread = torch.bmm((coef @ w0).abs_(), rad.unsqueeze(-1)).squeeze(-1)  # |g₀|·r
    low = const + centre - spread + inter_neg
    if method != BoundMethod.DUAL:
        return low, None
    return low, -const - centre - spread - inter_pos


def layer_bounds(
    layers: Layers, mid: torch.Tensor, rad: torch.Tensor, method: BoundMethod
) -> Bounds:
    """``(l_k, u_k)`` of every hidden pre-activation over the box (``[B, n_k]`` each), each layer
    bounded by a backward pass with ``c = ±I`` through the layers before it (Wong & Kolter's
    Alg. 1 for ``dual``; CROWN's layer-by-layer bounds for ``crown``)."""
    w0, b0 = layers[0]
    centre = mid @ w0.T + b0
    spread = rad @ w0.abs().T
    bounds: Bounds = [(centre - spread, centre + spread)]
    batch = mid.shape[0]
    for k in range(2, len(layers)):
        n = layers[k - 1][0].shape[0]
        eye = torch.eye(n, dtype=mid.dtype)
        if method == BoundMethod.DUAL:
            low, neg = _backward(layers[:k], bounds, mid, rad, eye.expand(batch, n, n), method)
            assert neg is not None
            bounds.append((low, -neg))
        else:
            both = torch.cat([eye, -eye]).expand(batch, 2 * n, n)
            low, _ = _backward(layers[:k], bounds, mid, rad, both, method)
            bounds.append((low[:, :n], -low[:, n:]))
    return bounds


def margin_rows(labels: torch.Tensor, classes: int) -> torch.Tensor:
    """Rows ``e_y − e_j`` for ``j ≠ y`` in increasing ``j``, ``[B, classes − 1, classes]`` (the
    batched :func:`paper_repro.bounds.crown.margin_matrix`)."""
    eye = torch.eye(classes, dtype=torch.float64)
    others = torch.arange(classes).expand(labels.shape[0], classes)
    others = others[others != labels.unsqueeze(1)].view(labels.shape[0], classes - 1)
    return eye[labels].unsqueeze(1) - eye[others]


def margin_lower_bounds(
    layers: Layers, x: torch.Tensor, labels: torch.Tensor, eps: torch.Tensor, method: BoundMethod
) -> torch.Tensor:
    """Lower bounds on ``Z_y − Z_j`` (``j ≠ y``) over ``[x − ε, x + ε] ∩ [0,1]^n``, per image.

    Args:
        layers: see :func:`torch_layers`.
        x: ``[B, n₀]`` float64 in [0, 1]; labels: ``[B]``; eps: ``[B]`` L∞ radii.
        method: ``dual`` (Wong & Kolter's Eq. 6 with Alg. 1's bounds) or ``crown``.

    Returns:
        ``[B, n_L − 1]``: the plain-float value of :func:`paper_repro.bounds.radius.
        margin_lower_bounds` (not rounded outward).
    """
    mid, rad = _box(x, eps)
    bounds = layer_bounds(layers, mid, rad, method)
    c = margin_rows(labels, layers[-1][0].shape[0])
    return _backward(layers, bounds, mid, rad, c, method)[0]


def _forward(layers: Layers, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """At ``x`` (``[B, n₀]``): the margins ``min_{j≠y} Z_y − Z_j`` (``[B]``, the bound at ε = 0)
    and the first-order radius ``min_j (Z_y − Z_j) / ‖∇_x(Z_y − Z_j)‖₁`` (``[B]``), the ε where
    the linearisation at ``x`` of the closest margin reaches 0 — only a starting guess."""
    z, pattern = x, []
    for w, b in layers[:-1]:
        z = z @ w.T + b
        pattern.append((z > 0).to(z.dtype))
        z = z.clamp(min=0.0)
    c = margin_rows(labels, layers[-1][0].shape[0])
    margins = (c @ (z @ layers[-1][0].T + layers[-1][1]).unsqueeze(-1)).squeeze(-1)
    grad = c @ layers[-1][0]
    for k in range(len(layers) - 2, -1, -1):
        grad = (grad * pattern[k].unsqueeze(1)) @ layers[k][0]
    linear = margins / grad.abs().sum(-1).clamp(min=1e-300)
    return margins.min(dim=1).values, linear.min(dim=1).values


def auto_chunk(layers: Layers, method: BoundMethod, elements: int = 2**21) -> int:
    """Images per torch batch so that the largest backward tensor (``[B, rows, n₀]``, rows = the
    widest ``±I`` or margin block) has about ``elements`` float64 entries (16 MiB by default:
    the evaluation is memory bound and ~2–3× faster when that tensor stays in cache)."""
    per = 2 if method == BoundMethod.CROWN else 1
    rows = [per * w.shape[0] for w, _ in layers[1:-1]] + [layers[-1][0].shape[0] - 1]
    return int(min(1024, max(16, elements // (max(rows) * layers[0][0].shape[1]))))


@dataclass(frozen=True)
class Proposal:
    """Torch search result: ``radius`` (``[N]``, passed by the float64 torch bound, 0 if not at
    ε = 0), ``upper`` (an ε that failed, ``hi − radius ≤ tol``; ``inf`` if ``eps_max`` passed)
    and ``evaluations`` (image-bound evaluations, one per image per step)."""

    radius: np.ndarray
    upper: np.ndarray
    evaluations: int


def _next_probe(state: list[torch.Tensor], tol: float) -> torch.Tensor:
    """The next ε per image (``[B]``), strictly inside ``(lo, hi)``: the root of the margin's
    secant (regula falsi on ``[lo, hi]``; extrapolated from ``(0, f(0))`` and ``(lo, f(lo))``
    while no ε has failed; the guess first), moved ``0.45·tol`` towards the end that did not move
    last so that both ends close in on the root; bisection after two moves of the same end."""
    lo, f_lo, hi, f_hi, f0, guess, side, stall = state  # [B] each
    known = torch.isfinite(f_hi)
    secant = lo + (hi - lo) * f_lo / torch.where(known, f_lo - f_hi, 1.0)
    drop = f0 - f_lo
    ext = torch.where(drop > 0, lo + lo * f_lo / torch.where(drop > 0, drop, 1.0), 2 * lo)
    r = torch.where(known, secant, torch.where(lo > 0, torch.minimum(ext, 4 * lo), guess))
    p = torch.where(side >= 0, r + 0.45 * tol, r - 0.45 * tol)
    p = torch.where(stall >= 2, 0.5 * (lo + hi), p)
    return torch.minimum(torch.maximum(p, lo + 0.01 * tol), hi - 0.01 * tol)


def propose_radii(
    layers: Layers,
    xs: np.ndarray,
    labels: np.ndarray,
    method: BoundMethod,
    tol: float,
    eps_max: float = 1.0,
    chunk: int | None = None,
    guess: np.ndarray | None = None,
) -> Proposal:
    """The largest ε (up to ``tol``) whose torch margin bounds are all positive, for every row of
    ``xs`` (``[N, n₀]``) at once, ``chunk`` images per batch (default :func:`auto_chunk`).

    Like :func:`~paper_repro.bounds.radius.certified_radius` it keeps a bracket ``lo`` (passed)
    ``< hi`` (failed, or ``eps_max`` untried) in ``[0, eps_max]`` and stops when
    ``hi − lo ≤ tol``; the probes are secant steps instead of midpoints (:func:`_next_probe`;
    ~4 evaluations per image instead of ``log2(eps_max/tol)``). ``guess`` (``[N]``, e.g. the
    dual radius when searching CROWN's; default: the first-order radius) is rescaled by the
    median ratio radius/guess of the previous chunk. Nothing here is a certificate
    (:func:`confirm_radii`)."""
    if not tol > 0:
        raise PaperReproError(f"tol must be > 0, got {tol}")
    n = xs.shape[0]
    chunk = chunk or auto_chunk(layers, method)
    radius, upper, ratios = np.zeros(n), np.zeros(n), [1.0]
    evaluations = 0
    with torch.no_grad():
        for start in range(0, n, chunk):
            x = torch.from_numpy(np.asarray(xs[start : start + chunk], dtype=np.float64))
            y = torch.from_numpy(np.asarray(labels[start : start + chunk], dtype=np.int64))
            f0, first_order = _forward(layers, x, y)
            floor = FLOOR * (1.0 + f0.abs())
            base = first_order if guess is None else torch.from_numpy(guess[start : start + chunk])
            g = (base * float(np.median(ratios))).clamp(min=tol, max=0.5 * eps_max)
            g = torch.where(torch.isfinite(g), g, 0.5 * eps_max)
            lo, f_lo, f_hi = torch.zeros_like(f0), f0.clone(), torch.full_like(f0, torch.nan)
            hi = torch.where(f0 > floor, eps_max, 0.0).to(torch.float64)
            side, stall = torch.zeros_like(f0), torch.zeros_like(f0)
            while True:
                t = torch.nonzero(hi - lo > tol).squeeze(1)
                if t.numel() == 0:
                    break
                p = _next_probe([v[t] for v in (lo, f_lo, hi, f_hi, f0, g, side, stall)], tol)
                fp = margin_lower_bounds(layers, x[t], y[t], p, method).min(dim=1).values
                evaluations += int(t.numel())
                good = fp > floor[t]
                same = torch.where(good, side[t] > 0, side[t] < 0)
                stall[t] = torch.where(same, stall[t] + 1, 0.0)
                side[t] = 2.0 * good.to(torch.float64) - 1.0
                lo[t], f_lo[t] = torch.where(good, p, lo[t]), torch.where(good, fp, f_lo[t])
                hi[t], f_hi[t] = torch.where(good, hi[t], p), torch.where(good, f_hi[t], fp)
            top = torch.nonzero((f0 > floor) & (hi == eps_max)).squeeze(1)  # eps_max never tried
            if top.numel():
                full = torch.full((top.numel(),), eps_max, dtype=torch.float64)
                j = margin_lower_bounds(layers, x[top], y[top], full, method).min(1).values
                good = j > floor[top]
                evaluations += int(top.numel())
                lo[top] = torch.where(good, eps_max, lo[top])
                hi[top] = torch.where(good, torch.inf, hi[top])
            ratio = lo / base
            if (done := (lo > 0) & torch.isfinite(ratio)).any():
                ratios = ratio[done].tolist()
            radius[start : start + x.shape[0]] = lo.numpy()
            upper[start : start + x.shape[0]] = hi.numpy()
    return Proposal(radius, upper, evaluations)


@dataclass(frozen=True)
class ConfirmedRadii:
    """Radii that the numpy certificate accepted: ``radius`` (``[N]``), ``proposed`` (the torch
    value), ``evaluations`` (torch image-bound evaluations), ``numpy_calls`` (certificate calls,
    fallbacks included), ``corrections`` (proposals the certificate rejected), ``fallbacks``
    (of those, images re-bisected by :func:`certified_radius`) and ``seconds`` (torch, numpy)."""

    radius: np.ndarray
    proposed: np.ndarray
    evaluations: int
    numpy_calls: int
    corrections: int
    fallbacks: int
    seconds: tuple[float, float]


def confirm_radii(
    net: ReluNetwork,
    xs: np.ndarray,
    labels: np.ndarray,
    options: RadiusOptions,
    chunk: int | None = None,
    guess: np.ndarray | None = None,
) -> ConfirmedRadii:
    """Certified L∞ radii for each row of ``xs`` (``[N, n₀]``) and its ``labels``: the torch
    search of :func:`propose_radii`, each positive proposal checked by
    :func:`~paper_repro.bounds.radius.is_certified` (outward rounded). A rejected proposal is
    multiplied by :data:`STEP_DOWN` (twice at most) and then replaced by the per-image
    :func:`~paper_repro.bounds.radius.certified_radius`. So every returned radius is 0 or was
    certified by the numpy routine. Misclassified images get 0 (not certified at ε = 0)."""
    if options.norm != "linf" or not options.clip:
        raise PaperReproError("batched radii are implemented for the L∞ ball ∩ [0,1]^n only")
    eps_max = 1.0 if options.eps_max is None else float(options.eps_max)
    xs, labels = np.asarray(xs, dtype=np.float64), np.asarray(labels)
    clock = time.perf_counter()
    method, layers = BoundMethod(options.method), torch_layers(net)
    prop = propose_radii(layers, xs, labels, method, options.tol, eps_max, chunk, guess)
    torch_seconds, clock = time.perf_counter() - clock, time.perf_counter()
    radius = prop.radius.copy()
    positive = np.flatnonzero(radius > 0)
    passed = certified_batch(net, xs[positive], labels[positive], radius[positive], options)
    calls, corrections, fallbacks = len(positive), 0, 0
    for i in positive[~passed]:
        x, label, r = xs[i], int(labels[i]), float(radius[i])
        corrections += 1
        for _ in range(2):
            r *= STEP_DOWN
            calls += 1
            if is_certified(net, x, label, r, options):
                break
        else:
            fallbacks += 1
            fall = certified_radius(net, x, label, options)
            r, calls = fall.radius, calls + fall.calls
        radius[i] = r
    seconds = (torch_seconds, time.perf_counter() - clock)
    return ConfirmedRadii(
        radius, prop.radius, prop.evaluations, calls, corrections, fallbacks, seconds
    )


@dataclass(frozen=True)
class ConfirmedCertificates:
    """``certified`` (``[N]`` bool, each ``True`` confirmed by :func:`is_certified`),
    ``numpy_calls``, ``corrections`` (torch said certified, the certificate did not) and
    ``seconds`` (torch, numpy)."""

    certified: np.ndarray
    numpy_calls: int
    corrections: int
    seconds: tuple[float, float]


def confirm_certified(
    net: ReluNetwork,
    xs: np.ndarray,
    labels: np.ndarray,
    eps: float,
    options: RadiusOptions,
    chunk: int | None = None,
    slack: float = 1e-7,
) -> ConfirmedCertificates:
    """:func:`~paper_repro.bounds.radius.is_certified` at one ``eps`` for every row of ``xs``
    (``[N, n₀]``), called only where the torch bound's smallest margin is above ``−slack``.
    Skipping is sound whatever torch computes (it only ever leaves ``False``); it matches the
    per-image answers because the outward-rounded value is below the plain one, which torch
    reproduces to ~1e-11 here (tested to 1e-9), far inside ``slack``."""
    xs = np.asarray(xs, dtype=np.float64)
    clock = time.perf_counter()
    layers, method = torch_layers(net), BoundMethod(options.method)
    chunk = chunk or auto_chunk(layers, method)
    low = np.zeros(xs.shape[0])
    with torch.no_grad():
        for start in range(0, xs.shape[0], chunk):
            x = torch.from_numpy(xs[start : start + chunk])
            y = torch.from_numpy(np.asarray(labels[start : start + chunk], dtype=np.int64))
            e = torch.full((x.shape[0],), float(eps), dtype=torch.float64)
            j = margin_lower_bounds(layers, x, y, e, method).min(dim=1).values
            low[start : start + x.shape[0]] = j.numpy()
    torch_seconds, clock = time.perf_counter() - clock, time.perf_counter()
    certified = np.zeros(xs.shape[0], dtype=bool)
    worth = np.flatnonzero(low > -slack)
    certified[worth] = certified_batch(net, xs[worth], np.asarray(labels)[worth], eps, options)
    corrections = int(np.sum((low > 0) & ~certified))
    seconds = (torch_seconds, time.perf_counter() - clock)
    return ConfirmedCertificates(certified, len(worth), corrections, seconds)
