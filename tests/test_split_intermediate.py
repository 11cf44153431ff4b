"""A node's own second-layer bounds (:mod:`paper_repro.bounds.split_intermediate`): they hold on
every input of the node's subdomain (exact LP ranges where the first layer is fully split,
sampled points elsewhere), never loosen the node's bounds, and use the split constraints (with
``β = 0`` they would stay far from the exact range)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

from paper_repro.bounds.split_bounds import Domains, SplitBounder
from paper_repro.bounds.split_intermediate import refresh
from paper_repro.exact.engines.split_bab import SplitBabOptions, SplitSearch, root_bounds
from paper_repro.network import ReluNetwork


def _case(seed: int, sizes=(4, 8, 6, 2)):
    rng = np.random.default_rng(seed)
    net = ReluNetwork.from_arrays(
        [rng.normal(size=(sizes[k + 1], sizes[k])) for k in range(len(sizes) - 1)],
        [rng.normal(size=sizes[k + 1]) * 0.3 for k in range(len(sizes) - 1)],
    )
    lo = rng.uniform(-1, 0, sizes[0])
    hi = lo + rng.uniform(0.5, 1.5, sizes[0])
    pre = root_bounds(net, lo, hi, SplitBabOptions())
    bounder = SplitBounder(net, lo, hi, pre, np.array([[1.0, -1.0]]))
    return net, lo, hi, bounder, rng


def _domain(bounder: SplitBounder, splits: np.ndarray) -> Domains:
    n = bounder.n_relus
    return Domains(
        splits[None].astype(np.int8), np.full((1, n), 0.5), np.zeros((1, n)), np.zeros((1, 1))
    )


def _exact_second_layer(net, lo, hi, pattern):
    """Exact range of each second-layer pre-activation over ``{x ∈ box : the first layer has
    ``pattern``}`` (linear there: one LP per bound), or ``None`` if that set is empty."""
    w1, b1, w2, b2 = net.weights[0], net.biases[0], net.weights[1], net.biases[1]
    d = np.where(pattern > 0, 1.0, 0.0)
    # active: −(W₁x + b₁) ≤ 0; inactive: W₁x + b₁ ≤ 0
    a_ub = -pattern[:, None] * w1
    b_ub = pattern * b1
    lin = (w2 * d) @ w1
    const = (w2 * d) @ b1 + b2
    out = []
    for sign in (1.0, -1.0):
        vals = []
        for i in range(len(b2)):
            r = linprog(sign * lin[i], A_ub=a_ub, b_ub=b_ub, bounds=list(zip(lo, hi, strict=True)))
            if r.status == 2:
                return None
            assert r.status == 0
            vals.append(sign * (r.fun + sign * const[i]))
        out.append(np.array(vals))
    return out[0], out[1]


@pytest.mark.parametrize("seed", range(6))
def test_fully_split_first_layer_closes_most_of_the_gap_to_the_exact_range(seed):
    net, lo, hi, bounder, rng = _case(seed)
    first, second = bounder.slices()[:2]
    x = rng.uniform(lo, hi)
    pattern = np.where(net.weights[0] @ x + net.biases[0] >= 0, 1, -1)
    splits = np.zeros(bounder.n_relus, int)
    splits[first] = pattern
    exact = _exact_second_layer(net, lo, hi, pattern)
    assert exact is not None  # x lies in it
    dom = _domain(bounder, splits)
    before = bounder.clipped(dom.splits)
    after = refresh(bounder, dom, iterations=300, lr=0.05).own
    unaided = refresh(bounder, dom, iterations=0).own
    assert np.all(after[0] >= before[0]) and np.all(after[1] <= before[1])
    lo2, hi2 = after[0][0, second], after[1][0, second]
    assert np.all(lo2 <= exact[0] + 1e-9) and np.all(hi2 >= exact[1] - 1e-9)
    gap = np.sum(exact[0] - lo2) + np.sum(hi2 - exact[1])
    gap0 = np.sum(exact[0] - unaided[0][0, second]) + np.sum(unaided[1][0, second] - exact[1])
    assert gap <= 0.5 * gap0 + 1e-6, (gap, gap0)


@pytest.mark.parametrize("seed", range(6))
def test_partly_split_nodes_keep_every_input_of_their_subdomain(seed):
    net, lo, hi, bounder, rng = _case(seed + 10)
    first, second = bounder.slices()[:2]
    points = rng.uniform(lo, hi, size=(20000, len(lo)))
    z1 = points @ net.weights[0].T + net.biases[0]
    z2 = np.maximum(z1, 0.0) @ net.weights[1].T + net.biases[1]
    x = points[0]
    splits = np.zeros(bounder.n_relus, int)
    chosen = rng.choice(first.stop, size=4, replace=False)
    splits[chosen] = np.where(z1[0, chosen] >= 0, 1, -1)
    inside = np.all((z1[:, chosen] * splits[chosen]) >= 0, axis=1)
    assert inside[0] and np.allclose(points[0], x)
    own = refresh(bounder, _domain(bounder, splits), iterations=50).own
    lo2, hi2 = own[0][0, second], own[1][0, second]
    assert np.all(z2[inside] >= lo2 - 1e-9) and np.all(z2[inside] <= hi2 + 1e-9)


def test_search_with_refreshed_bounds_agrees_with_the_plain_search():
    """Same verdicts with and without the nodes' own second-layer bounds, on random properties."""
    for seed in range(8):
        net, lo, hi, _, rng = _case(seed + 20, sizes=(4, 10, 10, 3))
        c = np.array([[1.0, -1.0, 0.0]]) * rng.choice([1.0, -1.0])
        verdicts = []
        for every in (0, 1):
            opts = SplitBabOptions(refresh_every=every, batch=4, refine=None)
            d = SplitSearch(net, lo, hi, c, opts).run(float("inf"))
            verdicts.append(d.verdict)
        assert verdicts[0] == verdicts[1], seed
