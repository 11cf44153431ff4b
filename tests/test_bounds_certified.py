"""Certified bounds (CROWN, Wong–Kolter dual) must contain every reachable margin, agree with
the LP relaxation they dualise, and certify radii no larger than the exact minimal distance."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from scipy.optimize import linprog

from paper_repro.bounds.crown import (
    CrownOptions,
    LowerSlope,
    crown_layer_bounds,
    crown_margins,
    make_region,
    margin_matrix,
)
from paper_repro.bounds.dual import dual_bound, dual_layer_bounds, robust_certificate
from paper_repro.bounds.outward import BoxRegion, L1Region
from paper_repro.bounds.radius import (
    BoundMethod,
    RadiusOptions,
    certified_radii,
    certified_radius,
    is_certified,
    robust_error_bound,
)
from paper_repro.errors import PaperReproError
from paper_repro.exact.engines.reference import reference_minimal_distance
from paper_repro.network import ReluNetwork
from paper_repro.query import Norm, Query


def _net(rng, sizes, scale=1.0):
    ws = [rng.normal(size=(sizes[k + 1], sizes[k])) * scale for k in range(len(sizes) - 1)]
    bs = [rng.normal(size=sizes[k + 1]) * 0.5 for k in range(len(sizes) - 1)]
    return ReluNetwork.from_arrays(ws, bs)


def _samples(rng, x, eps, norm, count):
    n = x.shape[0]
    if norm == "linf":
        pts = x + rng.uniform(-eps, eps, size=(count, n))
        corners = x + eps * rng.choice([-1.0, 1.0], size=(count, n))
        return np.clip(np.vstack([pts, corners]), 0, 1)
    d = rng.laplace(size=(count, n))
    d *= eps * rng.random((count, 1)) / np.abs(d).sum(1, keepdims=True)
    axes = np.zeros((2 * n, n))
    axes[np.arange(n), np.arange(n)] = eps
    axes[n + np.arange(n), np.arange(n)] = -eps
    return np.clip(x + np.vstack([d, axes]), 0, 1)


def _norm_dist(a, b, norm):
    return np.abs(a - b).max(axis=-1) if norm == "linf" else np.abs(a - b).sum(axis=-1)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("norm", ["linf", "l1"])
def test_bounds_contain_sampled_and_exact_adversarial_margins(seed, norm):
    rng = np.random.default_rng(seed)
    net = _net(rng, [6, 4, 3, 3])
    x = rng.random(6)
    x[0], x[1] = 0.0, 1.0  # coordinates on the box faces
    y = int(np.argmax(net.forward(x)))
    c = margin_matrix(3, y)
    ref = reference_minimal_distance(Query(net, x, y, None, Norm(norm)))
    eps_list = [0.0, 0.03, 0.2] if norm == "linf" else [0.0, 0.1, 0.8]
    if np.isfinite(ref.delta):
        eps_list.append(ref.delta * 1.01)
    for eps in eps_list:
        pts = _samples(rng, x, eps, norm, 1500)
        if np.isfinite(ref.delta) and ref.delta <= eps:
            pts = np.vstack([pts, ref.witness])  # a truly adversarial point inside the ball
        assert np.all(_norm_dist(pts, x, norm) <= eps * (1 + 1e-12) + 1e-15)
        true = (net.forward(pts) @ c.T).min(axis=0)
        for slope in LowerSlope:
            lower = crown_margins(net, x, eps, c, norm, CrownOptions(slope)).lower
            assert np.all(lower <= true), (slope, eps, lower, true)
        db = dual_bound(net, x, eps, c, norm=norm)
        assert np.all(db.certified <= true)
        assert np.all(db.certified <= db.value + 1e-12)
        np.testing.assert_allclose(db.certified, db.value, rtol=1e-10, atol=1e-10)


def test_layer_bounds_contain_samples_and_eps_zero_is_tight():
    rng = np.random.default_rng(11)
    net = _net(rng, [5, 4, 4, 2])
    x = rng.random(5)
    for region, pts in [
        (make_region(x, 0.1, "linf"), _samples(rng, x, 0.1, "linf", 2000)),
        (make_region(x, 0.4, "l1"), _samples(rng, x, 0.4, "l1", 2000)),
    ]:
        for (lo, hi), pre in zip(
            crown_layer_bounds(net, region),
            zip(*[net.pre_activations(p) for p in pts], strict=True),
            strict=True,
        ):
            pre = np.array(pre)
            assert np.all(lo <= pre.min(0)) and np.all(pre.max(0) <= hi)
    y = int(np.argmax(net.forward(x)))
    margin = net.forward(x)[y] - np.delete(net.forward(x), y)
    c = margin_matrix(2, y)
    for lower in (crown_margins(net, x, 0.0, c).lower, dual_bound(net, x, 0.0, c).certified):
        assert np.all(lower <= margin) and np.all(margin - lower < 1e-9)


def test_region_minimisation_is_exact_and_outward():
    rng = np.random.default_rng(3)
    x = rng.random(7)
    x[2] = 0.0
    x[5] = 1.0
    a = rng.normal(size=(5, 7))
    box = BoxRegion.linf(x, 0.25)
    brute = np.minimum(a * np.clip(x - 0.25, 0, 1), a * np.clip(x + 0.25, 0, 1)).sum(1)
    got = box.min_linear(a)
    assert np.all(got <= brute) and np.all(brute - got < 1e-12)
    for eps in (0.0, 0.3, 2.0, 10.0):  # L1: compare with an LP
        l1 = L1Region(x, eps).min_linear(a)
        for row, val in zip(a, l1, strict=True):
            n = len(x)
            res = linprog(
                np.r_[row, -row],
                A_ub=np.ones((1, 2 * n)),
                b_ub=[eps],
                bounds=[(0, 1 - v) for v in x] + [(0, v) for v in x],
                method="highs",
            )
            exact = row @ x + res.fun
            assert val <= exact + 1e-12 and exact - val < 1e-9


def test_rounding_trap_is_not_certified():
    """Exact margin 0 (a tie, hence adversarial) that naive float arithmetic sees as positive."""
    tiny = 2.0**-54
    net = ReluNetwork.from_arrays([np.array([[1.0, -1.0, -1.0], [0.0, 0.0, 0.0]])], [
        np.array([0.0, 1.0 - 2.0**-53])
    ])  # fmt: skip
    x = np.array([1.0, tiny, tiny])
    naive = (1.0 - tiny) - tiny - (1.0 - 2.0**-53)  # float evaluation of Z_0 − Z_1
    exact = Fraction(1) - 2 * Fraction(tiny) - (1 - Fraction(2.0**-53))
    assert naive > 0 and exact == 0  # the trap is real
    opts = RadiusOptions(BoundMethod.CROWN)
    assert not is_certified(net, x, 0, 0.0, opts)
    assert not is_certified(net, x, 0, 0.0, RadiusOptions(BoundMethod.DUAL))
    assert certified_radius(net, x, 0, opts).radius == 0.0
    assert crown_margins(net, x, 0.0, margin_matrix(2, 0)).lower[0] <= 0.0


def _primal_lp(net, x, eps, c_row, bounds):
    """Wong & Kolter's LP (Eq. 4) with the triangle relaxation (Eq. 3), box-clipped input.

    Returns the optimum and the optimal dual variables ``α*`` read off HiGHS's marginals of the
    two lower constraints ``z ≥ 0`` (``μ_1``) and ``z ≥ ẑ`` (``μ_2``): ``α = μ_2 / (μ_1 + μ_2)``.
    """
    sizes = [net.input_dim] + [2 * h for h in net.hidden_sizes] + [net.num_classes]
    offs = np.cumsum([0, *sizes])
    nvar = offs[-1]
    a_eq, b_eq, a_ub, b_ub = [], [], [], []
    var_bounds = [(max(0.0, v - eps), min(1.0, v + eps)) for v in x]
    z_prev = np.arange(offs[0], offs[1])
    lower_rows = {}
    for k, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        n = w.shape[0]
        zhat = np.arange(offs[k + 1], offs[k + 1] + n)
        for j in range(n):  # ẑ = W z + b
            row = np.zeros(nvar)
            row[zhat[j]] = 1.0
            row[z_prev] -= w[j]
            a_eq.append(row)
            b_eq.append(b[j])
        var_bounds += [(None, None)] * n
        if k == len(net.weights) - 1:
            break
        z = zhat + n
        lo, hi = bounds[k]
        for j in range(n):
            if hi[j] <= 0:
                var_bounds.append((0.0, 0.0))
                continue
            var_bounds.append((None, None))
            if lo[j] >= 0:
                row = np.zeros(nvar)
                row[z[j]], row[zhat[j]] = 1.0, -1.0
                a_eq.append(row)
                b_eq.append(0.0)
                continue
            lower_rows[(k, j)] = (len(a_ub), len(a_ub) + 1)
            for coef_z, coef_h, rhs in [(-1, 0, 0), (-1, 1, 0)]:  # −z ≤ 0, ẑ − z ≤ 0
                row = np.zeros(nvar)
                row[z[j]], row[zhat[j]] = coef_z, coef_h
                a_ub.append(row)
                b_ub.append(rhs)
            row = np.zeros(nvar)  # the chord: (u − l) z − u ẑ ≤ −u l
            row[z[j]], row[zhat[j]] = hi[j] - lo[j], -hi[j]
            a_ub.append(row)
            b_ub.append(-hi[j] * lo[j])
        z_prev = z
    cost = np.zeros(nvar)
    cost[offs[-2] : offs[-1]] = c_row
    res = linprog(cost, A_ub=np.array(a_ub) if a_ub else None, b_ub=b_ub or None,
                  A_eq=np.array(a_eq), b_eq=b_eq, bounds=var_bounds, method="highs")  # fmt: skip
    assert res.status == 0
    alphas = [np.zeros(h) for h in net.hidden_sizes]
    for (k, j), (r1, r2) in lower_rows.items():
        mu1, mu2 = res.ineqlin.marginals[r1], res.ineqlin.marginals[r2]
        alphas[k][j] = mu2 / (mu1 + mu2) if mu1 + mu2 != 0 else 0.0
    return res.fun, alphas


@pytest.mark.parametrize("seed", range(6))
def test_dual_network_at_lp_optimal_alpha_equals_the_lp(seed):
    """Thm. 1 on 2-hidden-layer nets: J(α*) with α* from the LP's own dual equals the LP optimum;
    Eq. 8's fixed α gives a (weakly) smaller value."""
    rng = np.random.default_rng(300 + seed)
    net = _net(rng, [5, 4, 4, 3])
    x = rng.random(5)
    eps = 0.2
    bounds = dual_layer_bounds(net, x, eps)
    assert any(((lo < 0) & (hi > 0)).any() for lo, hi in bounds)
    gaps = []
    for r in range(2):
        c = margin_matrix(3, 0)[r : r + 1]
        lp, alpha = _primal_lp(net, x, eps, c[0], bounds)
        best = dual_bound(net, x, eps, c, bounds=bounds, alpha=alpha)
        fixed = dual_bound(net, x, eps, c, bounds=bounds)
        assert abs(best.value[0] - lp) <= 1e-6 * max(1.0, abs(lp)), (best.value, lp)
        assert best.certified[0] <= lp + 1e-12
        assert fixed.value[0] <= lp + 1e-9
        gaps.append(lp - fixed.value[0])
    assert max(gaps) > 1e-6  # Eq. 8 is not optimal here, so the α* match is not a coincidence


