"""Strong attacks on the instances a ``bench_verify.py`` run left open (timeouts, unknowns).

An open instance is either ``unsat`` beyond the engine's reach or ``sat`` with a counterexample
the falsifier missed. This runs two attacks stronger than the falsifier on each, float32 torch,
one thread, on the margin ``max_{j ≠ label} y_j − y_label`` over the property's box:

* signed-gradient PGD, ``--starts`` random starts × ``--steps`` steps, linearly decaying step;
* gradient ascent with the gradient scaled to max-norm 1 and a cosine step schedule
  (``--starts`` × ``--steps``);

and prints the best margin found per instance (``> 0``: a counterexample exists, and
``paper-repro verify`` missed it). Reads ``OUT/rows.jsonl``, ``OUT/nets`` and ``OUT/props``.

Usage::

    python benchmarks/attack_timeouts.py --out results/bench_verify20
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from paper_repro.models import network_to_torch
from paper_repro.onnx_import import read_onnx_mlp
from paper_repro.vnnlib import parse_vnnlib


def best_margin(
    model: torch.nn.Module,
    lo: torch.Tensor,
    hi: torch.Tensor,
    label: int,
    starts: int,
    steps: int,
    seed: int,
) -> float:
    """Largest float32 ``max_{j≠label} y_j − y_label`` found in the box ``[lo, hi]`` (``[n]``)."""
    gen = torch.Generator().manual_seed(seed)
    best = -math.inf
    for signed in (True, False):
        x = lo + (hi - lo) * torch.rand((starts, lo.numel()), generator=gen)
        for it in range(steps):
            x.requires_grad_(True)
            y = model(x)
            other = y.clone()
            other[:, label] = -math.inf
            margin = other.amax(dim=1) - y[:, label]
            best = max(best, margin.max().item())
            (grad,) = torch.autograd.grad(margin.sum(), x)
            with torch.no_grad():
                if signed:
                    x = x + 5.0 * (hi - lo) / steps * (1 - it / steps) * grad.sign()
                else:
                    scale = grad.abs().amax(dim=1, keepdim=True).clamp_min(1e-12)
                    cosine = 0.5 * (1 + math.cos(math.pi * it / steps))
                    x = x + 0.02 * (hi - lo) * cosine * grad / scale
                x = torch.minimum(torch.maximum(x, lo), hi)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="the bench_verify.py output folder")
    ap.add_argument("--starts", type=int, default=200)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    models: dict[str, torch.nn.Module] = {}  # each network read once
    for r in rows:
        if r["tool"] != "verify" or r["answer"] in ("sat", "unsat"):
            continue
        if r["net"] not in models:
            net = read_onnx_mlp(out / "nets" / f"{r['net']}.onnx")
            models[r["net"]] = network_to_torch(net, torch.float32)
        prop = parse_vnnlib(out / "props" / r["net"] / f"img{r['image']}_eps{r['eps']}.vnnlib")
        box = prop.cases[0].box  # mnistfc: every case has the same box
        lo = torch.tensor([float(v) for v in box.lower])
        hi = torch.tensor([float(v) for v in box.upper])
        t0 = time.perf_counter()
        m = best_margin(
            models[r["net"]],
            lo,
            hi,
            r["label"],
            args.starts,
            args.steps,
            args.seed,
        )
        print(
            f"{r['net']} image {r['image']} eps {r['eps']}: {r['answer']}, "
            f"best margin {m:.4f} ({time.perf_counter() - t0:.1f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
