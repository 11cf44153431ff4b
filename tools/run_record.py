"""``make repro``'s record of the run: ``results/run.json`` with the commit, the wall time of this
invocation, and the jobs' own cost summed over every Snakemake benchmark file under
``results/benchmarks/`` (job wall seconds and CPU seconds, so that a resumed or incremental run
still reports what the whole pipeline cost). Usage: ``python tools/run_record.py SECONDS``."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path.cwd()


def job_costs(folder: Path) -> dict[str, float]:
    """Sum of the ``s`` (wall) and ``cpu_time`` columns of every benchmark TSV, per rule folder
    and in total."""
    per_rule: dict[str, float] = {}
    wall = cpu = 0.0
    for tsv in sorted(folder.rglob("*.tsv")):
        lines = tsv.read_text().splitlines()
        if len(lines) < 2:
            continue
        head, last = lines[0].split("\t"), lines[-1].split("\t")
        row = dict(zip(head, last, strict=False))
        s = float(row.get("s", 0) or 0)
        c = float(row.get("cpu_time", 0) or 0)
        parts = tsv.relative_to(folder).parts
        rule = parts[0] if len(parts) > 1 else tsv.stem  # rule folders, or a rule's own file
        per_rule[rule] = per_rule.get(rule, 0.0) + s
        wall, cpu = wall + s, cpu + c
    return {"job_seconds": round(wall, 1), "job_cpu_seconds": round(cpu, 1), "per_rule": per_rule}


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python tools/run_record.py SECONDS", file=sys.stderr)
        return 2
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    record = {
        "commit": commit,
        "seconds": int(sys.argv[1]),
        "finished": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **job_costs(ROOT / "results" / "benchmarks"),
    }
    (ROOT / "results" / "run.json").write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
