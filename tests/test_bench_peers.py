"""``bench_minadv.py --peers-from``: earlier peer rows join a summary only for the same models and
timeout."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from paper_repro.errors import PaperReproError

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    path = ROOT / "benchmarks" / "bench_minadv.py"
    spec = importlib.util.spec_from_file_location("bench_minadv", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(backend: str, digest: str = "aa", timeout: float = 120.0, target: int = 1) -> dict:
    key = {"model": "m", "norm": "linf", "image": 0, "target": target, "engine": backend}
    return {
        **key,
        "key": key,
        "backend": backend,
        "status": "optimal",
        "seconds": 3.0,
        "provenance": {"model_sha256": digest, "timeout": timeout},
    }


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_earlier_peer_rows_join_only_for_backends_not_run_now(tmp_path):
    bench = _bench()
    old = _write(tmp_path / "old.jsonl", [_row("bab"), _row("milp"), _row("marabou")])
    now = [_row("bab", target=2)]
    rows = bench._earlier_peers(old, now, [bench.Backend.BAB, bench.Backend.MILP], 120.0)
    assert [r["backend"] for r in rows] == ["marabou"]


@pytest.mark.parametrize("digest, timeout", [("bb", 120.0), ("aa", 30.0)])
def test_earlier_peer_rows_from_other_weights_or_timeout_are_refused(tmp_path, digest, timeout):
    bench = _bench()
    old = _write(tmp_path / "old.jsonl", [_row("marabou", digest=digest, timeout=timeout)])
    with pytest.raises(PaperReproError, match="other weights or another timeout"):
        bench._earlier_peers(old, [_row("bab")], [bench.Backend.BAB], 120.0)
    with pytest.raises(PaperReproError, match="does not exist"):
        bench._earlier_peers(tmp_path / "missing.jsonl", [], [], 120.0)
