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
