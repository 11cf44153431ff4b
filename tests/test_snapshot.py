"""`make figures` (tools/snapshot.py): the README's results block is built from a run's tables."""

from __future__ import annotations

import importlib.util

import pandas as pd

from paper_repro.experiments.claims import claims_frame, not_comparable, qualitative, quantitative
from paper_repro.experiments.stats import Estimate


def _snapshot(repo_root):
    spec = importlib.util.spec_from_file_location("snapshot", repo_root / "tools" / "snapshot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_results_block_reports_the_run(repo_root):
    snap = _snapshot(repo_root)
    est = Estimate(0.5, 0.4, 0.6, 10, "bootstrap over images")
    claims = claims_frame(
        [
            quantitative("carlini", "a", "mean minimal distance = 0.45", 0.45, est),
            quantitative("carlini", "b", "mean CW distance = 0.9", 0.9, est),
            qualitative("wong_kolter", "c", "bound ≥ PGD error", est, True, "ok"),
            not_comparable("pahlavan", "d", "speed", 1.0, None, "their solver"),
        ]
    )
    accuracy = pd.DataFrame({"model": ["m"], "clean_acc": [0.97], "fgsm_acc": [0.1]})
    run = {"commit": "abc1234", "seconds": 1500, "finished": "2026-12-02T21:00:00Z"}
    block = snap.results_block(claims, accuracy, run)
    assert block.startswith(snap.START) and block.endswith(snap.END)
    assert "`abc1234`" in block and "25 min" in block
    assert "| Carlini et al. | 1 | 1 | 0 |" in block
    assert "| Pahlavan et al. | 0 | 0 | 1 |" in block
    assert "mean CW distance = 0.9 | 0.9 | 0.5 [0.4, 0.6] | differs |" in block
    assert "speed" not in block  # not-comparable rows stay in figures/claims.csv
    readme = (repo_root / "README.md").read_text()
    assert readme.count(snap.START) == 1 and readme.count(snap.END) == 1


def test_run_record_sums_the_job_benchmarks(tmp_path):
    import json
    import subprocess
    import sys

    from paper_repro.config import REPO_ROOT

    bench = tmp_path / "results" / "benchmarks"
    for rule, s, cpu in (("train", 10.0, 9.0), ("study", 5.5, 5.0), ("study", 4.5, 4.0)):
        folder = bench / rule
        folder.mkdir(parents=True, exist_ok=True)
        n = len(list(folder.iterdir()))
        (folder / f"{n}.tsv").write_text(f"s\th:m:s\tcpu_time\n{s}\t0:00:10\t{cpu}\n")
    tool = REPO_ROOT / "tools" / "run_record.py"
    subprocess.run([sys.executable, str(tool), "42"], cwd=tmp_path, check=True)
    run = json.loads((tmp_path / "results" / "run.json").read_text())
    assert run["seconds"] == 42 and run["job_seconds"] == 20.0 and run["job_cpu_seconds"] == 18.0
    assert run["per_rule"] == {"train": 10.0, "study": 10.0}
