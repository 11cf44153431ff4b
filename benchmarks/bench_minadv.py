"""Benchmark of the exact engines on Carlini et al.'s protocol (Sec. 4, Table 1 instances).

For each model (default: the 24x24 vanilla and PGD networks), norm (L∞, L1), the first ``--images``
MNIST test images that the model classifies correctly, and each of the 9 other target classes, run
every backend in ``--backends`` on the same instance, one after the other, in one process:

* ``bab`` — the branch-and-bound minimising δ directly (the default engine);
* ``milp`` — the direct big-M MILP on HiGHS minimising δ;
* ``marabou`` — Carlini et al.'s binary search (precision 1e-3) around the Marabou decider
  (skipped with a note if :mod:`paper_repro.exact.marabou_backend` is unavailable).

Per-instance rows go to ``bench_minadv.jsonl`` (resumable: finished rows are not redone) and
``bench_minadv.csv``; the summary (median / max seconds, number optimal within the timeout, the
median per-instance MILP/BaB time ratio, BaB-vs-MILP disagreements) to ``bench_minadv.md``.

Usage: ``python benchmarks/bench_minadv.py --images 2 --timeout 120 --backends bab,milp``
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch

from paper_repro.data import load_test_image
from paper_repro.errors import PaperReproError
from paper_repro.exact.records import append_record, load_finished
from paper_repro.exact.search import Backend, Protocol, SolveOptions, minimal_adversarial
from paper_repro.network import load_network
from paper_repro.query import Norm, Query

DEFAULT_MODELS = ("results/models/24x24_vanilla.pt", "results/models/24x24_pgd.pt")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated .pt/.onnx")
    p.add_argument("--images", type=int, default=2, help="correctly classified test images")
    p.add_argument("--first-image", type=int, default=0, help="test index to start from")
    p.add_argument("--norms", default="linf,l1")
    p.add_argument("--backends", default="bab,milp,marabou")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per instance and backend")
    p.add_argument("--tolerance", type=float, default=1e-4)
    p.add_argument("--out", default="results/benchmarks", help="output folder")
    p.add_argument("--tag", default="bench_minadv", help="output file stem")
    return p.parse_args(argv)


def _images(network, first: int, count: int) -> list[tuple[int, np.ndarray, int]]:
    out, idx = [], first
    while len(out) < count:
        x, label = load_test_image(idx)
        if int(np.argmax(network.forward(x))) == label:
            out.append((idx, x, label))
        idx += 1
    return out


def _options(backend: Backend, args: argparse.Namespace) -> SolveOptions:
    protocol = Protocol.BINARY_SEARCH if backend == Backend.MARABOU else Protocol.EXACT
    return SolveOptions(tolerance=args.tolerance, protocol=protocol, timeout=args.timeout)


def _available(backends: list[Backend]) -> tuple[list[Backend], list[str]]:
    notes, keep = [], []
    for b in backends:
        if b == Backend.MARABOU:
            try:
                import paper_repro.exact.marabou_backend  # noqa: F401
            except ImportError as exc:
                notes.append(f"marabou skipped: {exc}")
                continue
        keep.append(b)
    return keep, notes


def run(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the process exit code."""
    torch.set_num_threads(1)
    args = _parse(argv)
    try:
        backends = [Backend(b) for b in args.backends.split(",") if b]
        norms = [Norm.parse(n) for n in args.norms.split(",") if n]
    except ValueError as exc:
        raise PaperReproError(str(exc)) from None
    backends, notes = _available(backends)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jsonl = out / f"{args.tag}.jsonl"
    done = load_finished(jsonl)
    provenance = {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "torch": torch.__version__,
        "timeout": args.timeout,
    }
    for model_path in [m for m in args.models.split(",") if m]:
        network = load_network(model_path)
        name = Path(model_path).stem
        for image, x, label in _images(network, args.first_image, args.images):
            for norm in norms:
                for target in (t for t in range(network.num_classes) if t != label):
                    query = Query(network, x, label, target, norm)
                    for backend in backends:
                        key = {
                            "model": name,
                            "norm": str(norm),
                            "image": image,
                            "target": target,
                            "engine": str(backend),
                        }
                        if tuple(key.values()) in done:
                            continue
                        res = minimal_adversarial(query, backend, _options(backend, args))
                        prov = {**provenance, "model_sha256": network.digest()}
                        append_record(jsonl, key, res, prov)
                        done[tuple(key.values())] = {
                            **key,
                            "status": str(res.status),
                            "lower": res.lower,
                            "upper": res.upper,
                            "seconds": res.seconds,
                        }
                        print(
                            f"{name} {norm} img={image} t={target} {backend}: {res.status} "
                            f"[{res.lower:.6g}, {res.upper:.6g}] {res.seconds:.2f}s",
                            flush=True,
                        )
    rows = [dict(r) for r in load_finished(jsonl).values()]
    _write_csv(out / f"{args.tag}.csv", rows)
    (out / f"{args.tag}.md").write_text(_summary(rows, args, notes))
    print((out / f"{args.tag}.md").read_text())
    return 0


CSV_FIELDS = (
    "model",
    "norm",
    "image",
    "target",
    "backend",
    "status",
    "lower",
    "upper",
    "seconds",
    "attack_distance",
    "unstable_relus",
    "nodes",
)


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in sorted(rows, key=lambda r: tuple(str(r[k]) for k in CSV_FIELDS[:5])):
            w.writerow(r)


def _summary(rows: list[dict], args: argparse.Namespace, notes: list[str]) -> str:
    lines = [
        "# Exact engines: minimal adversarial distance (Carlini et al. instances)",
        "",
        f"Command: `python benchmarks/bench_minadv.py --images {args.images} "
        f"--timeout {args.timeout:g} --backends {args.backends} --norms {args.norms}`; "
        f"tolerance {args.tolerance:g}; one process, one thread, on {platform.node()}.",
        "",
        "| model | norm | backend | instances | optimal | median s | max s | median MILP/BaB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    by = {}
    for r in rows:
        by.setdefault((r["model"], r["norm"], r["backend"]), []).append(r)
    disagreements = 0
    for (model, norm, backend), rs in sorted(by.items()):
        secs = np.array([r["seconds"] for r in rs])
        opt = sum(r["status"] == "optimal" for r in rs)
        ratio = ""
        if backend == "milp":
            bab = {(r["image"], r["target"]): r for r in by.get((model, norm, "bab"), [])}
            pairs = [
                (r, bab[(r["image"], r["target"])]) for r in rs if (r["image"], r["target"]) in bab
            ]
            if pairs:
                ratio = f"{np.median([m['seconds'] / b['seconds'] for m, b in pairs]):.1f}×"
            for m, b in pairs:
                both = m["status"] == b["status"] == "optimal"
                if both and abs(m["upper"] - b["upper"]) > 2 * args.tolerance + 1e-6:
                    disagreements += 1
        lines.append(
            f"| {model} | {norm} | {backend} | {len(rs)} | {opt} | "
            f"{np.median(secs):.2f} | {secs.max():.2f} | {ratio} |"
        )
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    lines += [
        "",
        f"BaB vs MILP disagreements on δ* (both optimal): {disagreements}.",
        "",
        f"Machine load average when the summary was written (1/5/15 min): {load} on "
        f"{os.cpu_count()} CPUs (a shared machine: timings include contention).",
        "Per-instance seconds are wall time of `minimal_adversarial` (attack included); a "
        "timed-out MILP counts with its timeout in the ratio (so the ratio is a lower bound).",
    ]
    lines += [f"Note: {n}" for n in notes]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    try:
        sys.exit(run())
    except PaperReproError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
