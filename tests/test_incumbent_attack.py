"""The exact engines' first incumbent: the hand-written cross-entropy gradient, the attack."""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F

from paper_repro.exact.engine_parts.incumbent import attack_incumbent, cross_entropy_grad
from paper_repro.exact.witnesses.witness import ExactNetwork, exact_margin
from paper_repro.models import network_to_torch
from paper_repro.network import ReluNetwork
from paper_repro.query import Norm, Query


def _net(seed: int, sizes: tuple[int, ...]) -> ReluNetwork:
    rng = np.random.default_rng(seed)
    ws = [rng.normal(size=(m, n)) / np.sqrt(n) for n, m in itertools.pairwise(sizes)]
    return ReluNetwork.from_arrays(ws, [rng.normal(size=m) * 0.1 for m in sizes[1:]])


def test_cross_entropy_gradient_matches_torch_autograd():
    """The numpy backward pass equals autograd's (float64) on random networks of 1–3 hidden
    layers, including points with ReLUs exactly at 0 (both take relu′(0) = 0)."""
    for seed, sizes in enumerate([(6, 5, 3), (10, 8, 7, 4), (12, 6, 6, 6, 5)]):
        net = _net(seed, sizes)
        xs = np.random.default_rng(seed + 10).random((7, sizes[0]))
        xs[0] = 0.0  # every first-layer pre-activation is its bias
        target = seed % sizes[-1]
        model = network_to_torch(net, dtype=torch.float64)
        a = torch.tensor(xs, requires_grad=True)
        loss = F.cross_entropy(model(a), torch.full((len(xs),), target), reduction="sum")
        (expected,) = torch.autograd.grad(loss, a)
        got = cross_entropy_grad(net, xs, target)
        np.testing.assert_allclose(got, expected.numpy(), rtol=1e-12, atol=1e-14)


def test_attack_witness_is_exact_in_the_box_and_deterministic():
    net = _net(2, (20, 12, 12, 4))
    x = np.random.default_rng(5).random(20)
    label, target = int(np.argmax(net.forward(x))), 1
    assert label != target
    for norm in (Norm.LINF, Norm.L1):
        q = Query(net, x, label, target, norm)
        w = attack_incumbent(q, target, seed=3, seconds=10.0)
        assert w is not None and w.target == target
        assert np.all((w.x >= 0) & (w.x <= 1))
        assert exact_margin(ExactNetwork(net), w.x, target) >= 0
        d = np.abs(w.x - x)
        assert w.distance >= (d.max() if norm == Norm.LINF else d.sum())
        again = attack_incumbent(q, target, seed=3, seconds=10.0)
        assert again is not None and np.array_equal(again.x, w.x)
