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
