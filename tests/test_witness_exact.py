"""Exact witness checks: rational forward pass, exact distances, repair of near-boundary points."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from paper_repro.exact.witnesses.witness import (
    ExactNetwork,
    check_witness,
    exact_distance,
    exact_logits,
    exact_margin,
    fit_within,
    float32_margin,
    float_margin_bounds,
    repair,
    round_up,
)
from paper_repro.network import ReluNetwork
from paper_repro.query import Norm


def _naive_logits(net: ReluNetwork, x: np.ndarray) -> list[Fraction]:
    z = [Fraction(float(v)) for v in x]
    for k, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        z = [
            sum((Fraction(float(w[i, j])) * z[j] for j in range(w.shape[1])), Fraction(0))
            + Fraction(float(b[i]))
            for i in range(w.shape[0])
        ]
        if k < len(net.weights) - 1:
            z = [max(v, Fraction(0)) for v in z]
    return z


def test_exact_logits_match_naive_fractions_and_floats():
    rng = np.random.default_rng(0)
    net = ReluNetwork.from_arrays(
        [rng.normal(size=(4, 6)) * 1e-3, rng.normal(size=(3, 4)) * 1e5],
        [rng.normal(size=4), rng.normal(size=3) * 1e-9],
    )
    x = rng.random(6)
    x[2] = 0.0
    exact = exact_logits(ExactNetwork(net), x)
    assert exact == _naive_logits(net, x)
    assert np.allclose([float(v) for v in exact], net.forward(x), rtol=1e-12)


def test_exact_forms_are_reused_only_for_identical_weights():
    """The per-process memo of exact forms is keyed by the weights: a network with one output
    bias changed in its last bit gets its own form, and the same weights loaded twice share one."""
    rng = np.random.default_rng(3)
    ws = [rng.normal(size=(4, 6)), rng.normal(size=(3, 4))]
    bs = [rng.normal(size=4), rng.normal(size=3)]
    net = ReluNetwork.from_arrays(ws, bs)
    twin = ReluNetwork.from_arrays([w.copy() for w in ws], [b.copy() for b in bs])
    assert ExactNetwork(net).matrices[0] is ExactNetwork(twin).matrices[0]
    bs[1][0] = np.nextafter(bs[1][0], np.inf)
    other = ReluNetwork.from_arrays(ws, bs)
    x = rng.random(6)
    assert exact_logits(ExactNetwork(net), x) == _naive_logits(net, x)
    assert exact_logits(ExactNetwork(other), x) == _naive_logits(other, x)
    assert exact_logits(ExactNetwork(other), x) != exact_logits(ExactNetwork(net), x)


def test_margin_sign_decides_validity_including_ties():
    """y0 = x0, y1 = x1: a tie (x0 == x1) is adversarial for both classes."""
    net = ReluNetwork.from_arrays([np.eye(2), np.eye(2)], [np.zeros(2), np.zeros(2)])
    x = np.array([0.7, 0.1])
    tie = np.array([0.3, 0.3])
    assert exact_margin(net, tie, 1) == 0 and exact_margin(net, tie, 0) == 0
    w = check_witness(net, x, tie, 1, Norm.LINF)
    assert w is not None and w.distance == round_up(Fraction(0.7) - Fraction(0.3))
    below = np.array([0.3, np.nextafter(0.3, 0.0)])
    assert check_witness(net, x, below, 1, Norm.LINF) is None
    assert check_witness(net, x, np.array([1.2, 0.0]), 0, Norm.LINF) is None  # outside [0,1]


def test_exact_distance_and_rounding_up():
    x = np.array([0.1, 0.2, 0.3])
    xp = np.array([0.2, 0.0, 0.3])
    d_inf = exact_distance(x, xp, Norm.LINF)
    d_1 = exact_distance(x, xp, Norm.L1)
    assert d_inf == Fraction(0.2)
    assert d_1 == abs(Fraction(0.2) - Fraction(0.1)) + Fraction(0.2)
    assert Fraction(round_up(d_1)) >= d_1 and round_up(d_1) - float(d_1) <= 2e-16


def test_repair_pushes_a_point_just_short_of_the_boundary():
    net = ReluNetwork.from_arrays(
        [np.eye(2), np.array([[0.0, 0.0], [1.0, 1.0]])], [np.zeros(2), np.array([0.5, 0.0])]
    )
    x = np.array([0.2, 0.2])
    short = np.array([0.25, np.nextafter(0.25, 0.0)])  # x1 + x2 a hair below 0.5
    assert exact_margin(net, short, 1) < 0
    for norm in (Norm.LINF, Norm.L1):
        w = repair(net, x, short, 1, norm)
        assert w is not None and exact_margin(net, w.x, 1) >= 0
        assert w.distance - float(exact_distance(x, short, norm)) < 1e-9
    assert float32_margin(net, short, 1) == 0.0  # float32 cannot see the difference


def test_fit_within_pulls_an_overshooting_witness_inside():
    net = ReluNetwork.from_arrays(
        [np.eye(2), np.array([[0.0, 0.0], [1.0, 1.0]])], [np.zeros(2), np.array([0.5, 0.0])]
    )
    x = np.array([0.2, 0.2])
    w = check_witness(net, x, np.array([0.4, 0.4]), 1, Norm.LINF)
    assert w is not None
    inside = fit_within(net, x, w, 0.1, Norm.LINF)
    assert inside is not None and inside.distance <= 0.1 and exact_margin(net, inside.x, 1) >= 0
    assert fit_within(net, x, w, 0.04, Norm.LINF) is None  # no adversarial example that close


def test_float_margin_enclosure_contains_the_exact_margin():
    """The float64 forward-error enclosure holds the exact rational margin, on badly scaled
    networks, on 784-wide layers and on points pushed to within ~1e-12 of the decision boundary
    (where the float margin's sign is unreliable)."""
    rng = np.random.default_rng(3)
    checked = straddling = 0
    for trial in range(40):
        n_in = 784 if trial % 10 == 0 else int(rng.integers(2, 30))
        scale = 10.0 ** rng.uniform(-3, 3)
        net = ReluNetwork.from_arrays(
            [rng.normal(size=(24, n_in)) * scale, rng.normal(size=(5, 24)) / scale],
            [rng.normal(size=24) * scale, rng.normal(size=5)],
        )
        x = rng.random(n_in)
        logits = net.forward(x)
        target = int(np.argsort(logits)[-2])
        # move the target's bias so that x sits (in floats) on the boundary
        shift = np.max(np.delete(logits, target)) - logits[target]
        biases = [net.biases[0], net.biases[1].copy()]
        biases[1][target] += shift + rng.choice([-1.0, 0.0, 1.0]) * 1e-12
        net = ReluNetwork.from_arrays(net.weights, biases)
        lo, hi = float_margin_bounds(net, x, target)
        exact = exact_margin(net, x, target)
        assert Fraction(lo) <= exact <= Fraction(hi)
        assert hi - lo < 1e-6 * (1 + np.abs(net.forward(x)).max())  # and it is tight
        straddling += lo < 0 < hi
        checked += 1
    assert checked == 40 and straddling > 0


def test_dyadic_form_matches_integer_ratios():
    """The vectorised dyadic form equals the one built value by value from
    ``float.as_integer_ratio`` (same integers, same least shift), subnormals and signs included."""
    from paper_repro.exact.witnesses.witness import _dyadic

    def by_ratio(values):
        ratios = [float(v).as_integer_ratio() for v in np.ravel(values)]
        e = max((d.bit_length() - 1 for _, d in ratios), default=0)
        return [n << (e - (d.bit_length() - 1)) for n, d in ratios], e

    rng = np.random.default_rng(11)
    cases = [
        np.zeros(4),
        np.array([1.0, 2.0, -3.0, 0.5, -0.0]),
        np.array([5e-324, -1e-310, 2.2e-308, 1.0]),
        rng.random(784) * (rng.random(784) < 0.4),
        rng.normal(size=(6, 9)) * 10.0 ** rng.integers(-300, 300, size=(6, 9)),
        np.array([]),
    ]
    for values in cases:
        ints, e = _dyadic(values)
        assert (ints, e) == by_ratio(values)
        assert all(type(v) is int for v in ints)
