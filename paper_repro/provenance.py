"""What every result file records: package versions, git commit, config and model hashes."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

from paper_repro.config import REPO_ROOT

PACKAGES = (
    "paper_repro",
    "torch",
    "numpy",
    "scipy",
    "highspy",
    "pysmt",
    "z3-solver",
    "maraboupy",
    "onnx",
    "onnxruntime",
    "snakemake",
    "papermill",
)


def versions() -> dict[str, str]:
    """Python and key package versions (``"missing"`` when not installed)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def git_commit() -> str:
    """The repository's HEAD commit, or ``"unknown"`` outside a git checkout."""
    try:
        res = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return res.stdout.strip() or "unknown"


def source_sha256() -> str:
    """sha256 over the package's Python sources (relative path and bytes of every ``.py`` file):
    changes whenever the code that computes results changes, committed or not."""
    import hashlib

    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def model_sha256(path: str | Path) -> str:
    """sha256 of a model's weights (:meth:`ReluNetwork.digest`): the same for bit-identical
    weights whatever the file's metadata (training time, commit) — the hash tables record."""
    from paper_repro.network import load_network

    return load_network(path).digest()


def provenance(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The record stored with results: versions, commit, the data warnings of this process (the
    mnist5k fallback, :func:`paper_repro.data.warnings_issued`), and the config and its digest."""
    from paper_repro.config import config_digest
    from paper_repro.data import warnings_issued

    rec: dict[str, Any] = {
        "versions": versions(),
        "git_commit": git_commit(),
        "data_warnings": warnings_issued(),
    }
    if config is not None:
        rec["config"] = config
        rec["config_sha256"] = config_digest(config)
    return rec
