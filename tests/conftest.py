"""Shared fixtures: paths to the genuine MNIST test set (read in place) and tiny splits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from paper_repro.config import REPO_ROOT, load_config, resolve_path

torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")


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
