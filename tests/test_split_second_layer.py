"""Second-layer bounds of branch-and-bound nodes from their first-layer splits: every sampled
point of a node lies inside them, they are never looser than the root's, and the splits do
tighten them."""

from __future__ import annotations

import numpy as np
import pytest
from test_split_bab import _hidden, _net

from paper_repro.bounds.crown import crown_rule
from paper_repro.bounds.outward import BoxRegion, layer_bounds
from paper_repro.bounds.split_bounds import SplitBounder
from paper_repro.bounds.split_second_layer import SecondLayerBounds


@pytest.mark.parametrize("single", [False, True])
@pytest.mark.parametrize("seed", range(10))
def test_every_point_of_a_node_is_inside_its_second_layer_bounds(seed, single):
    rng = np.random.default_rng(seed)
    net = _net(200 + seed, (3, 6, 5, 2))
    lo, hi = -rng.random(3), rng.random(3)
    pre = layer_bounds(net, BoxRegion(lo, hi), crown_rule())
    second = SecondLayerBounds(net, lo, hi, pre[0], pre[1], single)
    xs = lo + (hi - lo) * rng.random((40000, 3))
    z, _ = _hidden(net, xs)
    z1, z2 = z[:, :6], z[:, 6:]
    unstable = np.flatnonzero((pre[0][0] < 0) & (pre[0][1] > 0))
    if unstable.size == 0:
        pytest.skip("no unstable first-layer ReLU")
    splits = np.zeros((40, 6), np.int8)
    for row in splits[1:]:
        pick = rng.choice(unstable, size=rng.integers(1, unstable.size + 1), replace=False)
        row[pick] = rng.choice([-1, 1], size=pick.size)
    l2, u2 = second.bounds(splits)
    assert np.all(l2 >= pre[1][0]) and np.all(u2 <= pre[1][1])  # never looser than the root
    np.testing.assert_array_equal(l2[0], pre[1][0])  # no split: the root's bounds
    for i, row in enumerate(splits):
        inside = np.all((row <= 0) | (z1 >= 0), axis=1) & np.all((row >= 0) | (z1 <= 0), axis=1)
        if inside.any():
            assert np.all(z2[inside] >= l2[i]) and np.all(z2[inside] <= u2[i])


def test_splits_tighten_the_second_layer():
    tighter = 0
    for seed in range(10):
        net = _net(300 + seed, (4, 8, 8, 2))
        lo, hi = np.zeros(4), np.ones(4)
        pre = layer_bounds(net, BoxRegion(lo, hi), crown_rule())
        second = SecondLayerBounds(net, lo, hi, pre[0], pre[1])
        unstable = np.flatnonzero((pre[0][0] < 0) & (pre[0][1] > 0))
        splits = np.zeros((2 * unstable.size, 8), np.int8)
        for k, j in enumerate(unstable):  # each unstable ReLU split each way, alone
            splits[2 * k, j], splits[2 * k + 1, j] = 1, -1
        l2, u2 = second.bounds(splits)
        tighter += int((l2 > pre[1][0] + 1e-9).sum() + (u2 < pre[1][1] - 1e-9).sum())
    assert tighter > 20


def test_float32_bounds_stay_below_the_float64_ones_and_close_to_them():
    """The float32 product must be lowered by its own (larger) rounding margin: its bounds may
    exceed the float64 ones only by the float64 margin (both are below the exact Lagrangian
    value), and they stay within 1e-4 of the interval's width of them."""
    rng = np.random.default_rng(11)
    net = _net(500, (60, 40, 30, 2))
    lo = rng.random(60) * 0.5
    hi = lo + 0.3
    pre = layer_bounds(net, BoxRegion(lo, hi), crown_rule())
    exact, single = (SecondLayerBounds(net, lo, hi, pre[0], pre[1], f) for f in (False, True))
    unstable = np.flatnonzero((pre[0][0] < 0) & (pre[0][1] > 0))
    splits = np.zeros((30, 40), np.int8)
    for row in splits:
        pick = rng.choice(unstable, size=rng.integers(1, 8), replace=False)
        row[pick] = rng.choice([-1, 1], size=pick.size)
    l64, u64 = exact.bounds(splits)
    l32, u32 = single.bounds(splits)
    slack = 1e-9
    assert np.all(l32 <= l64 + slack) and np.all(u32 >= u64 - slack)
    width = u64 - l64
    assert np.all(l64 - l32 < 1e-4 * width) and np.all(u32 - u64 < 1e-4 * width)
    assert np.any(l32 > pre[1][0]) and np.any(u32 < pre[1][1])  # still tighter than the root


def test_nodes_sharing_their_first_layer_splits_get_the_bounds_each_gets_alone():
    """SplitBounder.clipped computes the second layer once per distinct first-layer row: the
    batch's bounds must be those of every node bounded on its own."""
    rng = np.random.default_rng(7)
    net = _net(400, (4, 8, 8, 3, 2))
    lo, hi = np.zeros(4), np.ones(4)
    pre = layer_bounds(net, BoxRegion(lo, hi), crown_rule())
    bounder = SplitBounder(net, lo, hi, pre, np.array([[1.0, -1.0]]))
    unstable = np.flatnonzero((bounder.root_lo < 0) & (bounder.root_hi > 0))
    assert np.any(unstable < 8) and np.any(unstable >= 8)  # splits in both layers
    rows = np.zeros((6, bounder.n_relus), np.int8)
    for row in rows[1:]:
        pick = rng.choice(unstable, size=4, replace=False)
        row[pick] = rng.choice([-1, 1], size=4)
    batch = rows[[0, 1, 1, 2, 3, 2, 4, 5, 0]].copy()
    batch[2, unstable[unstable >= 8][0]] = 1  # same first layer as row 1, differs deeper
    lo_b, hi_b = bounder.clipped(batch)
    for i, row in enumerate(batch):
        lo_1, hi_1 = bounder.clipped(row[None])
        np.testing.assert_array_equal(lo_b[i], lo_1[0])
        np.testing.assert_array_equal(hi_b[i], hi_1[0])
