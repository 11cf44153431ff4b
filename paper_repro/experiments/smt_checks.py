"""The PySMT encoding as the specification of every reported minimal example (issue 16, item 6).

:func:`check_witnesses` substitutes each record's witness into the exact formula of
:func:`paper_repro.exact.engines.smt.encode` at ``δ = upper`` (exact rationals, no solver: the
formula must simplify to ``True``). :func:`write_queries` writes the record's two SMT-LIB2 queries,
at ``δ = upper`` (satisfiable: the witness is a model) and at ``δ = lower − tolerance``
(unsatisfiable if the lower bound is right), so anyone can re-check a result with any SMT solver.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from paper_repro.errors import PaperReproError
from paper_repro.exact.engines.smt import check_witness_smt, to_smtlib
from paper_repro.network import ReluNetwork, load_network
from paper_repro.query import Norm, Query

CHECK_COLUMNS = ("model", "norm", "image", "target", "upper", "smt_holds", "seconds")


Networks = dict[str, "Path | str | ReluNetwork"]
"""Model name → its ``.pt`` / ``.onnx`` file, or the loaded network."""


def _queries(
    records: pd.DataFrame,
    originals: dict[int, np.ndarray],
    model_files: Networks,
    limit: int | None,
    seed: int,
):
    """(record row, query) for the records with a witness; a seeded sample of ``limit``."""
    rows = records[records["witness"].map(lambda w: isinstance(w, list))]
    if limit is not None and len(rows) > limit:
        rows = rows.sample(n=limit, random_state=seed).sort_index()
    nets: dict[str, ReluNetwork] = {}
    for _, r in rows.iterrows():
        model = str(r["model"])
        if model not in model_files:
            raise PaperReproError(f"no model file given for {model!r}")
        if model not in nets:
            given = model_files[model]
            nets[model] = given if isinstance(given, ReluNetwork) else load_network(given)
        x = np.asarray(originals[int(r["image"])], dtype=np.float64)
        yield r, Query(nets[model], x, int(r["label"]), int(r["target"]), Norm(r["norm"]))


def check_witnesses(
    records: pd.DataFrame,
    originals: dict[int, np.ndarray],
    model_files: Networks,
    limit: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Whether each witness satisfies the PySMT formula at its record's ``δ = upper``.

    Args:
        records: :func:`~paper_repro.experiments.minimal_runs.load_records` rows.
        originals: test image index → ``[784]`` image in [0, 1].
        model_files: model name → ``.pt`` / ``.onnx`` file (or the network itself).
        limit: check a seeded sample of at most this many records (``None``: all).

    Returns:
        One row per checked record, columns :data:`CHECK_COLUMNS`.
    """
    out = []
    for r, q in _queries(records, originals, model_files, limit, seed):
        t0 = time.perf_counter()
        witness = np.asarray(r["witness"], dtype=np.float64)
        holds = check_witness_smt(q, witness, float(r["upper"]))
        key = (r["model"], r["norm"], int(r["image"]), int(r["target"]), float(r["upper"]))
        out.append((*key, holds, time.perf_counter() - t0))
    return pd.DataFrame(out, columns=list(CHECK_COLUMNS))


def write_queries(
    records: pd.DataFrame,
    originals: dict[int, np.ndarray],
    model_files: Networks,
    folder: str | Path,
    tolerance: float,
    limit: int | None = None,
    seed: int = 0,
) -> list[Path]:
    """Write ``{model}_{norm}_{image}_{target}_{upper,lower}.smt2`` for (a sample of) the
    records with a witness: the query at ``δ = upper`` and at ``δ = lower − tolerance`` (none
    where that is negative). Returns the files written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for r, q in _queries(records, originals, model_files, limit, seed):
        stem = f"{r['model']}_{r['norm']}_{int(r['image'])}_{int(r['target'])}"
        deltas = {"upper": float(r["upper"]), "lower": float(r["lower"]) - tolerance}
        for name, delta in deltas.items():
            if delta < 0:
                continue
            path = folder / f"{stem}_{name}.smt2"
            path.write_text(to_smtlib(q, delta), encoding="utf-8")
            written.append(path)
    return written
