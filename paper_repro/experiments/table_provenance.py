"""Where a notebook table's numbers come from: provenance rows of instance files, and CSV output.

:func:`record_provenance` summarises the records of
:func:`paper_repro.experiments.minimal_runs.run_image` (model hash, solver settings, timeouts,
evaluation split, versions) per model × norm; :func:`attach_provenance` merges its key columns
into a result table; :func:`save_table` writes a table beside the executed notebook.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from paper_repro.errors import PaperReproError
from paper_repro.exact.witnesses import records

PROVENANCE_COLUMNS = ("model_sha256", "backend", "protocol", "tolerance", "timeout_s")


def record_provenance(paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per (model, norm) of instance files: where the numbers come from.

    Columns: ``model, norm, files, records, optimal, timeout`` and, from the records' stored
    provenance, ``model_sha256, backend, protocol, tolerance, precision, timeout_s, seed,
    test_source, data_dir, data_warnings, git_commit, config_sha256, torch`` and the attack and
    certification settings as JSON.
    """
    rows: dict[tuple[str, str], dict] = {}
    for p in paths:
        for rec in records.load_finished(p).values():
            prov = rec.get("provenance", {})
            cfg = prov.get("config", {})
            ex, data = cfg.get("experiments", {}), cfg.get("data", {})
            # a study's own time limit and cap (config experiments.studies) win over the default
            study = (ex.get("studies") or {}).get(prov.get("study")) or {}
            key = (rec["model"], rec["norm"])
            row = rows.setdefault(
                key,
                {
                    "model": rec["model"],
                    "norm": rec["norm"],
                    "files": set(),
                    "records": 0,
                    "optimal": 0,
                    "timeout": 0,
                    "unknown": 0,
                    "model_sha256": set(),
                    "backend": rec.get("backend"),
                    "protocol": ex.get("protocol"),
                    "tolerance": ex.get("tolerance"),
                    "precision": ex.get("precision"),
                    "timeout_s": study.get("timeout") or ex.get("timeout"),
                    "max_distance": study.get("max_distance"),
                    "study": prov.get("study"),
                    "seed": cfg.get("seed"),
                    "test_source": prov.get("test_split", data.get("test_source")),
                    "data_dir": data.get("dir"),
                    "data_warnings": " ".join(prov.get("data_warnings", [])),
                    "git_commit": prov.get("git_commit"),
                    "config_sha256": prov.get("config_sha256"),
                    "torch": prov.get("versions", {}).get("torch"),
                    "cw_linf": json.dumps(ex.get("cw_linf"), sort_keys=True),
                    "cw_l1": json.dumps(ex.get("cw_l1"), sort_keys=True),
                    "closest_fgsm": json.dumps(ex.get("closest_fgsm"), sort_keys=True),
                    "certify": json.dumps(ex.get("certify"), sort_keys=True),
                },
            )
            row["files"].add(str(p))
            row["records"] += 1
            row["optimal"] += rec.get("status") == "optimal"
            row["timeout"] += rec.get("status") == "timeout"
            row["unknown"] += rec.get("status") == "unknown"
            row["model_sha256"].add(prov.get("model_sha256"))
    if not rows:
        raise PaperReproError("no instance records found")
    out = pd.DataFrame(rows.values())
    out["files"] = out["files"].map(len)
    out["model_sha256"] = out["model_sha256"].map(lambda s: ";".join(sorted(map(str, s))))
    return out.sort_values(["model", "norm"], ignore_index=True)


def attach_provenance(table: pd.DataFrame, provenance: pd.DataFrame) -> pd.DataFrame:
    """``table`` with :data:`PROVENANCE_COLUMNS` merged in by ``model`` (and ``norm`` when
    both frames have it); tables without a ``model`` column are returned unchanged."""
    if "model" not in table.columns:
        return table
    keys = ["model", "norm"] if "norm" in table.columns else ["model"]
    prov = provenance.groupby(keys, as_index=False)[list(PROVENANCE_COLUMNS)].first()
    return table.merge(prov, on=keys, how="left")


def save_table(table: pd.DataFrame, directory: str | Path, name: str) -> Path:
    """Write ``table`` to ``{directory}/{name}.csv`` (folder created); return the path."""
    out = Path(directory) / f"{name}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=not isinstance(table.index, pd.RangeIndex))
    return out
