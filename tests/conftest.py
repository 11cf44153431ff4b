"""Shared fixtures: paths to the genuine MNIST test set (read in place) and tiny splits."""

from __future__ import annotations

import os

# Before numpy/torch load: multi-threaded BLAS on a busy 2-core machine slows the bounds ~16x.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from paper_repro.config import REPO_ROOT, load_config, resolve_path  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The configured MNIST folder; tests needing the genuine test set skip where it is absent."""
    path = resolve_path(load_config()["data"]["dir"])
    if not (path / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"genuine MNIST test set not present in {path}")
    return path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
