"""The batched certification path (bounds/radius_batch.py, certify_runs.certify_split) against the
numpy references: torch margins equal dual_bound / crown_margins, every returned radius and
certificate passes the outward-rounded is_certified, radii are within tol of the per-image
bisection, and proposals that the certificate rejects are corrected."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paper_repro.bounds import dual_torch, radius_batch
from paper_repro.bounds.crown import CrownOptions, crown_margins, margin_matrix
from paper_repro.bounds.dual import dual_bound
from paper_repro.bounds.radius import (
    BATCH,
    BoundMethod,
    RadiusOptions,
    certified_batch,
    certified_radius,
    is_certified,
    margin_lower_bounds,
    margin_lower_bounds_batch,
)
from paper_repro.data import Split
from paper_repro.errors import PaperReproError
from paper_repro.experiments import certify_runs
from paper_repro.models import network_to_torch
from paper_repro.network import ReluNetwork
from paper_repro.query import Norm

TOL = 1e-3


def _net(seed: int, sizes: tuple[int, ...] = (6, 5, 4, 3)) -> ReluNetwork:
    rng = np.random.default_rng(seed)
    ws = [rng.normal(size=(sizes[k + 1], sizes[k])) for k in range(len(sizes) - 1)]
    bs = [rng.normal(size=sizes[k + 1]) * 0.2 for k in range(len(sizes) - 1)]
    return ReluNetwork.from_arrays(ws, bs)


def _inputs(net: ReluNetwork, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points of [0,1]^6 (pixel 0 at 0, pixel 1 at 1) labelled with the network's class."""
    xs = np.random.default_rng(seed).random((n, net.input_dim))
    xs[:, 0], xs[:, 1] = 0.0, 1.0
    return xs, np.argmax(net.forward(xs), axis=1)


@pytest.mark.parametrize("sizes", [(6, 5, 4, 3), (6, 7, 3), (6, 5, 4, 4, 3)])
@pytest.mark.parametrize("method", [BoundMethod.DUAL, BoundMethod.CROWN])
def test_margins_equal_the_numpy_bounds(sizes, method):
    net = _net(1, sizes)
    xs, ys = _inputs(net, 6, 2)
    eps = np.array([0.0, 0.01, 0.05, 0.1, 0.3, 1.0])  # one radius per image
    got = radius_batch.margin_lower_bounds(
        radius_batch.torch_layers(net),
        torch.from_numpy(xs),
        torch.from_numpy(ys),
        torch.from_numpy(eps),
        method,
    ).numpy()
    for i in range(len(xs)):
        c = margin_matrix(net.num_classes, int(ys[i]))
        if method == BoundMethod.DUAL:
            ref = dual_bound(net, xs[i], eps[i], c, clip=True).value
        else:
            ref = crown_margins(net, xs[i], eps[i], c, "linf", CrownOptions()).lower
        np.testing.assert_allclose(got[i], ref, rtol=0, atol=1e-9)