@pytest.mark.parametrize("seed", range(5))
def test_dual_is_below_lp_and_equals_it_at_the_optimal_alpha(seed):
    rng = np.random.default_rng(100 + seed)
    deep = _net(rng, [5, 4, 4, 3])
    x = rng.random(5)
    eps = 0.15
    c = margin_matrix(3, 0)
    bounds = dual_layer_bounds(deep, x, eps)
    db = dual_bound(deep, x, eps, c, bounds=bounds)
    for r in range(c.shape[0]):  # weak duality on a 2-hidden-layer net, any α
        assert db.certified[r] <= _primal_lp(deep, x, eps, c[r], bounds)[0] + 1e-9

    # One hidden layer: J(α) is concave and piecewise linear in α; maximise it exactly by an LP
    # built from J's affine parts (black-box evaluations of dual_bound) and compare (Thm. 1).
    net = _net(rng, [4, 6, 3])
    x = rng.random(4)
    eps = 0.3
    bounds = dual_layer_bounds(net, x, eps)
    lo, hi = bounds[0]
    unstable = np.flatnonzero((lo < 0) & (hi > 0))
    assert unstable.size > 0
    box = BoxRegion.linf(x, eps)
    for r in range(2):
        c_row = margin_matrix(3, 0)[r : r + 1]

        def parts(alpha, c_row=c_row):
            d = dual_bound(net, x, eps, c_row, bounds=bounds, alpha=[alpha])
            nh = d.nu_hat_input[0]
            input_term = np.minimum(-nh * box.lo, -nh * box.hi).sum()
            return d.value[0] - input_term, nh

        base_a, base_nh = parts(np.zeros(6))
        slopes = []
        for j in unstable:
            e = np.zeros(6)
            e[j] = 1.0
            a_j, nh_j = parts(e)
            slopes.append((a_j - base_a, nh_j - base_nh))
        u, n = len(unstable), len(x)
        # variables (α_u, s_n): maximise base_a + Σ sa_j α_j + Σ s_i
        cost = -np.r_[[s[0] for s in slopes], np.ones(n)]
        a_ub, b_ub = [], []
        for i in range(n):
            for bnd in (box.lo[i], box.hi[i]):  # s_i ≤ −ν̂_i(α) · bnd
                row = np.zeros(u + n)
                row[u + i] = 1.0
                row[:u] = [s[1][i] * bnd for s in slopes]
                a_ub.append(row)
                b_ub.append(-base_nh[i] * bnd)
        res = linprog(cost, A_ub=np.array(a_ub), b_ub=b_ub,
                      bounds=[(0, 1)] * u + [(None, None)] * n, method="highs")  # fmt: skip
        best_dual = base_a - res.fun
        primal = _primal_lp(net, x, eps, c_row[0], bounds)[0]
        fixed = dual_bound(net, x, eps, c_row, bounds=bounds).value[0]
        assert fixed <= primal + 1e-9
        assert abs(best_dual - primal) <= 1e-6 * max(1.0, abs(primal)), (best_dual, primal)


