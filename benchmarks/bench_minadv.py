"""Benchmark of the exact engines on Carlini et al.'s protocol (Sec. 4, Table 1 instances).

For each model (default: the 24x24 vanilla and PGD networks), norm (L∞, L1), the first ``--images``
MNIST test images that the model classifies correctly, and each of the 9 other target classes, run
every backend in ``--backends`` on the same instance, one after the other, in one process:

* ``bab`` — the branch-and-bound minimising δ directly (the default engine);
* ``milp`` — the direct big-M MILP on HiGHS minimising δ;
* ``marabou`` — Carlini et al.'s binary search (precision 1e-3) around the Marabou decider
  (skipped with a note if maraboupy is not installed).

Per-instance rows go to ``bench_minadv.jsonl`` (resumable: finished rows are not redone) and
``bench_minadv.csv``; the summary (median / max seconds, number optimal within the timeout, the
median per-instance MILP/BaB time ratio, BaB-vs-MILP disagreements) to ``bench_minadv.md``.

``--jobs 2`` runs instances in two worker processes (one thread each); ``--peer-images K`` and
``--marabou-images K`` restrict the MILP and Marabou runs to the first ``K`` images of each model
(the BaB still runs on all), because on two cores the peers need hours per image.

Usage: ``python benchmarks/bench_minadv.py --images 2 --timeout 120 --backends bab,milp``
"""

from __future__ import annotations

import argparse
import csv
import functools
import multiprocessing
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch

from paper_repro.cli import one_blas_thread
from paper_repro.data import load_test_image
from paper_repro.errors import PaperReproError
from paper_repro.exact.backends import backend_spec
from paper_repro.exact.search import Backend, Protocol, SolveOptions, minimal_adversarial
from paper_repro.exact.witnesses.records import append_record, load_finished
from paper_repro.network import ReluNetwork, load_network
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
    p.add_argument("--jobs", type=int, default=1, help="worker processes (one thread each)")
    p.add_argument("--peer-images", type=int, default=None, help="MILP on the first K images")
    p.add_argument("--marabou-images", type=int, default=None, help="Marabou on the first K")
    p.add_argument(
        "--peers-from",
        default=None,
        help="JSONL of an earlier run: its MILP/Marabou rows (same models and timeout) join the "
        "summary for backends not run now",
    )
    args = p.parse_args(argv)
    for name in ("jobs", "peer_images", "marabou_images"):
        value = getattr(args, name)
        if value is not None and value < (1 if name == "jobs" else 0):
            flag = "--" + name.replace("_", "-")
            raise PaperReproError(f"{flag} must be ≥ 1 (jobs) or ≥ 0 (images), got {value}")
    return args


def _images(network, first: int, count: int) -> list[tuple[int, np.ndarray, int]]:
    out, idx = [], first
    while len(out) < count:
        x, label = load_test_image(idx)
        if int(np.argmax(network.forward(x))) == label:
            out.append((idx, x, label))
        idx += 1
    return out


def _options(backend: Backend, args: argparse.Namespace) -> SolveOptions:
    """A backend that minimises runs the exact protocol; a decide-only one (marabou) Carlini et
    al.'s binary search (the registry, :mod:`paper_repro.exact.backends`, says which)."""
    minimises = backend_spec(backend).minimises
    protocol = Protocol.EXACT if minimises else Protocol.BINARY_SEARCH
    return SolveOptions(tolerance=args.tolerance, protocol=protocol, timeout=args.timeout)


def _available(backends: list[Backend]) -> tuple[list[Backend], list[str]]:
    """The backends whose packages are installed, and a note for each one skipped."""
    notes, keep = [], []
    for b in backends:
        missing = backend_spec(b).missing()
        if missing:
            notes.append(f"{b} skipped: the package {missing[0].module} is not installed")
            continue
        keep.append(b)
    return keep, notes


