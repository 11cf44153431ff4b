"""Shared fixtures: paths to the genuine MNIST test set (read in place) and tiny splits."""

from __future__ import annotations

import itertools
import os

# Before numpy/torch load: multi-threaded BLAS on a busy 2-core machine slows the bounds ~16x.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from scipy.optimize import linprog  # noqa: E402

from paper_repro.bounds.interval import InputRegion, interval_bounds  # noqa: E402
from paper_repro.bounds.symbolic import symbolic_bounds  # noqa: E402
from paper_repro.config import REPO_ROOT, load_config  # noqa: E402
from paper_repro.network import ReluNetwork  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The MNIST folder in use (config or search path); tests needing the genuine test set skip
    where it is absent."""
    from paper_repro.data import config_dir, data_dir

    path = data_dir(config_dir(load_config()["data"]))
    if not (path / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"genuine MNIST test set not present in {path}")
    return path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def random_relaxation():
    """Factory ``make(seed, norm, cap, hidden=(4, 4))`` → ``(net, x, target, bounds)``: a random
    6-input ReLU network with 3 classes, an input with one pixel at 0 and one at 1 (one-sided
    room to move), a target other than its class, and sound symbolic bounds on ``R(x, cap)``."""

    def make(seed: int, norm, cap: float, hidden: tuple[int, ...] = (4, 4)):
        rng = np.random.default_rng(seed)
        sizes = [6, *hidden, 3]
        layers = range(len(sizes) - 1)
        ws = [rng.normal(size=(sizes[k + 1], sizes[k])) for k in layers]
        bs = [rng.normal(size=sizes[k + 1]) * 0.2 for k in layers]
        x = rng.random(6)
        x[0], x[1] = 0.0, 1.0
        net = ReluNetwork.from_arrays(ws, bs)
        target = (int(np.argmax(net.forward(x))) + 1) % 3
        region = InputRegion(x, cap, norm)
        return net, x, target, symbolic_bounds(net, region, interval_bounds(net, region))

    return make


@pytest.fixture(scope="session")
def engine_record():
    """Factory ``row(norm, target, label, result)`` → the per-instance record (the columns
    :mod:`paper_repro.experiments.smt_checks` reads) of an engine result on image 0 of the
    model ``"tiny"``."""

    def row(norm, target: int | None, label: int, result) -> dict:
        return {
            "model": "tiny",
            "norm": str(norm),
            "image": 0,
            "target": target,
            "label": label,
            "lower": result.lower,
            "upper": result.upper,
            "witness": result.witness.tolist(),
        }

    return row


@pytest.fixture(scope="session")
def smt_hard_query():
    """An untargeted L∞ query on a random 30-25-25-25-10 ReLU network (seed 5) that no SMT
    solver answers within a fraction of a second: for time-limit tests."""
    from paper_repro.query import Norm, Query

    rng = np.random.default_rng(5)
    sizes = [30, 25, 25, 25, 10]
    net = ReluNetwork.from_arrays(
        [rng.normal(size=(sizes[k + 1], sizes[k])) for k in range(4)],
        [rng.normal(size=sizes[k + 1]) for k in range(4)],
    )
    x = rng.random(30)
    return Query(net, x, int(np.argmax(net.forward(x))), None, Norm.LINF)


@pytest.fixture(scope="session")
def pattern_lp_oracle():
    """``oracle(net, lo, hi, cases)``: min over the cases ``(C, d)`` and over every activation
    pattern of the least ``t`` with ``C y − d ≤ t`` on the box ``[lo, hi]`` (one scipy HiGHS LP
    per pattern, independent of the engines): ``< 0`` ⇒ some case has a point, ``> 0`` ⇒ none.
    Exponential in the hidden ReLUs: tiny networks only."""

    def oracle(net: ReluNetwork, lo, hi, cases) -> float:
        best = np.inf
        sizes = net.hidden_sizes
        n = net.input_dim
        for pattern in itertools.product([0, 1], repeat=sum(sizes)):
            a, c = np.eye(n), np.zeros(n)
            rows, rhs, pos = [], [], 0
            for k, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
                a, c = w @ a, w @ c + b
                if k == len(sizes):
                    break
                on = np.array(pattern[pos : pos + sizes[k]], bool)
                pos += sizes[k]
                sign = np.where(on, -1.0, 1.0)  # active: −h ≤ 0; inactive: h ≤ 0
                rows.append(sign[:, None] * a)
                rhs.append(-sign * c)
                a, c = a * on[:, None], c * on
            for cm, d in cases:
                cons = np.hstack([cm @ a, -np.ones((len(d), 1))])
                a_ub = np.vstack([np.hstack([np.vstack(rows), np.zeros((sum(sizes), 1))]), cons])
                b_ub = np.concatenate([np.concatenate(rhs), d - cm @ c])
                box = [*zip(lo, hi, strict=True), (None, None)]
                res = linprog(np.r_[np.zeros(n), 1.0], A_ub=a_ub, b_ub=b_ub, bounds=box)
                if res.status == 0:
                    best = min(best, res.fun)
        return best

    return oracle


@pytest.fixture(scope="module")
def tiny():
    """A 6-unit MLP trained briefly on MNIST holdout digits, a digit, its label and a config with
    small attacks (the per-image experiment jobs' tests)."""
    from paper_repro.config import load_config
    from paper_repro.data import load_mnist5k
    from paper_repro.train import Method, Stage, TrainOptions, train_model

    data = load_mnist5k("holdout", holdout=500, seed=0)
    model, _ = train_model((6,), TrainOptions(Method.VANILLA, (Stage(0.0, 3),), 3e-3, 32), data, 0)
    cfg = load_config()
    cfg["experiments"].update(
        timeout=30,
        cw_linf={"steps": 30, "initial_const": 0.1, "largest_const": 20.0},
        cw_l1={"steps": 60, "initial_const": 1.0, "binary_search_steps": 4},
        closest_fgsm={"steps": 10, "step_fraction": 0.1, "search_steps": 6},
    )
    return model.to_network(), data.images[0].astype(np.float64), int(data.labels[0]), cfg
