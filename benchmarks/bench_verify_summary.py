"""The summary table of ``bench_verify.py`` (``OUT/summary.md``), from ``OUT/rows.jsonl``.

Per network and tool: the answers, instances solved (``sat`` + ``unsat``) within the limit,
median and max seconds of the solved ones, peak memory, answers contradicted by another tool's
definite answer (one of the two is wrong), and for the peers the median of (peer seconds /
verify seconds) over the instances both solved; then how many of ``verify``'s counterexamples
passed the independent check of ``bench_verify.check_counterexample``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

DEFINITE = ("sat", "unsat")


def _rows(out: Path) -> list[dict]:
    path = out / "rows.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
    latest = {(r["tool"], r["net"], r["image"], r["eps"]): r for r in rows}
    return list(latest.values())


def summarize(out: Path) -> str:
    """Markdown: one table row per (network, tool), then the disagreements, if any."""
    rows = _rows(out)
    nets_path = out / "nets.json"
    nets = json.loads(nets_path.read_text()) if nets_path.is_file() else {}
    by_inst: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        by_inst.setdefault((r["net"], r["image"], r["eps"]), {})[r["tool"]] = r
    conflicts = []
    for key, tools in sorted(by_inst.items()):
        answers = {t: r["answer"] for t, r in tools.items() if r["answer"] in DEFINITE}
        if len(set(answers.values())) > 1:
            conflicts.append((key, answers))
    head = (
        "| network (accuracy) | tool | instances | sat | unsat | timeout | other | solved "
        "| median / max s (solved) | peak MiB | disagreements | peer/verify time (median) |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|\n"
    )
    lines = []
    for net in sorted({r["net"] for r in rows}, key=len):
        for tool in ("verify", "milp", "marabou"):
            sub = [r for r in rows if r["net"] == net and r["tool"] == tool]
            if not sub:
                continue
            count = {a: sum(r["answer"] == a for r in sub) for a in ("sat", "unsat", "timeout")}
            other = len(sub) - sum(count.values())
            solved = [r["seconds"] for r in sub if r["answer"] in DEFINITE]
            times = f"{np.median(solved):.2f} / {max(solved):.2f}" if solved else "–"
            bad = sum(1 for (n, *_), a in conflicts if n == net and tool in a)
            ratio = "–"
            if tool != "verify":
                pairs = [
                    (r["seconds"], by_inst[(net, r["image"], r["eps"])]["verify"]["seconds"])
                    for r in sub
                    if r["answer"] in DEFINITE
                    and by_inst[(net, r["image"], r["eps"])].get("verify", {}).get("answer")
                    in DEFINITE
                ]
                if pairs:
                    ratio = f"{np.median([p / max(v, 1e-3) for p, v in pairs]):.1f}× ({len(pairs)})"
            acc = nets.get(net, {}).get("accuracy")
            name = f"{net} ({acc:.2%})" if acc is not None else net
            rss = max(r.get("peak_rss_mib", 0.0) for r in sub)
            lines.append(
                f"| {name} | {tool} | {len(sub)} | {count['sat']} | {count['unsat']} "
                f"| {count['timeout']} | {other} | {len(solved)} | {times} | {rss:.0f} | {bad} "
                f"| {ratio} |"
            )
    text = head + "\n".join(lines) + "\n"
    digests = [
        f"{net} {info['weights_sha256'][:12]}"
        for net, info in sorted(nets.items(), key=lambda kv: len(kv[0]))
        if "weights_sha256" in info
    ]
    if digests:
        cpus = sorted({info.get("trained_on", "unknown CPU") for info in nets.values()})
        text += (
            f"\nNetworks (weights sha256; trained on {', '.join(cpus)}): {'; '.join(digests)}.\n"
        )
    sats = [r for r in rows if r["tool"] == "verify" and r["answer"] == "sat"]
    judged = [r for r in sats if "cex_in_box" in r]
    good = [r for r in judged if r["cex_in_box"] and r["cex_ort_margin"] >= 0]
    if sats:
        least = min((r["cex_ort_margin"] for r in judged), default=float("nan"))
        text += (
            f"\n`verify`'s counterexamples judged independently (box from the file, onnxruntime "
            f"float32 scores): {len(good)} of {len(judged)} pass ({len(sats)} `sat` answers; "
            f"least onnxruntime margin {least:.3g}).\n"
        )
    if conflicts:
        text += "\nDisagreements (network, image, ε: answers):\n"
        text += "".join(f"- {k}: {a}\n" for k, a in conflicts)
    else:
        text += "\nNo disagreements between definite answers.\n"
    return text
