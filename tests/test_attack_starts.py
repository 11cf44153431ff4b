"""Batched start attacks: a job's images attacked a chunk at a time give each image its own
rows (adversarial for their own targets), chunks are aligned to the job (so a resumed job
attacks the same batches), and run_image uses what it is given."""

from __future__ import annotations

import numpy as np
import pytest

from paper_repro.data import load_mnist5k
from paper_repro.experiments.attack_starts import StartCache, Starts, attack_images
from paper_repro.experiments.minimal_runs import RunSettings, run_image, torch_model
from paper_repro.query import Norm


@pytest.fixture(scope="module")
def images():
    data = load_mnist5k("holdout", holdout=500, seed=0)
    return data.images[:3].astype(np.float64), [int(v) for v in data.labels[:3]]


@pytest.mark.parametrize("norm", [Norm.LINF, Norm.L1])
def test_each_image_gets_its_own_adversarial_rows(tiny, images, norm):
    net, _, _, cfg = tiny
    xs, labels = images
    settings = RunSettings.from_config(cfg)
    out = attack_images(torch_model(net), xs, labels, net.num_classes, norm, settings)
    assert len(out) == 3
    for x, label, s in zip(xs, labels, out, strict=True):
        targets = [t for t in range(10) if t != label]
        assert s.cw_adv.shape == (9, 784) and s.cw_dist.shape == (9,)
        assert (s.fg_adv is None) == (norm is Norm.L1)
        found = np.isfinite(s.cw_dist)
        assert found.sum() >= 5  # a 6-unit net is easy to fool towards most classes
        for i in np.flatnonzero(found):
            adv = s.cw_adv[i]
            assert int(np.argmax(net.forward(adv))) == targets[i]  # this row's own target
            d = np.abs(adv - x).max() if norm is Norm.LINF else np.abs(adv - x).sum()
            assert d == pytest.approx(s.cw_dist[i], rel=1e-5, abs=1e-6)
            assert adv.min() >= 0.0 and adv.max() <= 1.0


def test_rows_pick_the_classes_in_order():
    dist = np.arange(9.0)
    s = Starts(np.tile(dist[:, None], (1, 4)), dist, None, None)
    picked = s.rows([0, 5, 9], label=3)  # classes 0, 5, 9 are rows 0, 4, 8 when the label is 3
    assert picked.cw_dist.tolist() == [0.0, 4.0, 8.0]
    assert picked.cw_adv[:, 0].tolist() == [0.0, 4.0, 8.0] and picked.fg_adv is None


def test_cache_attacks_aligned_chunks_once():
    calls: list[list[int]] = []

    def attack(part):
        calls.append(list(part))
        return [Starts(np.zeros((9, 1)), np.full(9, float(i)), None, None) for i in part]

    cache = StartCache(attack, [7, 3, 11, 2, 5], chunk=2)
    assert cache.get(11).cw_dist[0] == 11.0  # a resumed job asking for its 3rd image first
    assert cache.get(2).cw_dist[0] == 2.0
    assert cache.get(7).cw_dist[0] == 7.0 and cache.get(3).cw_dist[0] == 3.0
    assert cache.get(5).cw_dist[0] == 5.0
    assert calls == [[11, 2], [7, 3], [5]]
    with pytest.raises(ValueError):
        StartCache(attack, [1], chunk=0)


def test_run_image_starts_from_the_attacks_it_is_given(tiny, tmp_path):
    net, x, label, cfg = tiny
    settings = RunSettings.from_config(cfg)
    (given,) = attack_images(torch_model(net), x[None], [label], net.num_classes, Norm.L1, settings)
    asked: list[int] = []

    def starts() -> Starts:
        asked.append(1)
        return given

    ck = tmp_path / "ck.jsonl"
    recs = run_image(net, "tiny", x, label, 0, Norm.L1, settings, ck, {}, starts=starts)
    targets = [t for t in range(10) if t != label]
    for r in recs:
        assert r["extra"]["cw_distance"] == given.cw_dist[targets.index(r["target"])]
    run_image(net, "tiny", x, label, 0, Norm.L1, settings, ck, {}, starts=starts)
    assert asked == [1]  # nothing left to solve: the attacks are not asked for again
