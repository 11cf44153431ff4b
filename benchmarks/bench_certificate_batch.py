"""Development benchmark of the batched outward-rounded certificate
(:func:`paper_repro.bounds.radius.margin_lower_bounds_batch`) against the per-image
:func:`~paper_repro.bounds.radius.margin_lower_bounds`: milliseconds per image for each batch
size, and the largest difference between the two (0 when the batched arithmetic is the same).

The boxes are the first ``--n`` genuine MNIST test images with their labels and a seeded radius
in ``[0, 0.05)``, one thread. Usage:
``python benchmarks/bench_certificate_batch.py --model results/models/60x30_vanilla.pt``.
"""

from __future__ import annotations

import argparse
import os
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402


def main() -> None:
    from paper_repro.bounds import radius
    from paper_repro.bounds.radius import BoundMethod, RadiusOptions
    from paper_repro.config import load_config
    from paper_repro.data import load_test
    from paper_repro.models import load_model

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a trained model (.pt)")
    ap.add_argument("--n", type=int, default=256, help="test images")
    ap.add_argument("--batches", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    args = ap.parse_args()
    net = load_model(args.model)[0].to_network()
    split = load_test(load_config()["data"]["test_source"], None)
    xs, labels = split.images[: args.n].astype(np.float64), split.labels[: args.n]
    eps = np.random.default_rng(0).random(args.n) * 0.05
    print("| bound | one by one | " + " | ".join(str(b) for b in args.batches) + " | max diff |")
    print("|---|---:|" + "---:|" * len(args.batches) + "---:|")
    default = radius.BATCH
    for method in (BoundMethod.DUAL, BoundMethod.CROWN):
        opts = RadiusOptions(method)
        clock = time.perf_counter()
        rows = zip(xs, labels, eps, strict=True)
        ref = np.array([radius.margin_lower_bounds(net, x, int(y), e, opts) for x, y, e in rows])
        cells = [f"{(time.perf_counter() - clock) / args.n * 1e3:.2f} ms"]
        diff = 0.0
        for b in args.batches:
            radius.BATCH = b
            clock = time.perf_counter()
            got = radius.margin_lower_bounds_batch(net, xs, labels, eps, opts)
            cells.append(f"{(time.perf_counter() - clock) / args.n * 1e3:.2f}")
            diff = max(diff, float(np.abs(got - ref).max()))
        radius.BATCH = default
        print(f"| {method} | " + " | ".join(cells) + f" | {diff:.1e} |")


if __name__ == "__main__":
    main()
