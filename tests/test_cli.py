"""The ``paper-repro`` command: help, info, and one clear error line (exit 2) for bad input."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

BIN = Path(sys.executable).parent / "paper-repro"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [str(BIN), *args], capture_output=True, text=True, env=full_env, timeout=300, check=False
    )


def assert_clean_error(res: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for frag in fragments:
        assert frag in lines[0]


def overlay(tmp_path: Path, content: dict) -> str:
    path = tmp_path / "overlay.yaml"
    path.write_text(yaml.safe_dump(content))
    return str(path)


def test_help_lists_every_subcommand():
    res = run("--help")
    assert res.returncode == 0
    for sub in ("train", "evaluate", "table", "info"):
        assert sub in res.stdout


def test_info_runs():
    res = run("info")
    assert res.returncode == 0 and "data directory" in res.stdout


def test_train_with_missing_data(tmp_path):
    cfg = overlay(tmp_path, {"data": {"train_source": "mnist", "download": False}})
    res = run(
        "train",
        "--config",
        "config/config.yaml",
        "--config",
        cfg,
        "--arch",
        "4",
        "--method",
        "vanilla",
        "--out",
        str(tmp_path / "m.pt"),
        env={"PAPER_REPRO_DATA_DIR": str(tmp_path)},
    )
    assert_clean_error(res, "train-images-idx3-ubyte.gz", str(tmp_path))


def test_evaluate_with_corrupt_idx(tmp_path, mnist_dir):
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(mnist_dir / name, tmp_path / name)
    raw = gzip.decompress((tmp_path / "t10k-labels-idx1-ubyte.gz").read_bytes())
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(raw[:-3]))
    from paper_repro.models import MLP, save_model

    save_model(MLP((3,)), tmp_path / "m.pt", {})
    cfg = overlay(tmp_path, {"data": {"test_source": "mnist", "download": False}})
    res = run(
        "evaluate",
        "--config",
        "config/config.yaml",
        "--config",
        cfg,
        "--model",
        str(tmp_path / "m.pt"),
        "--out",
        str(tmp_path / "e.json"),
        env={"PAPER_REPRO_DATA_DIR": str(tmp_path)},
    )
    assert_clean_error(res, "corrupt IDX file t10k-labels")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--arch", "24y24", "--method", "vanilla"], "unknown architecture '24y24'"),
        (["--arch", "24x24", "--method", "fgsm"], "unknown training method 'fgsm'"),
    ],
)
def test_train_rejects_unknown_arch_and_method(tmp_path, args, fragment):
    res = run("train", *args, "--out", str(tmp_path / "m.pt"))
    assert_clean_error(res, fragment)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ({"training": {"pgd": {"eps": -0.3}}}, "training.pgd.eps"),
        ({"training": {"batch_size": "big"}}, "training.batch_size"),
    ],
)
def test_train_rejects_bad_config(tmp_path, content, fragment):
    cfg = overlay(tmp_path, content)
    res = run(
        "train",
        "--config",
        "config/config.yaml",
        "--config",
        cfg,
        "--arch",
        "4",
        "--method",
        "pgd",
        "--out",
        str(tmp_path / "m.pt"),
    )
    assert_clean_error(res, fragment)


def test_evaluate_rejects_malformed_model(tmp_path):
    (tmp_path / "m.pt").write_bytes(b"\x00garbage")
    res = run("evaluate", "--model", str(tmp_path / "m.pt"), "--out", str(tmp_path / "e.json"))
    assert_clean_error(res, "cannot read model")
