"""One case of a development-benchmark instance through the batched engine alone (`split_bab`):
nodes closed, seconds and how much of the tree is done, for comparing engine versions.

The case is "the network's label for the box centre does not beat ``--target``" on the box of
``PROPS/img<IMAGE>_eps<EPS>.vnnlib`` written by ``bench_verify.py``. The answer is the engine's
own (a candidate point is not checked exactly here; ``paper-repro verify`` does that). "Done" is
``1 − Σ 2^−depth`` over the open nodes: the share of the tree's measure already closed (depth
first, so it grows unevenly). Node counts are deterministic; seconds drift with the machine, so
compare versions alternately. ``--refine`` first refines the root bounds as ``paper-repro
verify`` does on an open box (:mod:`paper_repro.bounds.refine_layers`; with ``--progress`` the
root bound is printed). One thread unless ``--threads``. Usage::

    python benchmarks/bench_split_case.py --bench results/bench_verify \\
        --net 256x256 --image 485 --eps 0.05 --target 8 --seconds 60
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    import torch

    from paper_repro.bounds.refine_layers import RefineOptions, refine_bounds
    from paper_repro.exact.engines.split_bab import SplitBabOptions, SplitSearch, root_bounds
    from paper_repro.network import load_network
    from paper_repro.vnnlib import parse_vnnlib

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench", type=Path, default=Path("results/bench_verify"))
    ap.add_argument("--net", required=True, help="hidden sizes, e.g. 256x256")
    ap.add_argument("--image", type=int, required=True)
    ap.add_argument("--eps", required=True, help="as in the file name, e.g. 0.05")
    ap.add_argument("--target", type=int, required=True)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-second-layer", action="store_true")
    ap.add_argument("--progress", type=float, default=0.0, help="seconds between progress lines")
    ap.add_argument(
        "--refine", action="store_true", help="refine the root bounds first (as verify does)"
    )
    ap.add_argument("--refine-depth", type=int, default=RefineOptions.depth)
    ap.add_argument("--refine-rows", type=int, default=RefineOptions.per_row)
    ap.add_argument("--refine-iterations", type=int, default=RefineOptions.iterations)
    ap.add_argument("--refine-layers", type=int, default=RefineOptions.layers)
    ap.add_argument("--candidates", type=int, default=SplitBabOptions.branch_candidates)
    ap.add_argument("--iterations", type=int, default=SplitBabOptions.iterations)
    ap.add_argument("--batch", type=int, default=SplitBabOptions.batch)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    onnx = args.bench / "nets" / f"mnist-{args.net}.onnx"
    prop = args.bench / "props" / f"mnist-{args.net}" / f"img{args.image}_eps{args.eps}.vnnlib"
    for path in (onnx, prop):
        if not path.is_file():
            print(f"error: {path} not found (run bench_verify.py first)", file=sys.stderr)
            return 2
    net = load_network(onnx)
    box = parse_vnnlib(prop).cases[0].box
    lo = np.array([float(v) for v in box.lower])
    hi = np.array([float(v) for v in box.upper])
    label = int(np.argmax(net.forward(((lo + hi) / 2)[None])[0]))
    if not 0 <= args.target < net.num_classes or args.target == label:
        print(f"error: --target must be a class other than the label {label}", file=sys.stderr)
        return 2
    c = np.zeros((1, net.num_classes))
    c[0, label], c[0, args.target] = 1.0, -1.0
    options = SplitBabOptions(
        second_layer=not args.no_second_layer,
        progress=args.progress,
        branch_candidates=args.candidates,
        iterations=args.iterations,
        batch=args.batch,
    )
    clock = time.monotonic()
    pre = root_bounds(net, lo, hi, options)
    if args.refine:
        refine = RefineOptions(
            layers=args.refine_layers,
            depth=args.refine_depth,
            per_row=args.refine_rows,
            iterations=args.refine_iterations,
        )
        pre, report = refine_bounds(net, lo, hi, pre, refine)
        print(
            f"refined hidden layers {list(report.layers)}: {report.nodes} subdomains, "
            f"{report.stabilised} ReLUs stabilised, {time.monotonic() - clock:.1f} s"
        )
        clock = time.monotonic()
    search = SplitSearch(net, lo, hi, c, options, pre)
    decision = search.run(time.monotonic() + args.seconds)
    done = 1.0 if search.stack is None else search.stack.done
    print(
        f"{args.net} image {args.image} eps {args.eps} label {label} target {args.target}: "
        f"{decision.verdict.value} ({decision.message}), {search.closed} nodes closed, "
        f"{100 * done:.1f} % done, {time.monotonic() - clock:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
