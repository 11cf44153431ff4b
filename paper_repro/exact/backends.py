"""The backend registry: every complete engine of the exact search, in one table.

Each :class:`Backend` has one :class:`BackendSpec` in :data:`BACKENDS`: a one-line summary,
whether it minimises ``δ`` directly (the ``exact`` protocol) or only decides fixed-δ questions
(Carlini et al.'s ``binary_search`` only), the factories of its fixed-δ decider and of its
minimiser, and the Python packages it imports. :func:`paper_repro.exact.search.minimal_adversarial`
dispatches through it; ``paper-repro minadv --backend`` takes its choices and help from it; the
tests check that it, the :class:`Backend` enum, ``config/schema.yaml``'s ``experiments.backend``
and the CLI agree. The engines are imported only when a factory runs, so reading the table is
cheap; a missing package is a :class:`~paper_repro.errors.PaperReproError` naming it.
"""

from __future__ import annotations

import enum
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from paper_repro.errors import PaperReproError
from paper_repro.exact.decide import Decider, SearchOutcome, SmtSolver

if TYPE_CHECKING:
    from paper_repro.exact.engines.bab import BabEngine
    from paper_repro.exact.search import SolveOptions
    from paper_repro.query import Query


class Backend(enum.StrEnum):
    """Which complete engine answers: ``bab`` (default), ``milp``, ``smt`` (z3) or ``marabou``."""

    BAB = "bab"
    MILP = "milp"
    SMT = "smt"
    MARABOU = "marabou"


Minimizer = Callable[["Query", "np.ndarray | None", float], tuple[SearchOutcome, dict]]
"""``minimize(query, initial, deadline) -> (outcome, extra)``: a min-δ search until the
``time.monotonic()`` deadline, from the optional user-supplied example ``initial`` (checked
exactly); ``extra`` goes into :attr:`~paper_repro.query.MinAdvResult.extra`."""


@dataclass(frozen=True)
class Package:
    """A Python package a backend imports: ``module`` (its import name), ``pip`` (what to
    install) and ``only_with`` (needed only with that SMT solver; ``None``: always)."""

    module: str
    pip: str
    only_with: SmtSolver | None = None


@dataclass(frozen=True)
class BackendSpec:
    """One backend's entry in :data:`BACKENDS`.

    Attributes:
        backend: the enum member (its value is the name in configs and on the command line).
        summary: one line for ``--help`` and the docs.
        packages: what it imports (checked, with a clear error, before a factory runs).
        make_decider: ``make_decider(options) -> Decider`` (the fixed-δ question, every backend).
        make_minimizer: ``make_minimizer(options) -> Minimizer`` for the ``exact`` protocol, or
            ``None`` for a backend that only decides fixed-δ questions.
    """

    backend: Backend
    summary: str
    packages: tuple[Package, ...]
    make_decider: Callable[[SolveOptions], Decider]
    make_minimizer: Callable[[SolveOptions], Minimizer] | None = None

    @property
    def name(self) -> str:
        """The backend's name (``bab``, ``milp``, ``smt``, ``marabou``)."""
        return self.backend.value

    @property
    def minimises(self) -> bool:
        """Whether it minimises δ directly (``exact`` protocol); else ``binary_search`` only."""
        return self.make_minimizer is not None

    def missing(self, options: SolveOptions | None = None) -> list[Package]:
        """The packages it needs (with ``options``' SMT solver) that are not installed."""
        solver = None if options is None else options.smt_solver
        needed = [p for p in self.packages if p.only_with is None or p.only_with == solver]
        return [p for p in needed if importlib.util.find_spec(p.module) is None]

    def require(self, options: SolveOptions | None = None) -> None:
        """Raise :class:`PaperReproError` naming the first missing package, if any."""
        for p in self.missing(options):
            raise PaperReproError(
                f"backend {self.name} is not available: it needs the Python package "
                f"'{p.module}' (pip install '{p.pip}')"
            )

    def decider(self, options: SolveOptions) -> Decider:
        """Its fixed-δ decider for ``options``."""
        self.require(options)
        try:
            return self.make_decider(options)
        except ImportError as exc:
            raise PaperReproError(f"backend {self.name} is not available: {exc}") from None

    def minimizer(self, options: SolveOptions) -> Minimizer:
        """Its min-δ search for ``options``; a decide-only backend is a :class:`PaperReproError`."""
        if self.make_minimizer is None:
            raise PaperReproError(
                f"backend {self.name} only decides fixed-δ questions: use protocol binary_search"
            )
        self.require(options)
        try:
            return self.make_minimizer(options)
        except ImportError as exc:
            raise PaperReproError(f"backend {self.name} is not available: {exc}") from None


