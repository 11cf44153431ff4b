"""The PySMT encoding as the specification of every reported minimal example (issue 16, item 6).

:func:`check_witnesses` substitutes each record's witness into the exact formula of
:func:`paper_repro.exact.engines.smt.encode` at ``δ = upper`` (exact rationals, no solver: the
formula must simplify to ``True``). :func:`write_queries` writes the record's two SMT-LIB2 queries,
at ``δ = upper`` (satisfiable: the witness is a model) and at ``δ = lower − tolerance``
(unsatisfiable if the lower bound is right), so anyone can re-check a result with any SMT solver.

:func:`solve_regions` runs z3 and cvc5 (via PySMT) on each record's two questions restricted to
the witness's activation region (linear real arithmetic, solvable on 784-input networks);
:func:`solve_whole` asks the whole, unrestricted queries (tiny networks only). A region-restricted
``unsat`` below ``lower`` covers one region, not the engine's global claim
(:mod:`paper_repro.exact.engines.smt_region`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from paper_repro.errors import PaperReproError
from paper_repro.exact.decide import SmtSolver
from paper_repro.exact.engines.smt import check_witness_smt, to_smtlib
from paper_repro.exact.engines.smt_region import ask_solvers, freeze_inputs, witness_phases
from paper_repro.network import ReluNetwork, load_network
from paper_repro.query import Norm, Query

CHECK_COLUMNS = ("model", "norm", "image", "target", "upper", "smt_holds", "seconds")
SOLVE_COLUMNS = ("model", "norm", "image", "target", "solver", "question", "delta", "verdict",
                 "agrees", "seconds")  # fmt: skip
ANSWER_COLUMNS = ("solver", "question", "delta", "verdict", "agrees", "seconds")
FROZEN_COLUMNS = ("model", "norm", "image", "target", "free", "lower", "upper", "check",
                  *ANSWER_COLUMNS)  # fmt: skip


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
        yield r, Query(nets[model], x, int(r["label"]), _target(r), Norm(r["norm"]))


def _target(row: pd.Series) -> int | None:
    """The record's target class, ``None`` for an untargeted record."""
    t = row["target"]
    return None if t is None or pd.isna(t) else int(t)


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
        key = (r["model"], r["norm"], int(r["image"]), _target(r), float(r["upper"]))
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
        target = "any" if _target(r) is None else _target(r)
        stem = f"{r['model']}_{r['norm']}_{int(r['image'])}_{target}"
        deltas = {"upper": float(r["upper"]), "lower": float(r["lower"]) - tolerance}
        for name, delta in deltas.items():
            if delta < 0:
                continue
            path = folder / f"{stem}_{name}.smt2"
            path.write_text(to_smtlib(q, delta), encoding="utf-8")
            written.append(path)
    return written


def solve_regions(
    records: pd.DataFrame,
    originals: dict[int, np.ndarray],
    model_files: Networks,
    solvers: tuple[SmtSolver | str, ...] = (SmtSolver.Z3, SmtSolver.CVC5),
    limit: int | None = None,
    seed: int = 0,
    timeout: float = 20.0,
    tolerance: float = 1e-4,
) -> pd.DataFrame:
    """Run the SMT solvers on each record's witness region: every hidden ReLU fixed to its
    phase at the witness (exactly 0 fixed inactive), the formula at ``δ = upper`` (must be
    ``sat``) and at ``δ = lower − tolerance`` (must be ``unsat`` in the region).

    ``unsat`` here proves only that the witness's region has no closer example, a weaker claim
    than the engine's ``lower`` (every region); a disagreement still refutes the record.
    Untargeted records keep the disjunction over the targets. Arguments as for
    :func:`check_witnesses`; ``timeout`` is per solver call (``unknown`` past it: ``agrees``
    is then missing, not ``False``), ``tolerance`` the engine's (records do not store it).

    Returns:
        One row per (record, solver, question), columns :data:`SOLVE_COLUMNS`.
    """
    out = []
    for r, q in _queries(records, originals, model_files, limit, seed):
        phases = witness_phases(q.network, np.asarray(r["witness"], dtype=np.float64))
        answers = ask_solvers(
            q, float(r["lower"]), float(r["upper"]), tolerance, solvers, timeout, phases
        )
        key = (r["model"], r["norm"], int(r["image"]), _target(r))
        out += [(*key, *(getattr(a, c) for c in ANSWER_COLUMNS)) for a in answers]
    return pd.DataFrame(out, columns=list(SOLVE_COLUMNS))


