"""``benchmarks/bench_instances.py``: a VNN-COMP instance list run through the CLI — answers,
a contradicted known answer counted as wrong, ``sat`` counterexamples judged by onnxruntime,
resumed runs, and one clear error for a malformed list."""

from __future__ import annotations

import json

import numpy as np
from test_bench_verify import _script
from test_verify import _header, _onnx

from paper_repro.network import ReluNetwork


def _benchmark(tmp_path):
    """A 2-3-2 network, an ``unsat`` and a ``sat`` property, their list and known answers."""
    net = ReluNetwork.from_arrays(
        [
            np.array([[1, 0], [0, 1], [1, 1]], np.float32),
            np.array([[1, 0, 1], [0, 1, 0]], np.float32),
        ],
        [np.zeros(3, np.float32), np.zeros(2, np.float32)],
    )
    _onnx(tmp_path / "net.onnx", net, [1, 2])
    head = _header(2, 2, [0, 0], [1, 1])
    (tmp_path / "no.vnnlib").write_text(head + "(assert (>= Y_0 5))")  # Y_0 ≤ 3 on the box
    (tmp_path / "yes.vnnlib").write_text(head + "(assert (>= (- Y_1 Y_0) 0))")  # at x = 0
    (tmp_path / "instances.csv").write_text("net.onnx,no.vnnlib,20\nnet.onnx,yes.vnnlib,20\n")
    return tmp_path / "instances.csv"


def test_answers_wrong_ones_and_counterexamples_are_counted(tmp_path):
    bench = _script("bench_instances")
    csv = _benchmark(tmp_path)
    (tmp_path / "expected.csv").write_text("net.onnx,no.vnnlib,unsat\nnet.onnx,yes.vnnlib,unsat\n")
    out = tmp_path / "out"
    assert (
        bench.main(
            ["--csv", str(csv), "--expected", str(tmp_path / "expected.csv"), "--out", str(out)]
        )
        == 0
    )
    rows = [json.loads(x) for x in (out / "rows.jsonl").read_text().splitlines()]
    assert [r["answer"] for r in rows] == ["unsat", "sat"]
    assert rows[1]["cex_holds"] is True
    text = (out / "summary.md").read_text()
    assert "| 2 | 1 | 1 | 0 | 0 | 2 |" in text
    assert text.count("WRONG") == 1 and "yes.vnnlib: sat, expected unsat" in text
    # resumed: nothing is run again, the same rows
    assert bench.main(["--csv", str(csv), "--out", str(out)]) == 0
    assert len((out / "rows.jsonl").read_text().splitlines()) == 2


def test_a_counterexample_outside_the_property_fails_the_check(tmp_path):
    bench = _script("bench_instances")
    csv = _benchmark(tmp_path)
    inst = bench.read_instances(csv)[1]
    assert bench.judge_counterexample("sat\n((X_0 0.0)\n (X_1 0.0))", inst)["cex_holds"]
    assert not bench.judge_counterexample("sat\n((X_0 1.0)\n (X_1 0.0))", inst)["cex_holds"]
    assert not bench.judge_counterexample("sat\n((X_0 -0.5)\n (X_1 0.0))", inst)["cex_holds"]


def test_a_malformed_list_is_one_clear_error(tmp_path, capsys):
    bench = _script("bench_instances")
    (tmp_path / "bad.csv").write_text("net.onnx,p.vnnlib,soon\n")
    assert bench.main(["--csv", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "o")]) == 2
    assert "is not a number" in capsys.readouterr().err