@pytest.mark.parametrize("seed", range(8))
def test_certified_radius_below_exact_minimal_distance(seed):
    rng = np.random.default_rng(200 + seed)
    net = _net(rng, [4, 3, 3, 3])
    x = rng.random(4)
    x[seed % 4] = float(seed % 2)
    y = int(np.argmax(net.forward(x)))
    net = ReluNetwork.from_arrays(  # shift the logits so the boundary is near x
        list(net.weights), [*net.biases[:-1], net.biases[-1] - net.forward(x) + rng.random(3)]
    )
    y = int(np.argmax(net.forward(x)))
    for norm, methods in [("linf", list(BoundMethod)), ("l1", list(BoundMethod))]:
        ref = reference_minimal_distance(Query(net, x, y, None, Norm(norm)))
        for method in methods:
            cr = certified_radius(net, x, y, RadiusOptions(method, Norm(norm), tol=1e-7))
            assert cr.radius <= ref.delta + 1e-12, (norm, method, cr, ref.delta)
            assert is_certified(net, x, y, cr.radius, RadiusOptions(method, Norm(norm)))
        if norm == "linf":  # the dual bound is (weakly) looser than or equal to CROWN's α = u/(u−l)
            parallel = crown_margins(net, x, 0.05, margin_matrix(3, y),
                                     options=CrownOptions(LowerSlope.PARALLEL)).lower  # fmt: skip
            np.testing.assert_allclose(robust_certificate(net, x, y, 0.05), parallel, atol=1e-9)


