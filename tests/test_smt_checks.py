"""The PySMT formula as the specification of reported results: witness substitution and the
SMT-LIB2 queries at δ = upper (sat) and δ = lower − tolerance (unsat), re-checked with z3."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import z3

from paper_repro.exact.search import Backend, SolveOptions, minimal_adversarial
from paper_repro.experiments.smt_checks import CHECK_COLUMNS, check_witnesses, write_queries
from paper_repro.network import ReluNetwork
from paper_repro.query import Norm, Query


@pytest.fixture(scope="module")
def solved(engine_record):
    """A 12-input ReLU network (SMT solvers handle its formulas in well under a second) and the
    engine's minimal examples for two reachable targets per norm."""
    rng = np.random.default_rng(3)
    net = ReluNetwork.from_arrays(
        [rng.normal(size=(6, 12)), rng.normal(size=(4, 6))],
        [rng.normal(size=6) * 0.3, rng.normal(size=4) * 0.3],
    )
    x = rng.random(12)
    label = int(np.argmax(net.forward(x)))
    rows = []
    for norm in (Norm.LINF, Norm.L1):
        found = 0
        for target in [t for t in range(4) if t != label]:
            res = minimal_adversarial(
                Query(net, x, label, target, norm), Backend.BAB, SolveOptions(timeout=30)
            )
            if res.witness is None or found == 2:  # unreachable target of a random net
                continue
            found += 1
            rows.append(engine_record(norm, target, label, res))
    assert len(rows) == 4
    return pd.DataFrame(rows), {0: x}, {"tiny": net}


def test_every_witness_satisfies_the_formula(solved):
    records, originals, files = solved
    checks = check_witnesses(records, originals, files)
    assert tuple(checks.columns) == CHECK_COLUMNS and len(checks) == 4
    assert checks["smt_holds"].all()
    bad = records.copy()
    bad["witness"] = [list(originals[0]) for _ in range(len(bad))]  # x itself: not adversarial
    assert not check_witnesses(bad, originals, files)["smt_holds"].any()
    assert len(check_witnesses(records, originals, files, limit=1)) == 1


def test_smtlib_queries_recheck_with_z3(solved, tmp_path):
    records, originals, files = solved
    paths = write_queries(records.iloc[:2], originals, files, tmp_path, tolerance=1e-4)
    assert len(paths) == 4
    for p in paths:
        ctx = z3.Context()
        s = z3.Solver(ctx=ctx)
        s.add(z3.parse_smt2_string(p.read_text(), ctx=ctx))
        expected = z3.sat if p.stem.endswith("_upper") else z3.unsat
        assert s.check() == expected, p.name