def test_dual_margins_equal_dual_torch():
    net = _net(3)
    xs, ys = _inputs(net, 5, 4)
    x, y = torch.from_numpy(xs), torch.from_numpy(ys)
    mine = radius_batch.margin_lower_bounds(
        radius_batch.torch_layers(net),
        x,
        y,
        torch.full((5,), 0.07, dtype=torch.float64),
        BoundMethod.DUAL,
    )
    with torch.no_grad():
        ref = dual_torch.margin_bounds(network_to_torch(net, torch.float64), x, y, 0.07, True)
    others = ref[torch.arange(3).expand(5, 3) != y.unsqueeze(1)].view(5, 2)
    torch.testing.assert_close(mine, others, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", [BoundMethod.DUAL, BoundMethod.CROWN])
def test_radii_are_certified_and_within_tol_of_the_bisection(method):
    net = _net(5)
    xs, ys = _inputs(net, 12, 6)
    ys[0] = (ys[0] + 1) % 3  # a misclassified point: not certified even at 0
    opts = RadiusOptions(method, tol=TOL)
    got = radius_batch.confirm_radii(net, xs, ys, opts, chunk=5)
    old = np.array(
        [certified_radius(net, x, int(y), opts).radius for x, y in zip(xs, ys, strict=True)]
    )
    assert got.radius[0] == 0.0
    assert np.all(got.radius >= old - TOL)
    for x, y, r in zip(xs, ys, got.radius, strict=True):
        assert r == 0.0 or is_certified(net, x, int(y), float(r), opts)
    assert got.numpy_calls >= int(np.sum(got.radius > 0))


def test_rejected_proposals_are_corrected(monkeypatch):
    net = _net(7)
    xs, ys = _inputs(net, 10, 8)
    opts = RadiusOptions(BoundMethod.CROWN, tol=TOL)
    real = radius_batch.propose_radii

    def too_large(*args, **kwargs):
        p = real(*args, **kwargs)
        bad = np.where(p.radius > 0, np.minimum(1.0, 2 * p.radius + 0.05), 0.0)
        return radius_batch.Proposal(bad, p.upper, p.evaluations)

    monkeypatch.setattr(radius_batch, "propose_radii", too_large)
    got = radius_batch.confirm_radii(net, xs, ys, opts)
    old = np.array(
        [certified_radius(net, x, int(y), opts).radius for x, y in zip(xs, ys, strict=True)]
    )
    rejected = sum(
        not is_certified(net, x, int(y), float(r), opts)
        for x, y, r in zip(xs, ys, got.proposed, strict=True)
        if r > 0
    )
    assert rejected > 0 and got.corrections == rejected and got.fallbacks >= 1
    for x, y, r in zip(xs, ys, got.radius, strict=True):
        assert r == 0.0 or is_certified(net, x, int(y), float(r), opts)
    assert np.all(got.radius >= old - TOL)


def test_certified_at_eps_matches_is_certified():
    net = _net(9)
    xs, ys = _inputs(net, 15, 10)
    opts = RadiusOptions(BoundMethod.DUAL, tol=TOL)
    for eps in (0.02, 0.1, 0.3):
        got = radius_batch.confirm_certified(net, xs, ys, eps, opts)
        ref = [is_certified(net, x, int(y), eps, opts) for x, y in zip(xs, ys, strict=True)]
        assert got.certified.tolist() == ref
        assert got.corrections == 0


def _split(net: ReluNetwork, n: int, seed: int) -> Split:
    xs, ys = _inputs(net, n, seed)
    ys[:2] = (ys[:2] + 1) % net.num_classes  # two misclassified images
    return Split(xs.astype(np.float32), ys.astype(np.int64), "synthetic", "0")


def test_certify_split_matches_the_per_image_table(monkeypatch):
    net = _net(11)
    data = _split(net, 12, 12)
    settings = certify_runs.CertifySettings((0.05, 0.2), radius_tol=TOL, pgd_steps=3)
    new = certify_runs.certify_split(net, data, settings)
    old = certify_runs.certify_split_per_image(net, data, settings)
    assert list(new.columns) == list(old.columns)
    assert list(new.columns[:4]) == ["index", "label", "prediction", "correct"]
    assert not new["correct"][:2].any() and (new["radius_dual"][:2] == 0).all()
    cols = [c for c in new.columns if not c.startswith("radius")]
    assert new[cols].equals(old[cols])  # attacks and certified@ε identical
    xs = data.images.astype(np.float64)
    for name in ("dual", "crown"):
        col = f"radius_{name}"
        assert np.all(new[col].to_numpy() >= old[col].to_numpy() - TOL)
        opts = RadiusOptions(BoundMethod(name), tol=TOL)
        for i, r in enumerate(new[col]):
            assert r == 0.0 or is_certified(net, xs[i], int(data.labels[i]), float(r), opts)
    assert new.attrs["certify_stats"]["dual_corrections"] == 0


def test_a_proposal_just_past_the_threshold_is_stepped_down(monkeypatch):
    net = _net(13)
    xs, ys = _inputs(net, 4, 14)
    opts = RadiusOptions(BoundMethod.DUAL, tol=TOL)
    fine = RadiusOptions(BoundMethod.DUAL, tol=1e-12)
    # the smallest failing ε of a 1e-12-wide bracket: rejected, but 1e-6 below it passes
    upper = np.array(
        [certified_radius(net, x, int(y), fine).upper for x, y in zip(xs, ys, strict=True)]
    )
    assert np.all((upper > 0) & (upper < 1))

    def at_upper(*args, **kwargs):
        return radius_batch.Proposal(upper.copy(), upper.copy(), 0)

    monkeypatch.setattr(radius_batch, "propose_radii", at_upper)
    got = radius_batch.confirm_radii(net, xs, ys, opts)
    assert got.corrections == 4 and got.fallbacks == 0 and got.numpy_calls == 8
    np.testing.assert_allclose(got.radius, upper * radius_batch.STEP_DOWN)
    for x, y, r in zip(xs, ys, got.radius, strict=True):
        assert is_certified(net, x, int(y), float(r), opts)


@pytest.mark.parametrize("sizes", [(6, 5, 4, 3), (6, 7, 3), (6, 5, 4, 4, 3)])
@pytest.mark.parametrize("method", [BoundMethod.DUAL, BoundMethod.CROWN])
def test_batched_certificate_equals_the_per_image_one(sizes, method):
    """margin_lower_bounds_batch runs the per-image outward-rounded arithmetic on a batch: the
    same bounds (to the last bits) and the same decisions, over batches of any length."""
    net = _net(5, sizes)
    n = 2 * BATCH + 3  # two full batches and a short one
    xs, labels = _inputs(net, n, seed=6)
    eps = np.random.default_rng(7).choice([0.0, 1e-3, 0.02, 0.1, 0.4, 1.0], size=n)
    options = RadiusOptions(method)
    got = margin_lower_bounds_batch(net, xs, labels, eps, options)
    rows = zip(xs, labels, eps, strict=True)
    ref = np.array([margin_lower_bounds(net, x, int(y), e, options) for x, y, e in rows])
    assert got.shape == ref.shape == (n, sizes[-1] - 1)
    np.testing.assert_allclose(got, ref, rtol=1e-13, atol=1e-13)
    clear = np.all(np.abs(ref) > 1e-9, axis=1)
    decided = certified_batch(net, xs, labels, eps, options)
    assert np.array_equal(decided[clear], np.all(ref > 0, axis=1)[clear])
    assert 0 < decided.sum() < n  # both answers occur
    # one radius for all images
    one = certified_batch(net, xs, labels, 0.02, options)
    assert np.array_equal(
        one, [is_certified(net, x, int(y), 0.02, options) for x, y in zip(xs, labels, strict=True)]
    )


def test_batched_certificate_rejects_what_it_does_not_implement():
    net = _net(0)
    xs, labels = _inputs(net, 3, seed=1)
    with pytest.raises(PaperReproError, match="L∞"):
        margin_lower_bounds_batch(net, xs, labels, 0.1, RadiusOptions(norm=Norm.L1))
    with pytest.raises(PaperReproError, match="L∞"):
        margin_lower_bounds_batch(net, xs, labels, 0.1, RadiusOptions(clip=False))
    with pytest.raises(PaperReproError, match="labels"):
        margin_lower_bounds_batch(net, xs, labels + 10, 0.1, RadiusOptions())
    with pytest.raises(PaperReproError, match="radius"):
        margin_lower_bounds_batch(net, xs, labels, -0.1, RadiusOptions())
    assert certified_batch(net, xs[:0], labels[:0], 0.1, RadiusOptions()).shape == (0,)