def test_certified_radii_batch_matches_single_and_zero_for_misclassified():
    rng = np.random.default_rng(8)
    net = _net(rng, [4, 5, 3])
    xs = rng.random((5, 4))
    preds = np.argmax(net.forward(xs), axis=1)
    radii = certified_radii(net, xs)
    assert np.all(radii > 0)
    assert radii[2] == certified_radius(net, xs[2], int(preds[2])).radius
    wrong = certified_radii(net, xs, (preds + 1) % 3)
    assert np.all(wrong == 0.0)


def test_robust_error_bound_counts_clean_errors_and_uncertified():
    rng = np.random.default_rng(7)
    net = _net(rng, [4, 5, 3])
    xs = rng.random((12, 4))
    preds = np.argmax(net.forward(xs), axis=1)
    labels = preds.copy()
    labels[:3] = (preds[:3] + 1) % 3  # three clean errors
    zero = robust_error_bound(net, xs, labels, 0.0)
    assert zero.clean_errors == 3 and zero.uncertified == 0 and zero.bound == pytest.approx(0.25)
    big = robust_error_bound(net, xs, labels, 1.0)
    assert big.clean_errors == 3 and big.bound >= zero.bound
    opts = RadiusOptions()
    pairs = zip(xs[3:], labels[3:], strict=True)
    manual = sum(not is_certified(net, x, int(y), 0.1, opts) for x, y in pairs)
    assert robust_error_bound(net, xs, labels, 0.1).uncertified == manual


