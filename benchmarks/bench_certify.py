"""Development benchmark of ``paper-repro certify``: the per-image numpy bisection against the
batched torch search with numpy confirmation, on the first ``--n`` genuine MNIST test images.

Both paths run :mod:`paper_repro.experiments.certify_runs` with the configured ``certify`` ε and
``radius_tol`` (``--tol`` overrides it) on one thread. The table gives wall seconds (attacks and
bounds apart), torch image-bound evaluations, numpy certificate calls and the proposals that the
certificate rejected; with ``--old``/``--new`` both, it also compares the radii (the new ones must
be ≥ the old ones − tol) and the ``certified@ε`` columns.

Usage: ``python benchmarks/bench_certify.py --model results/models/24x24_vanilla.pt --n 500``
(``--skip-old`` for the batched path only, e.g. with ``--n 10000``).
"""

from __future__ import annotations

import argparse
import os
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402


def _row(name: str, table: pd.DataFrame, seconds: float) -> dict[str, object]:
    s = table.attrs["certify_stats"]
    calls = sum(v for k, v in s.items() if k.endswith("numpy_calls"))
    fixes = sum(v for k, v in s.items() if k.endswith("corrections"))
    evals = sum(v for k, v in s.items() if k.endswith("evaluations"))
    return {
        "path": name,
        "seconds": round(seconds, 2),
        "attacks_s": round(s["attack_seconds"], 2),
        "bounds_s": round(s["bound_seconds"], 2),
        "torch_s": round(sum(v for k, v in s.items() if k.endswith("torch_seconds")), 2),
        "numpy_s": round(sum(v for k, v in s.items() if k.endswith("numpy_seconds")), 2),
        "torch_evals": evals,
        "numpy_calls": calls,
        "corrections": fixes,
        "fallbacks": s.get("dual_fallbacks", 0) + s.get("crown_fallbacks", 0),
    }


def main() -> None:
    from paper_repro.config import load_config
    from paper_repro.data import config_dir, load_test
    from paper_repro.experiments.certify_runs import (
        CertifySettings,
        certify_split,
        certify_split_per_image,
    )
    from paper_repro.network import load_network

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help=".pt or .onnx model")
    p.add_argument("--n", type=int, default=500, help="first N test images")
    p.add_argument("--tol", type=float, help="radius_tol (default: the config's)")
    p.add_argument("--skip-old", action="store_true", help="only the batched path")
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = load_config()
    c, pgd = cfg["experiments"]["certify"], cfg["evaluation"]["pgd"]
    settings = CertifySettings(
        tuple(c["eps"]), args.tol or c["radius_tol"], pgd["steps"], pgd["step_size"], cfg["seed"]
    )
    d = cfg["data"]
    split = load_test(d["test_source"], config_dir(d), download=False).head(args.n)
    net = load_network(args.model)
    print(f"{args.model}: {len(split)} images of {split.name}, {settings}")
    rows, tables = [], {}
    runs = [("new", certify_split)] + ([] if args.skip_old else [("old", certify_split_per_image)])
    for name, fn in runs:
        clock = time.perf_counter()
        tables[name] = fn(net, split, settings)
        rows.append(_row(name, tables[name], time.perf_counter() - clock))
    print(pd.DataFrame(rows).to_string(index=False))
    new = tables["new"]
    print(
        f"new: {int(new['correct'].sum())} correct, median radius dual "
        f"{new['radius_dual'].median():.4f} crown {new['radius_crown'].median():.4f}"
    )
    if "old" in tables:
        old = tables["old"]
        for col in ("radius_dual", "radius_crown"):
            diff = new[col].to_numpy() - old[col].to_numpy()
            below = int(np.sum(diff < -settings.radius_tol))
            print(
                f"{col}: new − old in [{diff.min():.2e}, {diff.max():.2e}] "
                f"(tol {settings.radius_tol:g}; below −tol: {below})"
            )
        for eps in settings.eps:
            col = f"certified@{eps:g}"
            print(f"{col}: {int((new[col] != old[col]).sum())} images differ")


if __name__ == "__main__":
    main()
