"""Per-image experiment jobs: every target answered soundly, and an interrupted job resumes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from paper_repro.experiments import minimal_runs
from paper_repro.experiments.minimal_runs import RunSettings, finish, load_records, run_image
from paper_repro.query import Norm


@pytest.fixture
def count_solves(monkeypatch) -> list[int]:
    """The targets the exact engine is asked to solve from now on (it still solves them)."""
    calls: list[int] = []
    real = minimal_runs.minimal_adversarial

    def counting(query, *args, **kwargs):
        calls.append(query.target)
        return real(query, *args, **kwargs)

    monkeypatch.setattr(minimal_runs, "minimal_adversarial", counting)
    return calls


@pytest.mark.parametrize("norm", [Norm.LINF, Norm.L1])
def test_every_target_is_bracketed_soundly(tiny, tmp_path, norm):
    net, x, label, cfg = tiny
    recs = run_image(
        net,
        "tiny",
        x,
        label,
        0,
        norm,
        RunSettings.from_config(cfg),
        tmp_path / "ck.jsonl",
        {"model_sha256": "x"},
    )
    assert sorted(r["target"] for r in recs) == sorted(set(range(10)) - {label})
    for r in recs:
        assert r["status"] == "optimal"
        if r["witness"] is None:  # the target is unreachable anywhere in [0,1]^784
            assert r["lower"] == r["upper"] == np.inf and r["extra"]["cw_distance"] == np.inf
            continue
        assert 0.0 <= r["lower"] <= r["upper"] <= r["lower"] + 1e-4
        assert r["margin_exact"] >= 0.0 and r["witness_class"] == r["target"]
        w = np.asarray(r["witness"])
        dist = np.abs(w - x).max() if norm is Norm.LINF else np.abs(w - x).sum()
        assert dist == pytest.approx(r["upper"], abs=1e-9)
        # The CW start is an adversarial example, so it can never beat the proven lower bound.
        assert r["extra"]["cw_distance"] >= r["lower"] - 1e-9
        if norm is Norm.LINF:
            assert r["extra"]["fgsm_delta"] >= r["lower"] - 1e-9
    finish(recs, tmp_path / "out.jsonl")
    df = load_records([tmp_path / "out.jsonl"])
    assert len(df) == 9 and {"cw_distance", "correct", "label"} <= set(df.columns)


def test_interrupted_job_redoes_only_unfinished_targets(tiny, tmp_path, count_solves):
    net, x, label, cfg = tiny
    settings = RunSettings.from_config(cfg)
    ck = tmp_path / "ck.jsonl"
    run_image(net, "tiny", x, label, 0, Norm.LINF, settings, ck, {})
    lines = ck.read_text().splitlines()
    # Simulate a kill: two targets lost, the last line half-written.
    ck.write_text("\n".join(lines[:7]) + "\n" + lines[7][:50])
    calls = count_solves
    calls.clear()  # count only the solves of the rerun
    recs = run_image(net, "tiny", x, label, 0, Norm.LINF, settings, ck, {})
    assert sorted(calls) == sorted(json.loads(ln)["target"] for ln in lines[7:])
    assert len(recs) == 9


def test_checkpoint_from_other_settings_is_not_reused(tiny, tmp_path, count_solves):
    net, x, label, cfg = tiny
    ck = tmp_path / "ck.jsonl"
    run_image(net, "tiny", x, label, 0, Norm.LINF, RunSettings.from_config(cfg), ck, {})
    cfg2 = {**cfg, "experiments": {**cfg["experiments"], "tolerance": 1e-3}}
    calls = count_solves
    calls.clear()  # count only the solves of the rerun
    recs = run_image(net, "tiny", x, label, 0, Norm.LINF, RunSettings.from_config(cfg2), ck, {})
    assert len(calls) == 9 and len(recs) == 9
    assert len(ck.read_text().splitlines()) == 18  # the checkpoint keeps both runs' lines
    finish(recs, tmp_path / "out.jsonl")  # the output holds one record per target
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert len(lines) == 9 and sorted(json.loads(ln)["key"]["target"] for ln in lines) == sorted(
        r["key"]["target"] for r in recs
    )
