"""``paper-repro verify`` on a VNN-COMP instance list (``instances.csv``), against known answers.

VNN-COMP ships each benchmark as ONNX networks, VNN-LIB properties and an ``instances.csv`` of
``onnx,vnnlib,timeout`` rows, paths relative to the CSV. This runs every row through the CLI,
each call in its own process with one BLAS thread (wall time and peak memory measured by the
parent, as in ``bench_verify.py``), and writes

* ``OUT/rows.jsonl``: one row per instance (answer, the CLI's own seconds, wall, peak MiB, and for
  ``sat`` the counterexample judged again: inside a case's box, and that case's output
  constraints met by onnxruntime's float32 outputs at ``X``); a rerun skips the rows already
  there, so an interrupted run resumes;
* ``OUT/summary.md``: counts, median / max seconds of the solved ones, and every answer that
  contradicts ``--expected`` (a CSV ``onnx,vnnlib,answer`` of published results, ``sat`` /
  ``unsat``; paths as in the instance list) — a contradiction is a wrong answer.

The networks and properties are not part of the repository (VNN-COMP's benchmark repositories
have them). Usage::

    python benchmarks/bench_instances.py --csv vnncomp2021/benchmarks/acasxu/acasxu_instances.csv \\
        --expected acasxu_answers.csv --out results/bench_acasxu
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
from bench_verify import _run, read_answer

from paper_repro.errors import PaperReproError


def read_instances(path: Path) -> list[dict]:
    """``[{onnx, vnnlib, timeout}]`` from an ``onnx,vnnlib,timeout`` CSV (no header; paths
    relative to the CSV's folder)."""
    rows = []
    with path.open() as f:
        for n, rec in enumerate(csv.reader(f), start=1):
            if not rec or not "".join(rec).strip():
                continue
            if len(rec) != 3:
                raise PaperReproError(f"{path}:{n}: expected onnx,vnnlib,timeout, got {rec}")
            onnx, vnnlib, timeout = (v.strip() for v in rec)
            try:
                limit = float(timeout)
            except ValueError as e:
                raise PaperReproError(f"{path}:{n}: timeout {timeout!r} is not a number") from e
            rows.append(
                {
                    "onnx": str(path.parent / onnx),
                    "vnnlib": str(path.parent / vnnlib),
                    "timeout": limit,
                }
            )
    return rows


def read_expected(path: Path | None) -> dict[tuple[str, str], str]:
    """``{(onnx, vnnlib): answer}`` from an ``onnx,vnnlib,answer`` CSV (paths relative to it)."""
    if path is None:
        return {}
    out = {}
    with path.open() as f:
        for rec in csv.reader(f):
            if len(rec) != 3:
                continue
            onnx, vnnlib, answer = (v.strip() for v in rec)
            if answer in ("sat", "unsat"):
                out[(str(path.parent / onnx), str(path.parent / vnnlib))] = answer
    return out


def judge_counterexample(stdout: str, inst: dict) -> dict:
    """A ``sat`` answer judged outside the engine: ``cex_holds`` is true when the printed ``X``
    lies in some case's box (exact rationals) and that case's output constraints hold at the
    outputs of onnxruntime (float32) at ``X`` — the property as our parser reads it, the
    network as the runtime computes it."""
    import onnxruntime as ort

    from paper_repro.vnnlib import parse_vnnlib

    xs = {int(i): Fraction(v) for i, v in re.findall(r"\(X_(\d+) ([-+0-9.eE]+)\)", stdout)}
    prop = parse_vnnlib(inst["vnnlib"])
    if sorted(xs) != list(range(prop.n_inputs)):
        return {"cex_holds": False}
    x = [xs[i] for i in range(prop.n_inputs)]
    sess = ort.InferenceSession(inst["onnx"], providers=["CPUExecutionProvider"])
    shape = [d if isinstance(d, int) else 1 for d in sess.get_inputs()[0].shape]
    feed = np.array([float(v) for v in x], dtype=np.float32).reshape(shape)
    y = np.asarray(sess.run(None, {sess.get_inputs()[0].name: feed})[0], np.float64).reshape(-1)
    for case in prop.cases:
        box = case.box
        inside = all(
            (lo < v or (lo == v and not ls)) and (v < hi or (v == hi and not hs))
            for v, lo, hi, ls, hs in zip(
                x, box.lower, box.upper, box.lower_strict, box.upper_strict, strict=True
            )
        )
        values = [
            sum(float(a) * yj for a, yj in zip(k.coeffs, y, strict=True)) for k in case.constraints
        ]
        meets = all(
            v < float(k.rhs) if k.strict else v <= float(k.rhs)
            for v, k in zip(values, case.constraints, strict=True)
        )
        if inside and meets:
            return {"cex_holds": True}
    return {"cex_holds": False}


def run_instance(inst: dict) -> dict:
    """One instance through ``paper-repro verify`` in its own process."""
    cli = Path(sys.executable).with_name("paper-repro")
    cmd = [str(cli), "verify", "--onnx", inst["onnx"], "--vnnlib", inst["vnnlib"]]
    cmd += ["--timeout", f"{inst['timeout']:g}"]
    out, err, wall, rss, code = _run(cmd, inst["timeout"] + 120)
    answer, seconds, message = read_answer(out, err, wall, code)
    row = {**inst, "answer": answer, "seconds": seconds, "wall": wall, "peak_rss_mib": rss}
    row["message"] = message
    if answer == "sat":
        row.update(judge_counterexample(out, inst))
    return row


def summary(rows: list[dict], expected: dict[tuple[str, str], str]) -> str:
    """The Markdown summary: counts, times, wrong answers, failed counterexample checks."""
    solved = [r for r in rows if r["answer"] in ("sat", "unsat")]
    times = [r["seconds"] for r in solved]
    count = {a: sum(r["answer"] == a for r in rows) for a in ("sat", "unsat", "timeout")}
    wrong = [
        r for r in solved if expected.get((r["onnx"], r["vnnlib"]), r["answer"]) != r["answer"]
    ]
    bad_cex = [r for r in rows if r["answer"] == "sat" and not r.get("cex_holds")]
    lines = [
        "| instances | sat | unsat | timeout | other | solved | median / max s (solved) "
        "| peak MiB | wrong (vs expected) | counterexamples failing the check |",
        "|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
        f"| {len(rows)} | {count['sat']} | {count['unsat']} | {count['timeout']} "
        f"| {len(rows) - sum(count.values())} | {len(solved)} | "
        + (f"{statistics.median(times):.2f} / {max(times):.2f}" if times else "–")
        + f" | {max((r['peak_rss_mib'] for r in rows), default=0):.0f} | {len(wrong)} "
        f"| {len(bad_cex)} |",
        "",
        f"Instances with a known answer: {sum((r['onnx'], r['vnnlib']) in expected for r in rows)}"
        ".",
    ]
    for r in wrong:
        lines.append(
            f"* WRONG: {r['onnx']} {r['vnnlib']}: {r['answer']}, expected "
            f"{expected[(r['onnx'], r['vnnlib'])]}"
        )
    for r in rows:
        lines.append(
            f"* {Path(r['onnx']).name} {Path(r['vnnlib']).name}: {r['answer']} "
            f"in {r['seconds']:.2f} s"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--csv", required=True, type=Path, help="VNN-COMP instances.csv")
    ap.add_argument("--expected", type=Path, help="onnx,vnnlib,answer CSV of known answers")
    ap.add_argument("--out", default="results/bench_instances", type=Path)
    args = ap.parse_args(argv)
    try:
        instances = read_instances(args.csv)
        expected = read_expected(args.expected)
    except (OSError, PaperReproError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    rows_path = args.out / "rows.jsonl"
    rows = [json.loads(x) for x in rows_path.read_text().splitlines()] if rows_path.exists() else []
    done = {(r["onnx"], r["vnnlib"]) for r in rows}
    for inst in instances:
        if (inst["onnx"], inst["vnnlib"]) in done:
            continue
        row = run_instance(inst)
        print(
            f"{Path(inst['onnx']).name} {Path(inst['vnnlib']).name}: {row['answer']} "
            f"{row['seconds']:.2f} s",
            file=sys.stderr,
        )
        with rows_path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        rows.append(row)
    text = summary(rows, expected)
    (args.out / "summary.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
