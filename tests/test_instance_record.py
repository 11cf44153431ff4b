"""The typed study record: InstanceInfo survives the JSONL round trip, a record parses back into
its key, result and info, and a record without the study fields is refused."""

from __future__ import annotations

import math

import numpy as np
import pytest

from paper_repro.errors import PaperReproError
from paper_repro.exact.witnesses import records
from paper_repro.experiments.instance_record import InstanceInfo, InstanceRecord
from paper_repro.experiments.minimal_runs import load_records
from paper_repro.query import MinAdvResult, Status


def _result(extra: dict) -> MinAdvResult:
    return MinAdvResult(Status.BEYOND, 2.0, math.inf, None, None, 5.0, 0.1, "bab", 3, extra=extra)


def test_round_trip_through_jsonl(tmp_path):
    info = InstanceInfo(3, 3, True, 5.0, None, 0.12, fgsm_delta=math.inf, fgsm_adv=None)
    extra = {"finished": True, "max_distance": 2.0, **info.as_extra()}
    assert "switched_relus" not in extra and extra["fgsm_adv"] is None  # L∞: not found
    path = tmp_path / "r.jsonl"
    key = {"model": "m", "norm": "linf", "image": 7, "target": None}
    records.append_record(path, key, _result(extra), {"model_sha256": "abc"})
    (rec,) = records.load_finished(path).values()
    parsed = InstanceRecord.from_json(rec)
    assert parsed.info == info and parsed.target is None and not parsed.targeted
    assert parsed.result.status == Status.BEYOND and parsed.solved
    row = load_records([path]).iloc[0]
    assert row["model_sha256"] == "abc" and row["max_distance"] == 2.0
    assert row["label"] == 3 and row["upper"] == math.inf and row["target"] is None


def test_l1_info_has_no_fgsm_fields():
    info = InstanceInfo(1, 1, True, 2.5, [0.0] * 4, 0.5, switched_relus=4)
    extra = info.as_extra()
    assert "fgsm_delta" not in extra and "fgsm_adv" not in extra
    assert InstanceInfo.from_extra(extra) == info
    assert np.allclose(extra["cw_adv"], 0.0)


def test_a_record_without_study_fields_is_refused():
    with pytest.raises(PaperReproError, match="study fields"):
        InstanceInfo.from_extra({"finished": True})


def test_provenance_reports_the_study_time_limit(tmp_path):
    from paper_repro.experiments.table_provenance import record_provenance

    info = InstanceInfo(3, 3, True, 5.0, None, 0.12)
    cfg = {"experiments": {"timeout": 30, "studies": {"carlini": {"timeout": 120}}}}
    path = tmp_path / "r.jsonl"
    key = {"model": "m", "norm": "l1", "image": 7, "target": 1}
    prov = {"model_sha256": "abc", "config": cfg, "study": "carlini"}
    records.append_record(path, key, _result({"finished": True, **info.as_extra()}), prov)
    row = record_provenance([path]).iloc[0]
    assert row["timeout_s"] == 120 and row["study"] == "carlini"