def test_bad_inputs_raise_clear_errors():
    rng = np.random.default_rng(0)
    net = _net(rng, [3, 2, 2])
    with pytest.raises(PaperReproError, match="radius"):
        make_region(np.zeros(3), -0.1, "linf")
    with pytest.raises(PaperReproError, match="L1"):
        dual_bound(net, np.zeros(3), 0.5, margin_matrix(2, 0), clip=False, norm="l1")
    with pytest.raises(PaperReproError, match="columns"):
        crown_margins(net, np.zeros(3), 0.1, np.ones((1, 3)))
    with pytest.raises(PaperReproError, match="α"):
        dual_bound(net, np.zeros(3), 0.5, margin_matrix(2, 0), alpha=[np.full(2, 1.5)])


def _relu_min_plain(g, lam, lo, hi):
    """outward.relu_min written out plainly (the reference for its in-place version)."""
    from paper_repro.bounds.outward import _TINY, gamma

    best = None
    for v in (lo, hi):
        r = np.maximum(v, 0.0)
        val = g * r - lam * v
        val = val - gamma(2) * (np.abs(g * r) + np.abs(lam * v)) - _TINY
        best = val if best is None else np.minimum(best, val)
    return np.where((lo < 0) & (hi > 0), np.minimum(best, 0.0), best)


def _crown_plain(lower_slope, g, lo, hi):
    """crown_rule written out plainly: Λ = g·chord (g < 0) or g·α (g ≥ 0) where unstable, g where
    active, 0 where inactive."""
    from paper_repro.bounds.crown import LowerSlope

    unstable = (lo < 0) & (hi > 0)
    chord = np.where(unstable, hi / np.where(unstable, hi - lo, 1.0), 0.0)
    alpha = {
        LowerSlope.ADAPTIVE: (hi >= -lo).astype(np.float64),
        LowerSlope.ZERO: np.zeros_like(lo),
        LowerSlope.ONE: np.ones_like(lo),
        LowerSlope.PARALLEL: chord,
    }[lower_slope]
    return np.where(unstable, g * np.where(g < 0, chord, alpha), np.where(lo >= 0, g, 0.0))


@pytest.mark.parametrize("shapes", [((7, 5), (5,)), ((3, 7, 5), (3, 1, 5)), ((7, 5), (7, 5))])
def test_relu_min_and_crown_rule_equal_their_plain_formulas(shapes):
    """The vectorised arithmetic of the CROWN pass (in place, per-neuron slopes first) gives the
    plain formulas' values — bit for bit for the rounded term — on random inputs with zeros,
    stable and unstable neurons, and every slope rule."""
    from paper_repro.bounds.crown import LowerSlope, crown_rule
    from paper_repro.bounds.outward import relu_min

    rng = np.random.default_rng(11)
    shape_g, shape_b = shapes
    for _ in range(40):
        g = rng.normal(size=shape_g) * 10.0 ** rng.integers(-4, 4)
        g[rng.random(shape_g) < 0.1] = 0.0
        lam = rng.normal(size=shape_g)
        lo = rng.normal(size=shape_b)
        lo[rng.random(shape_b) < 0.1] = 0.0
        hi = lo + rng.random(shape_b) * rng.integers(0, 2)
        np.testing.assert_array_equal(relu_min(g, lam, lo, hi), _relu_min_plain(g, lam, lo, hi))
        for rule in LowerSlope:
            np.testing.assert_array_equal(
                crown_rule(rule)(1, g, lo, hi), _crown_plain(rule, g, lo, hi)
            )
