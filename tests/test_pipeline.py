"""The Snakemake pipeline: a tiny-config end-to-end run; an invalid config stops before any job."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def snakemake(repo_root: Path, workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env_path = f"{Path(sys.executable).parent}:/usr/bin:/bin"
    return subprocess.run(
        [
            str(SNAKEMAKE),
            "--snakefile",
            str(repo_root / "Snakefile"),
            "--directory",
            str(workdir),
            "--cores",
            "2",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={"PATH": env_path},
    )


TINY = {
    "data": {"train_source": "mnist5k", "test_source": "mnist5k", "mnist5k_holdout": 100},
    "models": {
        "archs": ["6"],
        "methods": ["vanilla", "pgd", "alp", "wk"],
        "extra": ["4x3_vanilla"],
    },
    "training": {
        "vanilla": {"epochs": 2},
        "pgd": {"epochs": 1, "ramp_epochs": 1, "steps": 2},
        "alp": {
            "stages": [{"eps": 0.3, "epochs": 1, "ramp_epochs": 1}, {"eps": 0.1, "epochs": 1}],
            "steps": 2,
        },
        "wk": {"epochs": 2, "ramp_epochs": 1, "batch_size": 128},
    },
    "evaluation": {"n_test": 50, "pgd": {"steps": 3}},
    "experiments": {
        "studies": {
            "carlini": {"models": ["6_vanilla", "6_pgd"], "norms": ["linf", "l1"], "images": 1},
            "carlini_extended": None,  # null drops a study of the default config
            "pahlavan": {"models": ["6_vanilla", "6_alp"], "images": 1},
            "dathathri": {
                "models": ["4x3_vanilla"],
                "norms": ["l1"],
                "images": 3,
                "untargeted": True,
                "max_distance": 2.0,
                "shards": 2,
            },
            "dathathri_targeted": {
                "models": ["4x3_vanilla"],
                "norms": ["l1"],
                "images": 1,
                "max_distance": 2.0,
            },
            "sandwich": {"models": ["6_vanilla", "6_wk"], "images": 2, "untargeted": True},
        },
        "timeout": 30,
        "smt": {"solve_records": 2, "timeout": 5},
        "cw_linf": {"steps": 20},
        "cw_l1": {"steps": 30, "binary_search_steps": 3},
        "closest_fgsm": {"steps": 5, "search_steps": 4},
        "certify": {"n_test": 5, "radius_tol": 0.01},
    },
}


def test_tiny_end_to_end(tmp_path, repo_root):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    res = snakemake(repo_root, tmp_path, "--configfile", str(cfg))
    assert res.returncode == 0, res.stderr[-3000:]
    with open(tmp_path / "results/tables/accuracy.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["model"] for r in rows] == ["4x3_vanilla", "6_alp", "6_pgd", "6_vanilla", "6_wk"]
    for r in rows:
        assert r["test_source"] == "mnist5k:holdout" and r["n_test"] == "50"
        assert r["clean_acc"] == r["onnx_clean_acc"]  # ONNX export classifies identically
        assert 0.0 <= float(r["fgsm_acc"]) <= 1.0
        # the dual bound proves nothing the attacks refute: bound error ≥ PGD error
        assert float(r["bound_err"]) >= 1.0 - float(r["pgd_acc"]) - 1e-9
    instances = sorted((tmp_path / "results/instances/carlini").rglob("*.jsonl"))
    assert len(instances) == 4  # 2 models x 2 norms x 1 shard of 1 image
    for path in instances:
        recs = [json.loads(line) for line in path.read_text().splitlines()]
        assert len(recs) == 9 and {r["target"] for r in recs} == set(range(10)) - {
            recs[0]["extra"]["label"]
        }
        assert recs[0]["extra"]["correct"]  # studies attack correctly classified images
    # untargeted and capped: one record per image, images dealt over the 2 shards
    shards = sorted((tmp_path / "results/instances/dathathri").rglob("*.jsonl"))
    assert [p.name for p in shards] == ["0.jsonl", "1.jsonl"]
    recs = [json.loads(line) for p in shards for line in p.read_text().splitlines()]
    assert len(recs) == 3 and len({r["image"] for r in recs}) == 3
    assert all(r["target"] is None for r in recs)
    for r in recs:
        assert r["status"] in ("optimal", "beyond", "timeout"), r["message"]
        assert r["status"] != "beyond" or (r["lower"] >= 2.0 and r["upper"] > 2.0)
    for path in (tmp_path / "results/instances").rglob("*.jsonl"):
        for line in path.read_text().splitlines():
            r = json.loads(line)
            assert r["lower"] <= r["upper"] + 1e-12
            assert r["witness"] is None or r["margin_exact"] >= 0
    certified = (tmp_path / "results/certify/6_pgd.csv").read_text().splitlines()
    assert len(certified) == 1 + 5
    meta = json.loads((tmp_path / "results/eval/6_pgd.json").read_text())
    assert meta["provenance"]["config"]["models"]["archs"] == ["6"]
    for kind in ("logs/train", "benchmarks/train"):
        assert len(list((tmp_path / "results" / kind).iterdir())) == 5
    with open(tmp_path / "results/claims.csv") as fh:
        claims = list(csv.DictReader(fh))
    assert {r["paper"] for r in claims} == {"carlini", "pahlavan", "wong_kolter", "dathathri"}
    assert {r["verdict"] for r in claims} <= {"reproduced", "differs", "not comparable"}
    assert (tmp_path / "results/figures/carlini_examples.png").is_file()
    # Nothing left to do: a rerun schedules no job, also from a moved copy of the work folder
    # (rule params hold no absolute path).
    again = snakemake(repo_root, tmp_path, "--configfile", str(cfg), "-n")
    assert "Nothing to be done" in again.stdout + again.stderr
    moved = tmp_path.parent / f"{tmp_path.name}-moved"
    shutil.copytree(tmp_path, moved, symlinks=True)
    cfg_moved = moved / "tiny.yaml"
    again = snakemake(repo_root, moved, "--configfile", str(cfg_moved), "-n")
    assert "Nothing to be done" in again.stdout + again.stderr, again.stdout[-2000:]


def test_invalid_config_stops_before_any_job(tmp_path, repo_root):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump({"training": {"pgd": {"eps": -1}}}))
    res = snakemake(repo_root, tmp_path, "--configfile", str(cfg))
    assert res.returncode != 0
    assert "-1 is less than the minimum of 0" in res.stdout + res.stderr
    assert not (tmp_path / "results").exists()


def test_slurm_profile_dry_run_of_the_paper_profile(tmp_path, repo_root):
    res = snakemake(
        repo_root,
        tmp_path,
        "--profile",
        str(repo_root / "profiles" / "slurm"),
        "--configfile",
        str(repo_root / "config" / "paper.yaml"),
        "-n",
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "rule train:" in out or "localrule train:" in out
    assert not (tmp_path / "results").exists()
