"""JSONL records: round trip, resume after a truncated write, error records retried."""

from __future__ import annotations

import math

import numpy as np
import pytest

from paper_repro.errors import PaperReproError
from paper_repro.exact.witnesses.records import append_record, load_finished, record_to_result
from paper_repro.query import MinAdvResult, Status


def _result(status=Status.OPTIMAL, upper=0.25, witness=True) -> MinAdvResult:
    return MinAdvResult(
        status=status,
        lower=0.2499,
        upper=upper,
        witness=np.linspace(0, 1, 5) if witness else None,
        witness_class=3 if witness else None,
        attack_distance=0.3,
        seconds=1.5,
        backend="bab",
        unstable_relus=7,
        margin_exact=0.0,
        margin_float32=-1e-7,
        nodes=12,
        extra={"finished": True},
    )


def test_round_trip_and_resume_after_truncated_line(tmp_path):
    path = tmp_path / "sub" / "runs.jsonl"
    append_record(path, {"model": "N", "norm": "linf", "image": 0, "target": 3}, _result(), {})
    append_record(
        path,
        {"model": "N", "norm": "linf", "image": 0, "target": 4},
        _result(upper=math.inf, witness=False),
        {"sha": "abc"},
    )
    with open(path, "a") as fh:  # a run killed in the middle of a write
        fh.write('{"model": "N", "norm": "linf", "image": 0, "tar')
    done = load_finished(path)
    assert set(done) == {("N", "linf", 0, 3), ("N", "linf", 0, 4)}
    rec = done[("N", "linf", 0, 3)]
    assert rec["witness"] == pytest.approx(list(np.linspace(0, 1, 5)))
    back = record_to_result(rec)
    assert back.status == Status.OPTIMAL and back.upper == 0.25 and back.nodes == 12
    assert np.array_equal(back.witness, np.linspace(0, 1, 5))
    inf_rec = record_to_result(done[("N", "linf", 0, 4)])
    assert math.isinf(inf_rec.upper) and inf_rec.witness is None
    assert done[("N", "linf", 0, 4)]["provenance"] == {"sha": "abc"}
    # appending after the truncated line still yields a readable file
    append_record(path, {"model": "N", "norm": "linf", "image": 1, "target": 0}, _result(), {})
    assert ("N", "linf", 1, 0) in load_finished(path)


def test_error_records_are_retried_and_later_lines_win(tmp_path):
    path = tmp_path / "r.jsonl"
    key = {"model": "N", "image": 2}
    append_record(path, key, _result(status=Status.ERROR), {})
    assert load_finished(path) == {}
    append_record(path, key, _result(upper=0.5), {})
    append_record(path, key, _result(upper=0.4), {})
    assert load_finished(path)[("N", 2)]["upper"] == 0.4
    assert load_finished(tmp_path / "missing.jsonl") == {}


def test_bad_keys_raise():
    with pytest.raises(PaperReproError):
        append_record("unused.jsonl", {}, _result(), {})
    with pytest.raises(PaperReproError, match="collide"):
        append_record("unused.jsonl", {"status": 1}, _result(), {})