def _tasks(args: argparse.Namespace, backends: list[Backend], norms: list[Norm], done: dict):
    """Instances still to run, image-major so that a partial run covers every model and norm."""
    limits = {Backend.MILP: args.peer_images, Backend.MARABOU: args.marabou_images}
    per_model = []
    for model_path in [m for m in args.models.split(",") if m]:
        network, _ = _network(model_path)
        per_model.append((model_path, network, _images(network, args.first_image, args.images)))
    tasks = []
    for rank in range(args.images):
        for model_path, network, images in per_model:
            image, x, label = images[rank]
            for norm in norms:
                for target in (t for t in range(network.num_classes) if t != label):
                    for backend in backends:
                        limit = limits.get(backend)
                        if limit is not None and rank >= limit:
                            continue
                        key = {
                            "model": Path(model_path).stem,
                            "norm": str(norm),
                            "image": image,
                            "target": target,
                            "engine": str(backend),
                        }
                        if tuple(key.values()) not in done:
                            tasks.append((model_path, x, label, target, norm, backend, key))
    return tasks


@functools.cache
def _network(model_path: str) -> tuple[ReluNetwork, str]:
    """The model and its weights digest, loaded once per process."""
    network = load_network(model_path)
    return network, network.digest()


def _solve(task: tuple, args: argparse.Namespace):
    """One instance in a worker: returns ``(key, result, model digest)``."""
    torch.set_num_threads(1)
    model_path, x, label, target, norm, backend, key = task
    network, digest = _network(model_path)
    query = Query(network, x, label, target, norm)
    res = minimal_adversarial(query, backend, _options(backend, args))
    return key, res, digest


def _solve_star(packed: tuple):
    return _solve(*packed)


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
        "jobs": args.jobs,
    }
    tasks = _tasks(args, backends, norms, done)
    print(f"{len(tasks)} instances to run ({len(done)} already in {jsonl})", flush=True)
    if args.jobs == 1:
        results = (_solve(t, args) for t in tasks)
        pool = None
    else:
        # one BLAS thread per worker unless the user says otherwise (spawned workers read it
        # when numpy loads): with OpenBLAS's default of one thread per core, two workers ran the
        # median-band L∞ instances 2.5× slower (measured: 43 s against 16 s for 18 instances)
        one_blas_thread()
        pool = multiprocessing.get_context("spawn").Pool(args.jobs)
        results = pool.imap_unordered(_solve_star, [(t, args) for t in tasks])
    try:
        for i, (key, res, digest) in enumerate(results, 1):
            append_record(jsonl, key, res, {**provenance, "model_sha256": digest})
            print(
                f"[{i}/{len(tasks)}] {key['model']} {key['norm']} img={key['image']} "
                f"t={key['target']} {key['engine']}: {res.status} "
                f"[{res.lower:.6g}, {res.upper:.6g}] {res.seconds:.2f}s",
                flush=True,
            )
    finally:
        if pool is not None:
            pool.terminate()
    rows = [dict(r) for r in load_finished(jsonl).values()]
    if args.peers_from:
        earlier = _earlier_peers(Path(args.peers_from), rows, backends, args.timeout)
        rows += earlier
        runs = sorted({r["backend"] for r in earlier})
        notes.append(
            f"{', '.join(runs)} rows ({len(earlier)}) come from the earlier run "
            f"{args.peers_from} on the same instances, models (sha256) and timeout, not from "
            "this run."
        )
    _write_csv(out / f"{args.tag}.csv", rows)
    (out / f"{args.tag}.md").write_text(_summary(rows, args, notes))
    print((out / f"{args.tag}.md").read_text())
    return 0


