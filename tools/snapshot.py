"""``make figures``: copy a finished run's figures and claims table into the committed snapshot
(``figures/``) and rewrite the README's results block from them, so that every number the README
shows comes from a run (its commit and wall time, from ``results/run.json``), not from typing.

Reads ``results/claims.csv``, ``results/run.json``, ``results/figures/*.png``,
``results/tables/accuracy.csv``; writes ``figures/*.png``, ``figures/claims.csv``,
``figures/accuracy.csv`` and the README between ``<!-- results:start -->`` and
``<!-- results:end -->``.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- results:start -->", "<!-- results:end -->"
PAPERS = {
    "carlini": "Carlini et al.",
    "pahlavan": "Pahlavan et al.",
    "dathathri": "Dathathri et al.",
    "wong_kolter": "Wong & Kolter",
}
FIGURES = (
    ("carlini_grids.png", "Carlini et al.: source × target grids, CW vs provably minimal examples"),
    ("dathathri_frequency.png", "Dathathri et al.: adversarial frequency φ(δ), exact vs attack"),
    ("wong_kolter_radius.png", "Wong & Kolter Fig. 5: certified radius of every test image"),
    ("wong_kolter_sandwich.png", "Certified radius ≤ exact δ* ≤ attack distance"),
    ("pahlavan_cosine.png", "Pahlavan et al.: cosine similarity of FGSM and certified directions"),
)


def _fmt(x: float) -> str:
    return "–" if pd.isna(x) else f"{x:.4g}"


def _cost(run: dict) -> str:
    """The run's cost: this invocation's wall time, and the jobs' summed time when recorded."""
    text = f"{run['seconds'] / 60:.0f} min of pipeline"
    if "job_seconds" in run:
        text += (
            f" in this invocation; the whole pipeline's jobs took {run['job_seconds'] / 60:.0f} "
            f"min of wall time and {run['job_cpu_seconds'] / 60:.0f} CPU-min"
        )
    return text


def results_block(claims: pd.DataFrame, accuracy: pd.DataFrame, run: dict) -> str:
    """The README's results section (markdown) from the run's tables."""
    lines = [
        START,
        f"*From `make repro` at commit `{run['commit']}`, finished {run['finished']} on this "
        f"2-core machine: {_cost(run)}. Written by `make figures`; the full table is "
        "[figures/claims.csv](figures/claims.csv).*",
        "",
        "| paper | reproduced | differs | not comparable |",
        "|---|---:|---:|---:|",
    ]
    for key, name in PAPERS.items():
        part = claims[claims["paper"] == key]["verdict"].value_counts()
        lines.append(
            f"| {name} | {part.get('reproduced', 0)} | {part.get('differs', 0)} | "
            f"{part.get('not comparable', 0)} |"
        )
    judged = claims[claims["verdict"] != "not comparable"]
    lines += [
        "",
        "Every judged claim (paper value, ours with its 95 % interval):",
        "",
        "| paper | claim | paper | ours [95 % CI] | verdict |",
        "|---|---|---:|---|---|",
    ]
    for r in judged.itertuples(index=False):
        ci = f" [{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]" if not pd.isna(r.ci_low) else ""
        lines.append(
            f"| {PAPERS.get(r.paper, r.paper)} | {r.statement} | {_fmt(r.paper_value)} | "
            f"{_fmt(r.ours)}{ci} | {r.verdict} |"
        )
    cols = [c for c in ("model", "clean_acc", "fgsm_acc", "pgd_acc") if c in accuracy.columns]
    lines += ["", "Accuracy on the test set (`results/tables/accuracy.csv`):", ""]
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "---|" * len(cols))
    for r in accuracy[cols].itertuples(index=False):
        lines.append("| " + " | ".join(str(v) if isinstance(v, str) else _fmt(v) for v in r) + " |")
    lines.append("")
    lines += [f"![{alt}](figures/{name})" for name, alt in FIGURES]
    lines.append(END)
    return "\n".join(lines)


def main() -> int:
    results = ROOT / "results"
    need = [results / "claims.csv", results / "run.json", results / "tables" / "accuracy.csv"]
    missing = [str(p.relative_to(ROOT)) for p in need if not p.is_file()]
    if missing:
        print(f"error: {', '.join(missing)} not found: run make repro first", file=sys.stderr)
        return 2
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    if START not in readme or END not in readme:
        print(f"error: README.md lacks the {START} … {END} block", file=sys.stderr)
        return 2
    figures = ROOT / "figures"
    for png in sorted((results / "figures").glob("*.png")):
        shutil.copyfile(png, figures / png.name)
    for table in need[0], need[2]:
        shutil.copyfile(table, figures / table.name)
    block = results_block(
        pd.read_csv(need[0]), pd.read_csv(need[2]), json.loads(need[1].read_text())
    )
    head, rest = readme.split(START, 1)
    tail = rest.split(END, 1)[1]
    (ROOT / "README.md").write_text(head + block + tail, encoding="utf-8")
    print(f"snapshot: {len(list(figures.glob('*.png')))} figures, claims and README block")
    return 0


if __name__ == "__main__":
    sys.exit(main())
