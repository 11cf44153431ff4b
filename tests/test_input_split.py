"""Input bisection (``exact/engines/input_split.py``): decisions against the activation-pattern
LP oracle of ``conftest`` (also when resumed after every batch), never ``robust`` where a sampled
point meets the rows, candidates inside the box, and clear errors for bad options."""

from __future__ import annotations

import time

import numpy as np
import pytest
from test_split_bab import _net

from paper_repro.errors import PaperReproError
from paper_repro.exact.decide import Verdict
from paper_repro.exact.engines.input_split import InputSplitOptions, InputSplitSearch
from paper_repro.network import ReluNetwork


def _with_offset(net: ReluNetwork, c: np.ndarray, d: np.ndarray) -> tuple[ReluNetwork, np.ndarray]:
    """The network with an extra output fixed at 1 and the rows ``[c, −d]``: ``C f − d ≤ 0``."""
    width = net.weights[-1].shape[1]
    net2 = ReluNetwork.from_arrays(
        [*net.weights[:-1], np.vstack([net.weights[-1], np.zeros((1, width))])],
        [*net.biases[:-1], np.r_[net.biases[-1], 1.0]],
    )
    return net2, np.hstack([c, -d[:, None]])


@pytest.mark.parametrize("seed", range(30))
def test_decisions_against_the_pattern_lp_oracle(seed, pattern_lp_oracle):
    rng = np.random.default_rng(seed)
    net = _net(2000 + seed, (3, 4, 4, 3))
    lo = rng.uniform(-1, 0, 3)
    hi = lo + rng.uniform(0.1, 1, 3)
    if seed % 5 == 2:
        hi[0] = lo[0]  # a coordinate of zero width
    c = rng.normal(size=(1 + seed % 2, 3))
    d = c @ net.forward(0.5 * (lo + hi)) + rng.uniform(-1.5, 0.3, len(c))
    net2, rows = _with_offset(net, c, d)
    truth = pattern_lp_oracle(net, lo, hi, [(c, d)])
    if abs(truth) < 1e-6:
        pytest.skip("borderline instance")
    search = InputSplitSearch(net2, lo, hi, rows, InputSplitOptions(batch=1 + seed % 4))
    if seed % 3 == 1:  # resumed after about every batch: the same kind of answer
        for _ in range(100_000):
            out = search.run(time.monotonic() + 1e-4)
            if not out.message.startswith("timeout"):
                break
        assert search.run(time.monotonic() + 1.0) is out  # answered: stays answered
    else:
        out = search.run(time.monotonic() + 20)
    if truth > 0:
        assert out.verdict == Verdict.ROBUST, out
    else:
        assert out.verdict == Verdict.ADVERSARIAL, out
        x = out.witness
        assert np.all(x >= lo) and np.all(x <= hi)
        assert np.all(c @ net.forward(x) - d <= 0)


@pytest.mark.parametrize("seed", range(20))
def test_never_proves_what_a_sampled_point_contradicts(seed):
    rng = np.random.default_rng(100 + seed)
    net = _net(3000 + seed, (2, 6, 6, 2))
    lo = rng.uniform(-1, 0, 2)
    hi = lo + rng.uniform(0.2, 1.5, 2)
    c = rng.normal(size=(1, 2))
    xs = lo + (hi - lo) * rng.random((20000, 2))
    values = (net.forward(xs) @ c.T)[:, 0]
    d = np.quantile(values, [0.002 + 0.01 * (seed % 3)])  # a few sampled points meet the row
    net2, rows = _with_offset(net, c, d)
    out = InputSplitSearch(net2, lo, hi, rows).run(time.monotonic() + 20)
    assert out.verdict == Verdict.ADVERSARIAL, out
    assert np.all(c @ net.forward(out.witness) - d <= 0)


