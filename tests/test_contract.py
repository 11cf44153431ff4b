"""The engine's user contract (issue 17, item 6): unknown vs timeout, certified lower bounds
without a witness, clear errors, progress on stderr, and the smt backend's --help."""

from __future__ import annotations

import argparse
import math

import numpy as np
import pytest
import torch

from paper_repro.errors import PaperReproError
from paper_repro.exact.decide import Decision, Verdict
from paper_repro.exact.frontends import cli_minadv
from paper_repro.exact.search import SolveOptions, _with_crown_lower, binary_search
from paper_repro.models import MLP, save_model
from paper_repro.network import ReluNetwork
from paper_repro.query import MinAdvResult, Norm, Query, Status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    cli_minadv.add_arguments(parser)
    return parser


def _far_net(gap: float) -> ReluNetwork:
    """y0 = 0.9 − gap, y1 = relu(x0): class 1 iff x0 ≥ 0.9 − gap."""
    return ReluNetwork.from_arrays(
        [np.eye(2), np.array([[0.0, 0.0], [1.0, 0.0]])], [np.zeros(2), np.array([0.9 - gap, 0.0])]
    )


def _open(query: Query) -> MinAdvResult:
    return MinAdvResult(Status.TIMEOUT, 0.0, math.inf, None, None, math.inf, 1.0, "bab", 2)


def test_no_witness_still_gets_the_certified_lower_bound():
    q = Query(_far_net(0.0), np.zeros(2), 0, 1, Norm.LINF)  # δ* = 0.9
    out = _with_crown_lower(q, _open(q), 1e-4)
    assert 0.89 < out.lower <= 0.9 and out.status == Status.TIMEOUT
    q = Query(_far_net(-0.5), np.zeros(2), 0, 1, Norm.LINF)  # needs x0 ≥ 1.4: impossible
    out = _with_crown_lower(q, _open(q), 1e-4)
    assert out.lower == math.inf and out.status == Status.OPTIMAL


@pytest.mark.parametrize(
    ("message", "status"), [("timeout (encoding)", Status.TIMEOUT), ("gave up", Status.UNKNOWN)]
)
def test_binary_search_says_unknown_for_a_give_up(message, status):
    q = Query(_far_net(0.0), np.zeros(2), 0, 1, Norm.LINF)

    def decider(query, delta, timeout):
        return Decision(Verdict.UNKNOWN, None, 0.0, message)

    res = binary_search(q, decider, SolveOptions(timeout=30), initial=np.array([0.95, 0.0]))
    assert res.status == status and res.message == message


def test_mnist_index_on_a_non_784_network_is_a_clear_error(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "small.pt"
    save_model(MLP((3,), input_dim=12, classes=4), path, {"arch": "3", "method": "test"})
    args = _parser().parse_args(["--model", str(path), "--mnist-index", "0", "--norm", "linf"])
    with pytest.raises(PaperReproError, match="784"):
        cli_minadv.run(args)


def test_help_says_smt_and_marabou_need_binary_search():
    text = " ".join(_parser().format_help().split())
    assert "need --protocol binary_search" in text


def test_minadv_reports_progress_on_stderr(tmp_path, capsys):
    torch.manual_seed(0)
    path = tmp_path / "tiny.pt"
    save_model(MLP((3,)), path, {"arch": "3", "method": "test"})
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random(784))
    argv = ["--model", str(path), "--input", str(tmp_path / "x.npy"), "--norm", "linf"]
    assert cli_minadv.run(_parser().parse_args([*argv, "--timeout", "20"])) == 0
    assert "# minadv:" in capsys.readouterr().err
    assert cli_minadv.run(_parser().parse_args([*argv, "--timeout", "20", "--quiet"])) == 0
    assert capsys.readouterr().err == ""


def test_witnesses_are_valid_exactly_and_in_float32():
    # seed 0, L1: the exact optimum's float32 margin was −2.2e-8 (the float32 model missed the
    # target); the witness is now pushed across within the tolerance
    from paper_repro.exact.search import Backend, minimal_adversarial
    from paper_repro.exact.witnesses.witness import exact_margin, float32_margin

    torch.manual_seed(0)
    net = MLP((20, 20), input_dim=30, classes=5).to_network()
    x = np.random.default_rng(0).random(30)
    q = Query(net, x, int(np.argmax(net.forward(x))), None, Norm.L1)
    res = minimal_adversarial(q, Backend.BAB, SolveOptions(timeout=60))
    assert res.status == Status.OPTIMAL and res.extra["float32_valid"]
    assert res.upper - res.lower <= 1e-4
    assert exact_margin(net, res.witness, res.witness_class) >= 0
    assert float32_margin(net, res.witness, res.witness_class) >= 0 and res.margin_float32 >= 0
