"""The backend registry (:mod:`paper_repro.exact.backends`) is the one list of backends: the
``Backend`` enum, ``config/schema.yaml``'s ``experiments.backend``, the config's default and
``paper-repro minadv --backend`` agree with it, and every entry answers through its factories."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import yaml

from paper_repro.errors import PaperReproError
from paper_repro.exact.backends import BACKENDS, Backend, BackendSpec, Package, backend_spec
from paper_repro.exact.decide import SmtSolver, Verdict
from paper_repro.exact.frontends import cli_minadv
from paper_repro.exact.search import Protocol, SolveOptions, minimal_adversarial
from paper_repro.network import ReluNetwork
from paper_repro.query import Norm, Query, Status

ROOT = Path(__file__).resolve().parents[1]
NAMES = [b.value for b in Backend]


def _backend_action() -> argparse.Action:
    parser = argparse.ArgumentParser()
    cli_minadv.add_arguments(parser)
    return next(a for a in parser._actions if a.dest == "backend")


def _line_query() -> Query:
    """y0 = 0.5, y1 = relu(x0) on x = 0.25: class 1 from x0 ≥ 0.5, so δ* = 0.25 (L∞)."""
    net = ReluNetwork.from_arrays(
        [np.array([[1.0]]), np.array([[0.0], [1.0]])], [np.zeros(1), np.array([0.5, 0.0])]
    )
    return Query(net, np.array([0.25]), 0, 1, Norm.LINF)


def test_registry_has_one_entry_per_backend_in_enum_order():
    assert list(BACKENDS) == list(Backend)
    for backend, spec in BACKENDS.items():
        assert spec.backend is backend and spec.name == backend.value
        assert spec.summary and "\n" not in spec.summary
        assert spec.packages, f"{backend} lists no packages"
        assert backend_spec(backend.value) is spec


def test_schema_config_and_cli_agree_with_the_registry():
    schema = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
    prop = schema["properties"]["experiments"]["properties"]["backend"]
    assert prop["enum"] == NAMES
    assert prop["default"] in NAMES
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    assert config["experiments"].get("backend", prop["default"]) in NAMES
    action = _backend_action()
    assert list(action.choices) == NAMES
    for spec in BACKENDS.values():
        assert f"{spec.name}: {spec.summary}" in action.help


def test_decide_only_backends_need_binary_search():
    q = _line_query()
    exact = SolveOptions(protocol=Protocol.EXACT, timeout=10)
    assert {b for b, s in BACKENDS.items() if s.minimises} == {Backend.BAB, Backend.MILP}
    for backend, spec in BACKENDS.items():
        if not spec.minimises:
            with pytest.raises(PaperReproError, match="binary_search"):
                minimal_adversarial(q, backend, exact)
            with pytest.raises(PaperReproError, match="binary_search"):
                spec.minimizer(exact)
    help_text = " ".join(_backend_action().help.split())
    assert "need --protocol binary_search" in help_text


@pytest.mark.parametrize("backend", list(Backend))
def test_every_decider_answers_both_sides_of_delta_star(backend):
    spec = BACKENDS[backend]
    if spec.missing():
        pytest.skip(f"{backend}: {spec.missing()[0].module} is not installed")
    decide = spec.decider(SolveOptions(seed=0))
    q = _line_query()
    assert decide(q, 0.3, 30).verdict == Verdict.ADVERSARIAL
    assert decide(q, 0.2, 30).verdict in (Verdict.ROBUST, Verdict.UNKNOWN)
    if backend != Backend.MARABOU:  # Marabou claims robust only below a safety slack
        assert decide(q, 0.2, 30).verdict == Verdict.ROBUST


@pytest.mark.parametrize("backend", [b for b, s in BACKENDS.items() if s.minimises])
def test_every_minimiser_closes_the_bracket(backend):
    res = minimal_adversarial(_line_query(), backend, SolveOptions(tolerance=1e-7, timeout=30))
    assert res.status == Status.OPTIMAL and res.backend == backend.value
    assert abs(res.upper - 0.25) <= 1e-6 and res.lower <= 0.25 + 1e-9


def test_unknown_backend_and_missing_package_are_clear_errors():
    with pytest.raises(PaperReproError, match="unknown backend 'cplex': expected one of bab"):
        backend_spec("cplex")
    ghost = Package("paper_repro_no_such_module", "no-such-package")
    fake = BackendSpec(Backend.SMT, "a test entry", (ghost,), BACKENDS[Backend.SMT].make_decider)
    assert fake.missing() == [ghost]
    with pytest.raises(PaperReproError, match=r"'paper_repro_no_such_module'.*no-such-package"):
        fake.decider(SolveOptions())


def test_cvc5_is_required_only_with_the_cvc5_solver():
    spec = BACKENDS[Backend.SMT]
    cvc5 = next(p for p in spec.packages if p.module == "cvc5")
    assert cvc5.only_with == SmtSolver.CVC5
    assert cvc5 not in spec.missing(SolveOptions(smt_solver=SmtSolver.Z3))
    installed = cvc5 not in spec.missing(SolveOptions(smt_solver=SmtSolver.CVC5))
    try:
        import cvc5 as _  # noqa: F401
    except ImportError:
        assert not installed
    else:
        assert installed