def solve_whole(
    query: Query,
    lower: float | None = None,
    upper: float | None = None,
    solvers: tuple[SmtSolver | str, ...] = (SmtSolver.Z3, SmtSolver.CVC5),
    timeout: float = 20.0,
    tolerance: float = 1e-4,
) -> pd.DataFrame:
    """The whole (unrestricted) query asked of each solver through the ``smt`` backend's
    decider at ``δ = upper`` (``sat``) and ``δ = lower − tolerance`` (``unsat``): a full check
    of the bracket, feasible only on tiny networks. Without a bracket, the engine
    (:func:`~paper_repro.exact.search.minimal_adversarial`, BaB, this ``tolerance``) is run
    first. Returns one row per (solver, question), columns :data:`ANSWER_COLUMNS`."""
    if lower is None or upper is None:
        from paper_repro.exact.search import Backend, SolveOptions, minimal_adversarial

        res = minimal_adversarial(query, Backend.BAB, SolveOptions(tolerance=tolerance))
        lower, upper = res.lower, res.upper
    answers = ask_solvers(query, lower, upper, tolerance, solvers, timeout)
    rows = [[getattr(a, c) for c in ANSWER_COLUMNS] for a in answers]
    return pd.DataFrame(rows, columns=list(ANSWER_COLUMNS))


def margin_pixels(query: Query, witness: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` inputs that contribute most to the witness's margin gain: largest
    ``g_i · (x′_i − x_i)``, ``g`` the gradient of ``Z_t − Z_label`` in the witness's linear
    region (``t``: the target, or the witness's class if untargeted). A float64 heuristic."""
    net, w = query.network, np.asarray(witness, dtype=np.float64)
    jac, z = np.eye(net.input_dim), w
    for k_layer, (wk, bk) in enumerate(zip(net.weights, net.biases, strict=True)):
        h, jac = z @ wk.T + bk, wk @ jac
        if k_layer < len(net.weights) - 1:
            jac, z = jac * (h > 0)[:, None], np.maximum(h, 0.0)
    t = query.target
    if t is None:
        t = int(np.argmax(np.where(np.arange(z.size) == query.label, -np.inf, z)))
    gain = (jac[t] - jac[query.label]) * (w - query.x)
    return np.sort(np.argsort(-gain, kind="stable")[:k])


def solve_frozen(
    records: pd.DataFrame,
    originals: dict[int, np.ndarray],
    model_files: Networks,
    free: int = 60,
    solvers: tuple[SmtSolver | str, ...] = (SmtSolver.Z3, SmtSolver.CVC5),
    limit: int | None = None,
    seed: int = 0,
    timeout: float = 20.0,
    tolerance: float = 1e-4,
    whole: bool = True,
) -> pd.DataFrame:
    """The solvers against the engine on real models made small: per record, every input but
    the ``free`` ones of :func:`margin_pixels` is frozen at ``x``
    (:func:`~paper_repro.exact.engines.smt_region.freeze_inputs`), the engine (BaB, this
    ``tolerance``, 60 s) solves that query, and each solver is asked its region-restricted
    questions at the engine's new witness (``check`` ``region``) and, with ``whole``, the
    unrestricted ones (``whole``). ``lower``/``upper``: the engine's bracket of the frozen query.

    Returns:
        One row per (record, check, solver, question), columns :data:`FROZEN_COLUMNS`.
    """
    from paper_repro.exact.search import Backend, SolveOptions, minimal_adversarial

    opts = SolveOptions(tolerance=tolerance, timeout=60.0)
    out = []
    for r, q in _queries(records, originals, model_files, limit, seed):
        small = freeze_inputs(q, margin_pixels(q, np.asarray(r["witness"]), free))
        res = minimal_adversarial(small, Backend.BAB, opts)
        key = (r["model"], r["norm"], int(r["image"]), _target(r), free, res.lower, res.upper)
        checks = {}
        if res.witness is not None:
            phases = witness_phases(small.network, res.witness)
            checks["region"] = ask_solvers(
                small, res.lower, res.upper, tolerance, solvers, timeout, phases
            )
        if whole:
            checks["whole"] = ask_solvers(small, res.lower, res.upper, tolerance, solvers, timeout)
        for check, answers in checks.items():
            out += [(*key, check, *(getattr(a, c) for c in ANSWER_COLUMNS)) for a in answers]
    return pd.DataFrame(out, columns=list(FROZEN_COLUMNS))
