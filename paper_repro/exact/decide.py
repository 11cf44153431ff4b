"""The fixed-δ decision problem shared by every complete backend (SMT, Marabou, MILP, BaB).

``decide(query, delta, timeout)`` answers: is there ``x′ ∈ [0,1]^n`` with ``‖x′ − x‖ ≤ δ`` that the
network classifies as one of ``query.targets()`` (``logit_t ≥ logit_j`` for all ``j``)? This is the
Reluplex query inside Carlini et al.'s binary search (Sec. 3). :class:`SearchOutcome` is the raw
result of the other protocol, a min-δ search (BaB or MILP).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from paper_repro.errors import PaperReproError
from paper_repro.query import Query

if TYPE_CHECKING:  # (a type only: importing witness would import torch)
    from paper_repro.exact.witnesses.witness import Witness


class Verdict(enum.StrEnum):
    """``adversarial``: a witness exists (returned); ``robust``: proven none; ``unknown``:
    gave up (timeout or solver error)."""

    ADVERSARIAL = "adversarial"
    ROBUST = "robust"
    UNKNOWN = "unknown"


class SmtSolver(enum.StrEnum):
    """SMT solvers of the PySMT path: ``z3`` (always installed) and ``cvc5`` (the optional
    ``smt`` extra: ``pip install 'paper_repro[smt]'``)."""

    Z3 = "z3"
    CVC5 = "cvc5"

    @classmethod
    def parse(cls, value: str | SmtSolver) -> SmtSolver:
        """The solver named ``value``; an unknown name is a :class:`PaperReproError`."""
        try:
            return cls(value)
        except ValueError:
            raise PaperReproError(f"unknown SMT solver {value!r}: expected z3 or cvc5") from None


@dataclass(frozen=True)
class Decision:
    """One fixed-δ answer.

    Attributes:
        verdict: see :class:`Verdict`.
        witness: for ``adversarial``, an ``x′`` of shape ``[n_0]`` within δ of ``x``.
        seconds: wall time of the call.
        message: why ``unknown`` (timeout, solver error), for logs.
    """

    verdict: Verdict
    witness: np.ndarray | None
    seconds: float
    message: str = ""


Decider = Callable[[Query, float, float], Decision]
"""``decider(query, delta, timeout_seconds) -> Decision``."""


@dataclass
class SearchOutcome:
    """Raw result of a min-δ search (BaB or MILP): ``lower ≤ δ* ≤ upper`` (``best`` achieves
    ``upper``), nodes, finished flag."""

    lower: float
    best: Witness | None
    nodes: int
    finished: bool
    unstable: int
    attack: Witness | None