def _earlier_peers(path: Path, rows: list[dict], backends: list[Backend], timeout: float):
    """Peer rows of an earlier run for backends not run now; refuses other models or timeouts."""
    if not path.exists():
        raise PaperReproError(f"--peers-from: {path} does not exist")
    digests = {r["model"]: r["provenance"]["model_sha256"] for r in rows}
    running = {str(b) for b in backends}
    out = []
    for r in load_finished(path).values():
        if r["backend"] == "bab" or r["backend"] in running or r["model"] not in digests:
            continue
        same = r["provenance"].get("model_sha256") == digests[r["model"]]
        if not same or r["provenance"].get("timeout") != timeout:
            raise PaperReproError(
                f"--peers-from: {path} ran {r['model']} with other weights or another timeout"
            )
        out.append(dict(r))
    return out


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


def _ratio(pairs: list[tuple[dict, dict]]) -> str:
    """Median per-instance (peer seconds / BaB seconds) over ``(peer, bab)`` row pairs; ``≥`` when
    the peer timed out on more than half of them (its time is then a lower bound)."""
    if not pairs:
        return ""
    ratio = float(np.median([p["seconds"] / b["seconds"] for p, b in pairs]))
    capped = sum(p["status"] != "optimal" for p, _ in pairs) > len(pairs) / 2
    return f"{'≥ ' if capped else ''}{ratio:.1f}× ({len(pairs)})"


def _summary(rows: list[dict], args: argparse.Namespace, notes: list[str]) -> str:
    command = " ".join(["python", "benchmarks/bench_minadv.py", *sys.argv[1:]])
    lines = [
        "# Exact engines: minimal adversarial distance (Carlini et al. instances)",
        "",
        f"Command: `{command}`; tolerance {args.tolerance:g}; {args.jobs} worker process(es), one "
        f"thread each, on {platform.node()} ({os.cpu_count()} CPUs).",
        "",
        "| model | norm | backend | instances | optimal ≤ timeout | median s | max s "
        "| median peer/BaB (pairs) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    by: dict[tuple, list[dict]] = {}
    for r in rows:
        by.setdefault((r["model"], r["norm"], r["backend"]), []).append(r)
        by.setdefault(("both", r["norm"], r["backend"]), []).append(r)
    disagreements = 0
    for (model, norm, backend), rs in sorted(by.items()):
        secs = np.array([r["seconds"] for r in rs])
        opt = sum(r["status"] == "optimal" for r in rs)
        ratio = ""
        if backend != "bab":
            bab = {(r["image"], r["target"]): r for r in by.get((model, norm, "bab"), [])}
            if model != "both":
                keys = [(m["image"], m["target"]) for m in rs]
                pairs = [(m, bab[k]) for m, k in zip(rs, keys, strict=True) if k in bab]
                ratio = _ratio(pairs)
                for m, b in pairs:
                    both = m["status"] == b["status"] == "optimal"
                    tol = 2 * max(args.tolerance, _stop_width(m)) + 1e-6
                    if both and abs(m["upper"] - b["upper"]) > tol:
                        disagreements += 1
        lines.append(
            f"| {model} | {norm} | {backend} | {len(rs)} | {opt} | "
            f"{np.median(secs):.2f} | {secs.max():.2f} | {ratio} |"
        )
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    lines += [
        "",
        f"Disagreements on δ* between BaB and a peer (both optimal): {disagreements}.",
        "",
        f"Machine load average when the summary was written (1/5/15 min): {load}.",
        "Per-instance seconds are wall time of `minimal_adversarial` (attack included). A peer "
        "that timed out counts with its timeout in the ratio, so a ratio marked ≥ is a lower "
        "bound. Marabou runs Carlini et al.'s binary search (precision 1e-3), so its "
        "'optimal' means a bracket of width ≤ 1e-3.",
    ]
    lines += [f"Note: {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _stop_width(row: dict) -> float:
    """The bracket width a row's backend stops at (Marabou: the binary search's 1e-3)."""
    return 1e-3 if row["backend"] == "marabou" else 0.0


if __name__ == "__main__":
    try:
        sys.exit(run())
    except PaperReproError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
