"""Development benchmark of ``paper-repro verify`` on VNN-COMP-style MNIST properties.

Trains (or reuses) a 784-H×K ReLU MLP on full MNIST (vanilla, Adam, ``--epochs``), exports it to
ONNX, writes one VNN-LIB file per (test image, ε) in the VNN-COMP mnistfc form — the L∞ box
``[max(0, x − ε), min(1, x + ε)]`` and ``(or (and (>= Y_j Y_label)) …)`` over the 9 other classes —
for the first ``--images`` test images from a seeded random permutation, and runs ``verify`` on
each (in-process, ``--timeout`` seconds, 1 thread). With ``--cross-check`` it also asks the direct
big-M MILP decider (:func:`paper_repro.exact.engines.milp.milp_decider`, a different engine on the
original network: HiGHS branch-and-cut instead of our BaB, no falsifier) the same question — is
there ``x′`` in the box with some ``Y_j ≥ Y_label``, i.e. the untargeted L∞ query at radius ε —
under the same timeout, and compares the answers (and times). Rows go to ``OUT/rows.jsonl``; a
summary to stdout and ``OUT/summary.md``.

Usage: ``python benchmarks/bench_verify.py --hidden 256x256 --images 15 --eps 0.03 0.05
--timeout 120 --cross-check --out results/bench_verify``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from paper_repro.cli import one_blas_thread


def _mnist(split: str):
    from paper_repro.config import load_config, resolve_path
    from paper_repro.data import load_mnist

    return load_mnist(split, resolve_path(load_config()["data"]["dir"]), download=False)


def _train(hidden: tuple[int, ...], epochs: int, seed: int, path: Path):
    from paper_repro.models import MLP, export_onnx

    if path.is_file():
        return
    torch.manual_seed(seed)
    train = _mnist("train")
    model = MLP(hidden)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xs, ys = torch.from_numpy(train.images), torch.from_numpy(train.labels)
    for epoch in range(epochs):
        perm = torch.randperm(len(ys))
        for i in range(0, len(ys), 128):
            idx = perm[i : i + 128]
            loss = torch.nn.functional.cross_entropy(model(xs[idx]), ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {epoch + 1}/{epochs}: last loss {loss.item():.4f}", file=sys.stderr)
    export_onnx(model, path)


def _vnnlib(x: np.ndarray, label: int, eps: float) -> str:
    lines = [f"(declare-const X_{i} Real)" for i in range(x.size)]
    lines += [f"(declare-const Y_{j} Real)" for j in range(10)]
    for i, v in enumerate(x):
        lines.append(f"(assert (<= X_{i} {min(1.0, float(v) + eps)!r}))")
        lines.append(f"(assert (>= X_{i} {max(0.0, float(v) - eps)!r}))")
    cases = " ".join(f"(and (>= Y_{j} Y_{label}))" for j in range(10) if j != label)
    lines.append(f"(assert (or {cases}))")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    one_blas_thread()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hidden", default="256x256", help="hidden sizes, e.g. 256x256")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--images", type=int, default=15)
    ap.add_argument("--eps", type=float, nargs="+", default=[0.03, 0.05])
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cross-check", action="store_true", help="also ask the MILP decider")
    ap.add_argument("--out", default="results/bench_verify")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    from paper_repro.exact.decide import Verdict
    from paper_repro.exact.engines.milp import milp_decider
    from paper_repro.exact.frontends.verify import VerifyOptions, verify_property
    from paper_repro.models import parse_arch
    from paper_repro.network import load_network
    from paper_repro.query import Norm, Query
    from paper_repro.vnnlib import parse_vnnlib

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    hidden = parse_arch(args.hidden)
    onnx_path = out / f"mnist-{args.hidden}.onnx"
    _train(hidden, args.epochs, args.seed, onnx_path)
    net = load_network(onnx_path)
    test = _mnist("test")
    pred = np.argmax(net.forward(test.images.astype(np.float64)), axis=1)
    acc = float(np.mean(pred == test.labels))
    print(f"{onnx_path.name}: test accuracy {acc:.4f}")
    order = np.random.default_rng(args.seed).permutation(len(test))[: args.images]
    rows = []
    for idx in order:
        x, label = test.images[idx].astype(np.float64), int(test.labels[idx])
        for eps in args.eps:
            prop_path = out / f"prop_{idx}_{eps}.vnnlib"
            prop_path.write_text(_vnnlib(x, label, eps))
            t0 = time.monotonic()
            prop = parse_vnnlib(prop_path)
            parse_s = time.monotonic() - t0
            res = verify_property(net, prop, VerifyOptions(timeout=args.timeout, seed=args.seed))
            judged, milp_s = None, None
            if args.cross_check and pred[idx] == label:
                q = Query(net, x, label, None, Norm.LINF)
                d = milp_decider()(q, eps, args.timeout)
                judged = {Verdict.ADVERSARIAL: "sat", Verdict.ROBUST: "unsat"}.get(d.verdict)
                milp_s = d.seconds
            wrong = judged is not None and str(res.status) in ("sat", "unsat")
            wrong = wrong and str(res.status) != judged
            row = {
                "image": int(idx),
                "label": label,
                "correct": bool(pred[idx] == label),
                "eps": eps,
                "status": str(res.status),
                "found_by": res.found_by,
                "seconds": res.seconds,
                "parse_seconds": parse_s,
                "float32_slack": res.float32_slack,
                "message": res.message,
                "milp": judged,
                "milp_seconds": milp_s,
                "wrong": wrong,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
            with (out / "rows.jsonl").open("a") as f:
                f.write(json.dumps(row) + "\n")
    summary = [f"# verify on {onnx_path.name} (test accuracy {acc:.4f}), timeout {args.timeout} s"]
    for eps in args.eps:
        sub = [r for r in rows if r["eps"] == eps]
        counts = {
            s: sum(r["status"] == s for r in sub) for s in ("sat", "unsat", "timeout", "unknown")
        }
        times = [r["seconds"] for r in sub if r["status"] in ("sat", "unsat")]
        med = f"{np.median(times):.2f}" if times else "-"
        mx = f"{max(times):.2f}" if times else "-"
        wrong = sum(r["wrong"] for r in sub)
        judged = sum(r["milp"] is not None for r in sub)
        both = [
            (r["milp_seconds"], r["seconds"])
            for r in sub
            if r["milp"] is not None and r["status"] in ("sat", "unsat")
        ]
        ratio = f"{np.median([m / v for m, v in both]):.1f}×" if both else "-"
        line = f"- ε = {eps}: {counts}, solved median {med} s, max {mx} s"
        if args.cross_check:
            line += (
                f"; disagreements with the MILP {wrong} of {judged} it solved; "
                f"median MILP/verify time ratio where both solved {ratio}"
            )
        summary.append(line)
    text = "\n".join(summary) + "\n"
    (out / "summary.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