def backend_spec(value: Backend | str) -> BackendSpec:
    """The registry entry of ``value`` (a :class:`Backend` or its name).

    Raises:
        PaperReproError: an unknown backend name.
    """
    try:
        return BACKENDS[Backend(value)]
    except ValueError:
        choices = ", ".join(b.value for b in Backend)
        raise PaperReproError(f"unknown backend {value!r}: expected one of {choices}") from None


# ------------------------------------------------------------------------ the factories


def _bab_decider(options: SolveOptions) -> Decider:
    from paper_repro.exact.engines.bab import BabOptions, bab_decider

    return bab_decider(BabOptions(seed=options.seed, attack=False))


def _bab_minimizer(options: SolveOptions) -> Minimizer:
    from paper_repro.exact.engines.bab import BabEngine, BabOptions

    def minimize(query: Query, initial: np.ndarray | None, deadline: float):
        bab_options = BabOptions(
            tolerance=options.tolerance,
            seed=options.seed,
            progress=options.progress,
            max_distance=options.max_distance,
        )
        engine = BabEngine(query, bab_options)
        seed_incumbent(engine, initial)
        out = engine.search(deadline)
        extra = {"finished": out.finished, "lp_solves": out.nodes}
        if engine.limit < engine.domain:
            extra["max_distance"] = engine.limit  # a capped search (status beyond past it)
        return out, extra

    return minimize


def seed_incumbent(engine: BabEngine, initial: np.ndarray | None) -> None:
    """Offer a user-supplied adversarial example (checked exactly against every target)."""
    from paper_repro.exact.witnesses.witness import check_witness

    if initial is None:
        return
    for t in engine.q.targets():
        engine.offer(check_witness(engine.net, engine.x, initial, t, engine.norm))


def _milp_decider(options: SolveOptions) -> Decider:
    from paper_repro.exact.engines.milp import milp_decider

    return milp_decider()


def _milp_minimizer(options: SolveOptions) -> Minimizer:
    from paper_repro.exact.engines.milp import milp_minimize
    from paper_repro.exact.witnesses.witness import initial_witness

    def minimize(query: Query, initial: np.ndarray | None, deadline: float):
        first = initial_witness(query, initial)
        out = milp_minimize(query, deadline, options.tolerance, first, options.seed)
        return out, {"finished": out.finished}

    return minimize


def _smt_decider(options: SolveOptions) -> Decider:
    from paper_repro.exact.engines.smt import smt_decider

    return smt_decider(options.smt_solver)


def _marabou_decider(options: SolveOptions) -> Decider:
    from paper_repro.exact.engines.marabou_backend import marabou_decider

    return marabou_decider()


_HIGHS = Package("highspy", "highspy")

BACKENDS: dict[Backend, BackendSpec] = {
    Backend.BAB: BackendSpec(
        Backend.BAB,
        "branch and bound over ReLU phases with safe LP bounds",
        (_HIGHS,),
        _bab_decider,
        _bab_minimizer,
    ),
    Backend.MILP: BackendSpec(
        Backend.MILP,
        "the big-M MILP on HiGHS (the baseline)",
        (_HIGHS,),
        _milp_decider,
        _milp_minimizer,
    ),
    Backend.SMT: BackendSpec(
        Backend.SMT,
        "the exact PySMT specification, solved by z3 or cvc5 (--smt-solver)",
        (
            Package("pysmt", "pysmt"),
            Package("z3", "z3-solver"),
            Package("cvc5", "paper_repro[smt]", only_with=SmtSolver.CVC5),
        ),
        _smt_decider,
    ),
    Backend.MARABOU: BackendSpec(
        Backend.MARABOU,
        "Marabou (maraboupy), floating point with a safety slack",
        (Package("maraboupy", "maraboupy==2.0.0"),),
        _marabou_decider,
    ),
}
"""The registry: one :class:`BackendSpec` per :class:`Backend`, in the enum's order."""