def test_a_timed_out_search_continues_and_an_interrupted_one_never_does(monkeypatch):
    net = _net(7, (2, 8, 8, 2))
    net2, rows = _with_offset(net, np.array([[1.0, -1.0]]), np.array([-50.0]))
    search = InputSplitSearch(net2, -np.ones(2), np.ones(2), rows, InputSplitOptions(batch=1))
    first = search.run(time.monotonic() - 1.0)  # already past the deadline
    assert first.verdict == Verdict.UNKNOWN and first.message.startswith("timeout")
    assert search.run(time.monotonic() + 20).verdict == Verdict.ROBUST
    broken = InputSplitSearch(net2, -np.ones(2), np.ones(2), rows)
    monkeypatch.setattr(broken, "_lower_bounds", lambda *_: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        broken.run(time.monotonic() + 20)
    assert broken.run(time.monotonic() + 20).verdict == Verdict.UNKNOWN


def test_bad_options_and_an_empty_box_are_clear_errors():
    with pytest.raises(PaperReproError, match="positive"):
        InputSplitOptions(max_dim=0)
    with pytest.raises(PaperReproError, match="non-empty box"):
        InputSplitSearch(_net(1, (2, 3, 2)), np.ones(2), np.zeros(2), np.eye(2))


def test_pre_activations_of_a_batch_are_those_of_each_row():
    """``ReluNetwork.pre_activations`` on ``[B, n₀]`` (the input bisection's gradients use it)
    gives each row's single-input values."""
    net = _net(5, (3, 6, 4, 2))
    xs = np.random.default_rng(5).normal(size=(7, 3))
    batch = net.pre_activations(xs)
    assert [z.shape for z in batch] == [(7, 6), (7, 4)]
    for i, x in enumerate(xs):
        for zb, z1 in zip(batch, net.pre_activations(x), strict=True):
            np.testing.assert_allclose(zb[i], z1, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_inherited_bounds_contain_every_sampled_pre_activation(seed):
    """Boxes bounded and halved batch after batch (by hand: what ``_run`` does between two
    deadline checks): each box's hidden bounds — its parent's, tightened where unstable —
    hold at points sampled in the box and are never looser than the parent's; the test fails
    when the intersection picks the wrong neuron or is left out."""
    rng = np.random.default_rng(seed)
    net = _net(4000 + seed, (3, 8, 8, 8, 2))
    net2, rows = _with_offset(net, np.array([[1.0, -1.0]]), np.array([-3.0]))
    search = InputSplitSearch(net2, -np.ones(3), np.ones(3), rows, InputSplitOptions(batch=4))
    for _ in range(6):
        box_lo, box_hi, plo, phi = search._pop(4)
        _, _, pre = search._lower_bounds(box_lo, box_hi, plo, phi)
        for j in range(len(box_lo)):
            x = box_lo[j] + (box_hi[j] - box_lo[j]) * rng.random((400, 3))
            for k, z in enumerate(net2.pre_activations(x)[:-1]):
                assert np.all(z >= pre[k][0][j] - 1e-12) and np.all(z <= pre[k][1][j] + 1e-12)
                assert np.all(pre[k][0][j] >= plo[k][j]) and np.all(pre[k][1][j] <= phi[k][j])
        halves = np.arange(len(box_lo)), np.argmax(box_hi - box_lo, axis=1)
        cut = (box_lo + box_hi)[halves] / 2
        left_hi, right_lo = box_hi.copy(), box_lo.copy()
        left_hi[halves], right_lo[halves] = cut, cut
        search.lo = np.concatenate([search.lo, right_lo, box_lo])
        search.hi = np.concatenate([search.hi, box_hi, left_hi])
        for k, (lk, hk) in enumerate(pre):
            search.blo[k] = np.concatenate([search.blo[k], lk, lk])
            search.bhi[k] = np.concatenate([search.bhi[k], hk, hk])


def test_slivers_are_halved_along_their_widest_input():
    from paper_repro.exact.engines.input_split import _unsliver

    rel = np.array([[0.5, 0.003, 0.25], [0.5, 0.1, 0.25], [0.0, 0.5, 0.0025]])
    chosen = np.array([1, 1, 2])
    assert _unsliver(chosen, rel, 256.0).tolist() == [1, 1, 2]
    assert _unsliver(chosen, rel, 32.0).tolist() == [0, 1, 1]


def test_a_memory_cap_ends_the_search_as_unknown():
    net = _net(8, (2, 16, 16, 16, 2))  # robust after 34 boxes without a cap
    xs = np.random.default_rng(7).uniform(-1, 1, (20000, 2))
    low = (net.forward(xs) @ np.array([1.0, -1.0])).min() - 0.2
    net2, rows = _with_offset(net, np.array([[1.0, -1.0]]), np.array([low]))
    opts = InputSplitOptions(batch=1, max_bytes=2_000)
    out = InputSplitSearch(net2, -np.ones(2), np.ones(2), rows, opts).run(time.monotonic() + 20)
    assert out.verdict == Verdict.UNKNOWN and "memory cap" in out.message


def test_bound_rows_in_small_batches_give_the_same_bounds(monkeypatch):
    """The rows of the unstable ReLUs bounded in batches of one pair give the bounds of one
    flat batch (to rounding)."""
    from paper_repro.exact.engines import input_split

    net = _net(11, (3, 8, 8, 8, 2))
    net2, rows = _with_offset(net, np.array([[1.0, -1.0]]), np.array([-3.0]))
    lo = np.array([[-1.0, -1, -1], [0, -1, -1], [-1.0, 0, 0]])
    hi = lo + 1.0
    search = InputSplitSearch(net2, -np.ones(3), np.ones(3), rows)
    plo = [np.repeat(a, 3, axis=0) for a in search.blo]
    phi = [np.repeat(a, 3, axis=0) for a in search.bhi]
    whole = search._lower_bounds(lo, hi, plo, phi)
    monkeypatch.setattr(input_split, "_ROW_BYTES", 1)  # one (box, ReLU) pair a batch
    parts = search._lower_bounds(lo, hi, plo, phi)
    np.testing.assert_allclose(whole[0], parts[0], rtol=1e-12)  # up to the BLAS's order
    for (a, b), (c, d) in zip(whole[2], parts[2], strict=True):
        np.testing.assert_allclose(a, c, rtol=1e-12)
        np.testing.assert_allclose(b, d, rtol=1e-12)
