"""``benchmarks/bench_verify.py`` (issue 17, item 5): the property files it writes are the
VNN-COMP mnistfc form our parser reads back exactly, and its summary counts answers, solved
instances and disagreements as stated."""

from __future__ import annotations

import importlib.util
import json
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return module


def test_property_file_is_the_mnistfc_box_and_disjunction(tmp_path):
    from paper_repro.vnnlib import parse_vnnlib

    bench = _script("bench_verify")
    x = np.array([0.0, 0.5, 0.99, 1.0])
    path = tmp_path / "p.vnnlib"
    path.write_text(bench.vnnlib_text(x, label=2, eps=0.03))
    prop = parse_vnnlib(path)
    assert prop.n_inputs == 4 and prop.n_outputs == 10 and len(prop.cases) == 9
    box = prop.cases[0].box
    assert box.lower[0] == 0 and box.upper[3] == 1  # clipped to [0, 1]
    assert box.lower[1] == Fraction(repr(0.5 - 0.03)) and box.upper[2] == 1  # exact decimals
    for k, case in enumerate(prop.cases):  # Y_j − Y_2 ≥ 0, one class j ≠ 2 per case
        (c,) = case.constraints
        j = k if k < 2 else k + 1
        assert c.coeffs[2] != 0 and c.coeffs[j] != 0 and sum(map(abs, c.coeffs)) == 2


def _row(tool: str, image: int, answer: str, seconds: float) -> dict:
    return {
        "tool": tool,
        "net": "mnist-8x8",
        "image": image,
        "label": 0,
        "correct": True,
        "eps": 0.03,
        "timeout": 10.0,
        "answer": answer,
        "seconds": seconds,
        "wall": seconds + 1.0,
        "peak_rss_mib": 100.0,
        "message": "",
    }


def test_summary_counts_solved_times_and_disagreements(tmp_path):
    summary = _script("bench_verify_summary")
    rows = [
        _row("verify", 0, "unsat", 1.0),
        _row("verify", 1, "sat", 0.5),
        _row("verify", 2, "timeout", 10.0),
        _row("milp", 0, "unsat", 20.0),
        _row("milp", 1, "unsat", 5.0),  # contradicts verify's sat
        _row("milp", 2, "timeout", 10.0),
        _row("verify", 2, "unsat", 3.0),  # a rerun: the last row of an instance counts
    ]
    rows[1].update(cex_in_box=True, cex_ort_margin=0.25)
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = summary.summarize(tmp_path)
    lines = {ln.split("|")[2].strip(): ln for ln in text.splitlines() if ln.startswith("| mnist")}
    verify = [c.strip() for c in lines["verify"].split("|")]
    milp = [c.strip() for c in lines["milp"].split("|")]
    # instances, sat, unsat, timeout, other, solved, times, MiB, disagreements, ratio
    assert verify[3:9] == ["3", "1", "2", "0", "0", "3"]
    assert verify[9] == "1.00 / 3.00" and verify[11] == "1"
    assert milp[3:9] == ["3", "0", "2", "1", "0", "2"]
    assert milp[11] == "1" and milp[12] == "15.0× (2)"  # median of 20/1 and 5/0.5
    assert "('mnist-8x8', 1, 0.03)" in text
    assert "1 of 1 pass (1 `sat` answers; least onnxruntime margin 0.25)" in text
    assert "Networks (weights" not in text  # no nets.json: nothing claimed about the weights
    nets = {"mnist-8x8": {"accuracy": 0.5, "weights_sha256": "ab" * 32, "trained_on": "CPU X"}}
    (tmp_path / "nets.json").write_text(json.dumps(nets))
    text = summary.summarize(tmp_path)
    assert "| mnist-8x8 (50.00%) | verify |" in text
    assert "Networks (weights sha256; trained on CPU X): mnist-8x8 abababababab." in text


def test_split_case_answers_a_hand_known_case_and_refuses_a_missing_file(tmp_path, capsys):
    """``bench_split_case.py`` on y₀ = h₀ + h₁, y₁ = 2h₀ − 0.15, y₂ = h₀ + h₁ − 0.5 (h = relu(x),
    other classes −10) over the box 0.5 ± 0.1: class 1 beats class 0 at x = (0.6, 0.4), class 2
    never does."""
    from test_verify import _onnx

    from paper_repro.network import ReluNetwork

    bench = _script("bench_verify")
    split_case = _script("bench_split_case")
    w2 = np.zeros((10, 2))
    w2[0], w2[1], w2[2] = [1, 1], [2, 0], [1, 1]
    b2 = np.full(10, -10.0)
    b2[:3] = [0.0, -0.15, -0.5]
    net = ReluNetwork.from_arrays([np.eye(2), w2], [np.zeros(2), b2])
    (tmp_path / "nets").mkdir()
    (tmp_path / "props" / "mnist-2").mkdir(parents=True)
    _onnx(tmp_path / "nets" / "mnist-2.onnx", net, [1, 2])
    prop = tmp_path / "props" / "mnist-2" / "img7_eps0.1.vnnlib"
    prop.write_text(bench.vnnlib_text(np.array([0.5, 0.5]), label=0, eps=0.1))
    common = ["--bench", str(tmp_path), "--net", "2", "--image", "7", "--eps", "0.1"]
    assert split_case.main([*common, "--target", "2", "--seconds", "20"]) == 0
    assert "label 0 target 2: robust" in capsys.readouterr().out
    assert split_case.main([*common, "--target", "1", "--seconds", "20"]) == 0
    assert "label 0 target 1: adversarial" in capsys.readouterr().out
    assert split_case.main([*common, "--target", "2", "--seconds", "20", "--refine"]) == 0
    out = capsys.readouterr().out  # one hidden layer: nothing to refine, the same answer
    assert "refined hidden layers []" in out and "label 0 target 2: robust" in out
    assert split_case.main([*common, "--target", "0"]) == 2  # the label itself
    assert split_case.main([*common[:-1], "0.2", "--target", "1"]) == 2  # no such file
    assert "not found" in capsys.readouterr().err


def test_attack_on_open_instances_finds_the_best_corner_of_a_linear_network():
    """On a network without hidden ReLUs the margin ``y_1 − y_0`` is linear in ``x``: its
    maximum over the box is at a known corner, and the attacks must reach it."""
    import torch

    attack = _script("attack_timeouts")
    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0, -1.0], [-1.0, 2.0, 0.5]]))
        model[0].bias.copy_(torch.tensor([0.5, -1.0]))
    lo, hi = torch.tensor([0.0, -1.0, 0.2]), torch.tensor([1.0, 1.0, 0.4])
    # y_1 − y_0 = −2 x_0 + 2 x_1 + 1.5 x_2 − 1.5, largest at x = (0, 1, 0.4): 1.1
    best = attack.best_margin(model, lo, hi, label=0, starts=4, steps=50, seed=0)
    assert abs(best - 1.1) < 1e-5
    # towards class 0 from label 1 the largest margin is at (1, −1, 0.2): 5.2
    best = attack.best_margin(model, lo, hi, label=1, starts=4, steps=50, seed=0)
    assert abs(best - 5.2) < 1e-5
