"""Benchmark: wall time to train every model of the default profile on this machine.

Runs the pipeline's ``train`` jobs (``snakemake --cores N``) in a scratch directory, so
``results/`` is untouched, then reads each job's Snakemake ``benchmark:`` file.
Target (issue 15): all models (archs × methods + models.extra) on the full 60,000 MNIST training
digits in ≤ 15 min wall on 2 cores.

    .venv/bin/python benchmarks/bench_training.py --cores 2

Writes ``results/benchmarks/training.md`` (a markdown table) and prints it.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "results" / "benchmarks" / "training.md"))
    args = parser.parse_args()
    bindir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        from paper_repro.config import load_config

        cfg = load_config()
        names = [f"{a}_{m}" for a in cfg["models"]["archs"] for m in cfg["models"]["methods"]]
        names += [m for m in cfg["models"]["extra"] if m not in names]
        targets = [f"results/models/{name}.pt" for name in names]
        start = time.perf_counter()
        res = subprocess.run(
            [
                str(bindir / "snakemake"),
                "--snakefile",
                str(REPO / "Snakefile"),
                "--directory",
                tmp,
                "--cores",
                str(args.cores),
                *targets,
            ],
            capture_output=True,
            text=True,
            check=False,
            env={"PATH": f"{bindir}:/usr/bin:/bin"},
        )
        wall = time.perf_counter() - start
        if res.returncode != 0:
            print(res.stderr[-3000:], file=sys.stderr)
            return 1
        from paper_repro.models import load_model

        rows = []
        for tsv in sorted((Path(tmp) / "results" / "benchmarks" / "train").glob("*.tsv")):
            with open(tsv) as fh:
                rec = next(csv.DictReader(fh, delimiter="\t"))
            _, meta = load_model(Path(tmp) / "results" / "models" / f"{tsv.stem}.pt")
            cpu = float(meta.get("train_cpu_seconds", float("nan")))
            rows.append((tsv.stem, float(rec["s"]), cpu, float(rec["max_rss"])))
    lines = [
        f"Training wall time, default profile, `--cores {args.cores}`: **{wall:.0f} s** "
        f"for {len(rows)} models (target ≤ 900 s); sum of job times "
        f"{sum(r[1] for r in rows):.0f} s.",
        "",
        "| model | job seconds | training-loop CPU seconds | max RSS (MB) |",
        "|---|---:|---:|---:|",
        *[f"| {name} | {sec:.1f} | {cpu:.1f} | {rss:.0f} |" for name, sec, cpu, rss in rows],
    ]
    text = "\n".join(lines)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
