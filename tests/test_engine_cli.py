"""``paper-repro minadv`` (add_arguments / run): JSON output and clear errors on bad input."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from paper_repro.errors import PaperReproError
from paper_repro.exact.frontends import cli_minadv
from paper_repro.exact.witnesses.witness import exact_margin
from paper_repro.models import MLP, save_model
from paper_repro.network import load_network


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch.manual_seed(0)
    model = MLP((3,))
    path = tmp_path_factory.mktemp("m") / "tiny.pt"
    save_model(model, path, {"arch": "3", "method": "test"})
    return path


def _args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli_minadv.add_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.parametrize("shape", [(784,), (28, 28), (1, 28, 28)])
def test_minadv_prints_a_checked_json_record(tmp_path, tiny_model, capsys, shape):
    x = np.random.default_rng(1).random(784).reshape(shape)
    np.save(tmp_path / "x.npy", x)
    net = load_network(tiny_model)
    label = int(np.argmax(net.forward(x.reshape(-1))))
    target = (label + 1) % 10
    argv = ["--model", str(tiny_model), "--input", str(tmp_path / "x.npy"), "--norm", "linf"]
    code = cli_minadv.run(_args([*argv, "--target", str(target), "--timeout", "30", "--json"]))
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["label"] == label and out["target"] == target
    assert out["status"] in ("optimal", "timeout")
    if out["witness"] is None:
        assert out["upper"] == "inf"
    else:
        w = np.array(out["witness"])
        assert w.shape == (784,) and exact_margin(net, w, out["witness_class"]) >= 0
        assert out["lower"] <= out["upper"]
        assert abs(np.max(np.abs(w - x.reshape(-1))) - out["upper"]) < 1e-12


def test_minadv_rejects_bad_inputs(tmp_path, tiny_model):
    np.save(tmp_path / "bad.npy", np.zeros((10, 10)))
    np.save(tmp_path / "big.npy", np.full(784, 2.0))
    base = ["--model", str(tiny_model), "--norm", "l1"]
    with pytest.raises(PaperReproError, match="shape"):
        cli_minadv.run(_args([*base, "--input", str(tmp_path / "bad.npy")]))
    with pytest.raises(PaperReproError, match=r"\[0, 1\]"):
        cli_minadv.run(_args([*base, "--input", str(tmp_path / "big.npy")]))
    with pytest.raises(PaperReproError, match="not found"):
        cli_minadv.run(_args([*base, "--input", str(tmp_path / "missing.npy")]))
    np.save(tmp_path / "ok.npy", np.zeros(784))
    with pytest.raises(PaperReproError, match="target"):
        cli_minadv.run(_args([*base, "--input", str(tmp_path / "ok.npy"), "--target", "12"]))
    with pytest.raises(PaperReproError, match="model"):
        cli_minadv.run(
            _args(
                [
                    "--model",
                    str(tmp_path / "none.pt"),
                    "--norm",
                    "l1",
                    "--input",
                    str(tmp_path / "ok.npy"),
                ]
            )
        )


def test_minadv_stdout_holds_only_the_json_record(tmp_path, tiny_model):
    """In a fresh process, stdout is exactly one JSON object: HiGHS 1.16 prints a banner on a
    process's first instance, which :func:`paper_repro.bounds.highs.new_highs` discards."""
    x = np.random.default_rng(2).random(784)
    np.save(tmp_path / "x.npy", x)
    cmd = [str(Path(sys.executable).parent / "paper-repro"), "minadv", "--model", str(tiny_model)]
    cmd += ["--input", str(tmp_path / "x.npy"), "--norm", "l1", "--timeout", "30", "--json"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("\n") == 1 and "HiGHS" not in res.stdout
    assert json.loads(res.stdout)["norm"] == "l1"
