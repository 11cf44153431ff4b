"""``bench_minadv.py --peers-from``: earlier peer rows join a summary only for the same models and
timeout."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from paper_repro.errors import PaperReproError

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    """A module from ``benchmarks/{name}.py`` (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bench():
    return _script("bench_minadv")


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


def test_compare_runs_pairs_instances_and_flags_changes(tmp_path, capsys):
    """``compare_minadv.py``: totals over the pairs both runs finished, status changes, δ*
    disagreements; bad input is one clear error."""
    cmp = _script("compare_minadv")

    def row(target, status, upper, seconds, nodes, backend="bab"):
        r = _row(backend, target=target)
        return {**r, "status": status, "lower": upper - 0.01, "upper": upper,
                "seconds": seconds, "nodes": nodes}  # fmt: skip

    old = _write(
        tmp_path / "old.jsonl",
        [row(1, "optimal", 0.2, 4.0, 100), row(2, "timeout", 0.3, 120.0, 900),
         row(3, "optimal", 0.25, 6.0, 300), row(4, "optimal", 0.1, 1.0, 10, backend="milp")],
    )  # fmt: skip
    new = _write(
        tmp_path / "new.jsonl",
        [row(1, "optimal", 0.2, 2.0, 50), row(2, "optimal", 0.29, 60.0, 500),
         row(3, "optimal", 0.26, 3.0, 150)],
    )  # fmt: skip
    assert cmp.main([str(old), str(new)]) == 0
    out = capsys.readouterr().out
    assert "| m linf | 3 | 2 → 3 | 2 | 10 → 5 (0.50×) | 400 → 200 (0.50×) |" in out
    assert "Status changed (1):" in out and "m linf 0 2: timeout" in out
    assert "disagreements beyond 2×0.0001 (1):" in out and "m linf 0 3: 0.25 vs 0.26" in out
    assert cmp.main([str(old), str(tmp_path / "missing.jsonl")]) == 2
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    assert cmp.main([str(old), str(tmp_path / "bad.jsonl")]) == 2
    assert "bad.jsonl:1 is not JSON" in capsys.readouterr().err
