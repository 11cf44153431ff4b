"""The minimal-adversarial-example query and its result record (issue: exact engine).

A query asks for ``δ* = min ‖x′ − x‖`` over ``x′ ∈ [0,1]^n`` with ``logit_t(x′) ≥ logit_j(x′)`` for
every ``j`` (targeted, class ``t``), or for some class ``t ≠ label`` (untargeted): the provably
minimally distorted adversarial example of Carlini et al. (Sec. 3), in the L∞ or L1 norm.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from paper_repro.errors import PaperReproError
from paper_repro.network import ReluNetwork


class Norm(enum.StrEnum):
    """The distance ``‖x′ − x‖``: ``linf`` (max |·|) or ``l1`` (sum |·|), in [0,1] pixel units."""

    LINF = "linf"
    L1 = "l1"

    @classmethod
    def parse(cls, value: str | Norm) -> Norm:
        try:
            return cls(value)
        except ValueError:
            raise PaperReproError(f"unknown norm {value!r}: expected one of linf, l1") from None


class Status(enum.StrEnum):
    """``optimal``: ``upper − lower ≤ tolerance``; ``timeout``: the time limit ended the search
    (best certified bracket so far); ``unknown``: the search gave up with time left (the bracket
    is still certified; ``message`` says why); ``beyond``: the search was asked to resolve
    ``δ*`` only up to a distance (``SolveOptions.max_distance``) and proved ``δ* ≥`` it (the
    bracket's lower end; ``upper`` is the best example found, maybe ``inf``); ``error``."""

    OPTIMAL = "optimal"
    TIMEOUT = "timeout"
    UNKNOWN = "unknown"
    BEYOND = "beyond"
    ERROR = "error"


@dataclass(frozen=True)
class Query:
    """One minimal-distortion question.

    Attributes:
        network: the classifier.
        x: the original input, shape ``[n_0]``, values in [0, 1].
        label: the class of ``x`` that the adversary must leave.
        target: the class ``t`` the adversary must reach (``logit_t ≥`` all others), or ``None``
            for untargeted (any class other than ``label``).
        norm: the distance to minimise.
    """

    network: ReluNetwork
    x: np.ndarray
    label: int
    target: int | None
    norm: Norm

    def __post_init__(self) -> None:
        x = np.asarray(self.x, dtype=np.float64).reshape(-1)
        n_in, n_cls = self.network.input_dim, self.network.num_classes
        if x.shape[0] != n_in:
            raise PaperReproError(f"input has {x.shape[0]} values but the network expects {n_in}")
        if not np.all(np.isfinite(x)):
            raise PaperReproError("input contains NaN or infinite values")
        if x.min() < 0.0 or x.max() > 1.0:
            raise PaperReproError(
                f"input values must lie in [0, 1], got [{x.min():.4g}, {x.max():.4g}]"
            )
        if not 0 <= self.label < n_cls:
            raise PaperReproError(f"label {self.label} is not a class of a {n_cls}-class network")
        if self.target is not None:
            if not 0 <= self.target < n_cls:
                raise PaperReproError(f"target {self.target} is not a class 0..{n_cls - 1}")
            if self.target == self.label:
                raise PaperReproError(f"target {self.target} equals the label: nothing to attack")
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "norm", Norm.parse(self.norm))

    def domain_radius(self) -> float:
        """The distance from ``x`` to the farthest point of ``[0,1]^n`` in the query's norm: every
        ``x′`` of the input domain lies within it (``δ* ≤`` this, or no example exists)."""
        far = np.maximum(self.x, 1.0 - self.x)
        return float(far.max() if self.norm == Norm.LINF else far.sum())

    def targets(self) -> list[int]:
        """The classes an adversarial example may land in."""
        if self.target is not None:
            return [self.target]
        return [c for c in range(self.network.num_classes) if c != self.label]


@dataclass(frozen=True)
class MinAdvResult:
    """The answer to a :class:`Query`: a certified bracket ``lower ≤ δ* ≤ upper``.

    Attributes:
        status: see :class:`Status`.
        lower: a proven lower bound on ``δ*`` (no adversarial example is closer).
        upper: the distance of ``witness`` (``inf`` when none was found).
        witness: ``x′`` with ``‖x′ − x‖ = upper`` that is classified as ``witness_class``,
            shape ``[n_0]``; ``None`` when no adversarial example exists or was found.
        witness_class: the class the witness reaches.
        attack_distance: distance of the initial attack (the binary search's first δ_max).
        seconds: wall time.
        backend: which engine answered.
        unstable_relus: ReLUs whose phase the bounds could not fix at the start.
        margin_exact: ``min_j logit_t − logit_j`` at the witness in exact rationals (≥ 0 if valid).
        margin_float32: the same margin from the float32 torch model.
        nodes: branch-and-bound nodes or solver calls used.
        message: a human-readable note (e.g. why it errored).
    """

    status: Status
    lower: float
    upper: float
    witness: np.ndarray | None
    witness_class: int | None
    attack_distance: float
    seconds: float
    backend: str
    unstable_relus: int
    margin_exact: float | None = None
    margin_float32: float | None = None
    nodes: int = 0
    message: str = ""
    extra: dict = field(default_factory=dict)
