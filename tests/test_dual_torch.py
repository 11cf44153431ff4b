"""The torch dual network (robust training's bound) against the numpy reference of bounds/dual.py,
its soundness against sampled points of the ball, and the robust loss's gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paper_repro.bounds import dual, dual_torch
from paper_repro.models import MLP


@pytest.mark.parametrize("hidden", [(24, 24), (50,), (6, 5, 4)])
@pytest.mark.parametrize("clip", [False, True])
def test_equals_the_numpy_dual_bound(hidden, clip):
    torch.manual_seed(len(hidden) + 3 * clip)
    model = MLP(hidden).double()
    x = torch.rand(3, 784, dtype=torch.float64)
    y = torch.tensor([1, 5, 9])
    got = dual_torch.margin_bounds(model, x, y, 0.02, clip=clip).detach().numpy()
    net = model.to_network()
    for i in range(3):
        c = np.eye(10)[int(y[i])][None, :] - np.eye(10)
        ref = dual.dual_bound(net, x[i].numpy(), 0.02, c, clip=clip)
        np.testing.assert_allclose(got[i], ref.value, rtol=0, atol=1e-9)
        assert got[i][int(y[i])] == 0.0


def test_layer_bounds_contain_sampled_activations():
    torch.manual_seed(0)
    model = MLP((16, 12)).double()
    x = torch.rand(2, 784, dtype=torch.float64)
    eps = 0.05
    bounds = dual_torch.layer_bounds(model, x, eps)
    lin = model.linears()
    pts = x.unsqueeze(1) + eps * (2 * torch.rand(2, 500, 784, dtype=torch.float64) - 1)
    z1 = pts @ lin[0].weight.T + lin[0].bias
    z2 = torch.relu(z1) @ lin[1].weight.T + lin[1].bias
    for z, (lo, hi) in zip((z1, z2), bounds, strict=True):
        assert (z >= lo.unsqueeze(1) - 1e-9).all() and (z <= hi.unsqueeze(1) + 1e-9).all()
        assert (lo <= hi).all()


def test_margin_bound_is_below_sampled_margins():
    torch.manual_seed(1)
    model = MLP((10, 10)).double()
    x = torch.rand(4, 784, dtype=torch.float64)
    y = torch.tensor([0, 3, 7, 2])
    eps = 0.03
    j = dual_torch.margin_bounds(model, x, y, eps)
    pts = (x.unsqueeze(1) + eps * torch.sign(torch.randn(4, 200, 784, dtype=torch.float64))).clamp(
        0, 1
    )
    with torch.no_grad():
        logits = model(pts.reshape(-1, 784)).reshape(4, 200, 10)
    margins = logits.gather(2, y.view(4, 1, 1).expand(4, 200, 1)) - logits
    assert (margins.min(dim=1).values >= j.detach() - 1e-9).all()


def test_robust_loss_bounds_the_clean_loss_and_has_gradients():
    torch.manual_seed(2)
    model = MLP((8,))
    x = torch.rand(5, 784)
    y = torch.tensor([0, 1, 2, 3, 4])
    loss, bad = dual_torch.robust_loss(model, x, y, 0.1)
    clean = torch.nn.functional.cross_entropy(model(x), y)
    assert loss.item() >= clean.item() - 1e-5  # worst case over the relaxation ≥ the point itself
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert bad.dtype == torch.bool and bad.shape == (5,)
    zero, _ = dual_torch.robust_loss(model, x, y, 0.0)
    torch.testing.assert_close(zero, clean, rtol=1e-5, atol=1e-5)  # ε = 0: the plain CE
