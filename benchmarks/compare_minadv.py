"""Compare the branch-and-bound rows of two ``bench_minadv.py`` runs (JSONL), instance by instance.

Per model and norm: instances in both runs, optimal in each, and, over the instances that both runs
finished (status ``optimal``), the total seconds and LP solves (``nodes``) of each run and their
ratio; then the instances whose status differs, and any finished pair whose δ* disagree (beyond the
tolerances). Runs on different days or machines differ in speed: compare LP solves as well as time.

Usage: ``python benchmarks/compare_minadv.py results/benchmarks/A.jsonl results/benchmarks/B.jsonl``
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

from paper_repro.errors import PaperReproError

KEY = ("model", "norm", "image", "target")


def load_bab(path: Path) -> dict[tuple, dict]:
    """The ``bab`` rows of one run, keyed by (model, norm, image, target)."""
    if not path.is_file():
        raise PaperReproError(f"no benchmark file at {path}")
    rows = {}
    for line_no, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PaperReproError(f"{path}:{line_no} is not JSON: {exc}") from None
        if row.get("backend") == "bab":
            rows[tuple(row[k] for k in KEY)] = row
    return rows


def compare(old: dict[tuple, dict], new: dict[tuple, dict], tol: float = 1e-4) -> list[str]:
    """Markdown lines: one table row per (model, norm), then the changed and disagreeing ones."""
    groups: dict[tuple, list[tuple]] = defaultdict(list)
    for key in sorted(old.keys() & new.keys()):
        groups[key[:2]].append(key)
    lines = [
        "| model / norm | pairs | optimal old → new | both finished | seconds old → new |"
        " LP solves old → new |",
        "|---|---|---|---|---|---|",
    ]
    changed, disagree = [], []
    for (model, norm), keys in groups.items():
        opt_old = sum(old[k]["status"] == "optimal" for k in keys)
        opt_new = sum(new[k]["status"] == "optimal" for k in keys)
        both = [k for k in keys if old[k]["status"] == new[k]["status"] == "optimal"]
        t_old, t_new = (sum(r[k]["seconds"] for k in both) for r in (old, new))
        n_old, n_new = (sum(r[k]["nodes"] for k in both) for r in (old, new))
        lines.append(
            f"| {model} {norm} | {len(keys)} | {opt_old} → {opt_new} | {len(both)} | "
            f"{t_old:.0f} → {t_new:.0f} ({t_new / max(t_old, 1e-9):.2f}×) | "
            f"{n_old:,} → {n_new:,} ({n_new / max(n_old, 1):.2f}×) |"
        )
        for k in keys:
            a, b = old[k], new[k]
            if a["status"] != b["status"]:
                changed.append(
                    f"- {' '.join(map(str, k))}: {a['status']} [{a['lower']:.6g}, {a['upper']:.6g}]"
                    f" {a['seconds']:.1f} s → {b['status']} [{b['lower']:.6g}, {b['upper']:.6g}]"
                    f" {b['seconds']:.1f} s"
                )
            elif a["status"] == "optimal" and abs(a["upper"] - b["upper"]) > 2 * tol:
                disagree.append(f"- {' '.join(map(str, k))}: {a['upper']} vs {b['upper']}")
    lines += ["", f"Status changed ({len(changed)}):", *changed]
    lines += ["", f"δ* disagreements beyond 2×{tol:g} ({len(disagree)}):", *disagree]
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("old", type=Path, help="earlier run's JSONL")
    p.add_argument("new", type=Path, help="later run's JSONL")
    p.add_argument("--tolerance", type=float, default=1e-4, help="the runs' optimality tolerance")
    args = p.parse_args(argv)
    try:
        old, new = load_bab(args.old), load_bab(args.new)
    except PaperReproError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not old.keys() & new.keys():
        print("error: the two runs share no branch-and-bound instance", file=sys.stderr)
        return 2
    print("\n".join(compare(old, new, args.tolerance)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
