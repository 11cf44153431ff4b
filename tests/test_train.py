"""Training: options from config, determinism, the three methods run and move the weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paper_repro.config import load_config
from paper_repro.data import Split
from paper_repro.errors import PaperReproError
from paper_repro.train import Method, Stage, TrainOptions, train_model


def tiny_split(n: int = 128) -> Split:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=n)
    # Class-dependent blobs: learnable in a couple of epochs.
    centers = rng.random((10, 784)).astype(np.float32)
    images = np.clip(centers[labels] + 0.1 * rng.standard_normal((n, 784)), 0, 1)
    return Split(images.astype(np.float32), labels.astype(np.int64), "synthetic", "0")


def test_options_from_default_config():
    training = load_config()["training"]
    alp = TrainOptions.from_config("alp", training)
    assert alp.method is Method.ALP and alp.stages[0].eps == 0.3 and alp.stages[-1].eps == 0.1
    assert alp.pairing_weight == 1.0 and alp.init_from_vanilla
    pgd = TrainOptions.from_config("pgd", training)
    assert pgd.step_size == training["pgd"]["step_size"]


def test_unknown_method():
    with pytest.raises(PaperReproError, match="unknown training method 'fgsm'"):
        TrainOptions.from_config("fgsm", load_config()["training"])


def test_vanilla_is_deterministic_and_learns():
    opts = TrainOptions(Method.VANILLA, (Stage(0.0, 15),), lr=3e-3, batch_size=32)
    data = tiny_split()
    a, info = train_model((16,), opts, data, seed=5)
    b, _ = train_model((16,), opts, data, seed=5)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    acc = (a(torch.from_numpy(data.images)).argmax(1).numpy() == data.labels).mean()
    assert acc > 0.5 and info["epochs"] == 15


@pytest.mark.parametrize("method", [Method.PGD, Method.ALP])
def test_adversarial_methods_fine_tune_from_init(method):
    data = tiny_split(64)
    van, _ = train_model((8,), TrainOptions(Method.VANILLA, (Stage(0.0, 1),), 1e-2, 32), data, 0)
    opts = TrainOptions(
        method,
        (Stage(0.1, 2, ramp_epochs=2),),
        1e-2,
        32,
        steps=2,
        step_size=0.05,
        init_from_vanilla=True,
    )
    model, info = train_model((8,), opts, data, 0, init=van)
    assert np.isfinite(info["final_loss"])
    changed = any(
        not torch.equal(p, q) for p, q in zip(model.parameters(), van.parameters(), strict=True)
    )
    assert changed
    with pytest.raises(PaperReproError, match="starts from a vanilla model"):
        train_model((8,), opts, data, 0)
    with pytest.raises(PaperReproError, match="hidden sizes"):
        train_model((9,), opts, data, 0, init=van)


def test_wk_training_is_deterministic_and_lowers_the_robust_bound():
    from paper_repro.evaluate import robust_error_bound

    data = tiny_split(256)
    x, y = torch.from_numpy(data.images), torch.from_numpy(data.labels)
    opts = TrainOptions(
        Method.WK, (Stage(0.1, 10, ramp_epochs=5, eps_start=0.01),), lr=1e-2, batch_size=64
    )
    van, _ = train_model((16,), TrainOptions(Method.VANILLA, (Stage(0.0, 10),), 1e-2, 64), data, 1)
    a, info = train_model((16,), opts, data, seed=1)
    b, _ = train_model((16,), opts, data, seed=1)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert np.isfinite(info["final_loss"])
    # same data, epochs and lr: the robust training certifies more of the training points
    assert robust_error_bound(a, x, y, 0.1) < 0.8 * robust_error_bound(van, x, y, 0.1)


def test_wk_and_schedule_options_from_config():
    training = load_config()["training"]
    wk = TrainOptions.from_config("wk", training)
    assert wk.method is Method.WK and wk.stages[0].eps == training["wk"]["eps"]
    assert wk.stages[0].eps_start == training["wk"]["eps_start"] and not wk.init_from_vanilla
