"""Per-instance results as JSON lines, appended as they finish so that a run can resume.

Each line is one JSON object: the key fields (e.g. ``model``, ``norm``, ``image``, ``target``) at
the top level and again under ``"key"`` (their order defines the key tuple), the result fields of
:class:`~paper_repro.query.MinAdvResult` (``witness`` as a list of floats or ``null``; infinite
distances as JSON ``Infinity``), and ``"provenance"`` (model hash, versions, options, …).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from paper_repro.errors import PaperReproError
from paper_repro.query import MinAdvResult, Status

RESULT_FIELDS = (
    "status",
    "lower",
    "upper",
    "witness",
    "witness_class",
    "attack_distance",
    "seconds",
    "backend",
    "unstable_relus",
    "margin_exact",
    "margin_float32",
    "nodes",
    "message",
    "extra",
)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [float(v) for v in value.ravel()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def result_to_dict(result: MinAdvResult) -> dict[str, Any]:
    """The result's fields as JSON-ready values (``status`` as its string)."""
    out = {name: _jsonable(getattr(result, name)) for name in RESULT_FIELDS}
    out["status"] = str(result.status)
    return out


def append_record(
    path: str | Path, key: dict[str, Any], result: MinAdvResult, provenance: dict[str, Any]
) -> None:
    """Append one instance's record to the JSONL file ``path`` (created with its folder).

    The line is written with a single ``write`` call, flushed and fsynced, so an interruption
    leaves at most one truncated last line (which :func:`load_finished` ignores; the next append
    starts on a fresh line).

    Raises:
        PaperReproError: ``key`` is empty or collides with a result field name.
    """
    if not key:
        raise PaperReproError("a record needs a non-empty key (e.g. model, norm, image, target)")
    clash = sorted(set(key) & {*RESULT_FIELDS, "key", "provenance"})
    if clash:
        raise PaperReproError(f"record key fields {clash} collide with result fields")
    record = {**_jsonable(key), "key": _jsonable(key), **result_to_dict(result)}
    record["provenance"] = _jsonable(provenance)
    line = json.dumps(record, allow_nan=True) + "\n"
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.exists() and p.stat().st_size > 0:
        with open(p, "rb") as fh:  # a killed writer may have left a line without its newline
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                line = "\n" + line
    with open(p, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def key_tuple(key: dict[str, Any]) -> tuple:
    """The tuple identifying an instance: the key's values in its field order."""
    return tuple(_jsonable(v) for v in key.values())


def load_finished(path: str | Path) -> dict[tuple, dict[str, Any]]:
    """Records already in ``path``, by :func:`key_tuple` (later lines win).

    A missing file gives ``{}``; a line that is not valid JSON (a run killed mid-write) is skipped;
    records with status ``error`` are not counted as finished so they are retried.
    """
    p = Path(path)
    if not p.exists():
        return {}
    done: dict[tuple, dict[str, Any]] = {}
    with open(p, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(rec, dict) or not isinstance(rec.get("key"), dict):
                continue
            if rec.get("status") == Status.ERROR:
                continue
            done[key_tuple(rec["key"])] = rec
    return done


def record_to_result(record: dict[str, Any]) -> MinAdvResult:
    """Rebuild a :class:`MinAdvResult` from a stored record (witness back to a float64 array)."""
    w = record.get("witness")
    return MinAdvResult(
        status=Status(record["status"]),
        lower=float(record["lower"]),
        upper=float(record["upper"]),
        witness=None if w is None else np.asarray(w, dtype=np.float64),
        witness_class=record.get("witness_class"),
        attack_distance=float(record.get("attack_distance", math.inf)),
        seconds=float(record.get("seconds", 0.0)),
        backend=str(record.get("backend", "")),
        unstable_relus=int(record.get("unstable_relus", 0)),
        margin_exact=record.get("margin_exact"),
        margin_float32=record.get("margin_float32"),
        nodes=int(record.get("nodes", 0)),
        message=str(record.get("message", "")),
        extra=dict(record.get("extra", {})),
    )
