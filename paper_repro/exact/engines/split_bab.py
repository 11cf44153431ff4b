"""Batched branch-and-bound on ReLU splits with optimised CROWN bounds (the wide-network engine).

Decides whether some ``x`` in a box ``[lo, hi]`` has ``C f(x) ≤ 0`` (every row), as
:func:`paper_repro.exact.frontends.verify.verify_property` asks for one case of a VNN-LIB
property. Where :class:`~paper_repro.exact.engines.bab.BabEngine` solves one LP per node (about
0.1 s on a 784-256×4 network), this engine bounds hundreds of nodes per torch pass
(:class:`~paper_repro.bounds.split_bounds.SplitBounder`: α/β-CROWN, Xu et al. 2021, Wang et al.
2021), in the style of Bunel et al.'s BaB with the root's pre-activation bounds kept for every node
(clipped to its splits).

* A node is closed only when :meth:`SplitBounder.certify` (outward-rounded numpy) proves its
  bound ``> 0``; the torch value just selects which nodes to certify.
* Every node's minimising box corner is evaluated; a point with ``max_k (C f(x))_k ≤ 0`` in float64
  is returned as a *candidate*, for the caller to check exactly.
* Nodes are kept on a stack (depth first, a batch at a time), so memory stays bounded by the
  depth × batch; children inherit their parent's ``α, β, λ`` (warm start). A
  :class:`SplitSearch` keeps the stack when its deadline passes, so a later call continues.
* A node with every ReLU stable or split whose bound is not positive cannot be split further:
  the search then gives up (``unknown``, a leaf left open) rather than solve its LP.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, fields

import numpy as np
import torch

from paper_repro.bounds.crown import crown_rule
from paper_repro.bounds.outward import BoxRegion, layer_bounds, linear_lower_bound
from paper_repro.bounds.refine_layers import RefineOptions
from paper_repro.bounds.split_bounds import Domains, SplitBounder, children
from paper_repro.exact.decide import Decision, Verdict
from paper_repro.exact.engines.resumable import ResumableSearch
from paper_repro.network import ReluNetwork

_LEAF = "a node with every ReLU fixed could not be bounded above 0"


@dataclass(frozen=True)
class SplitBabOptions:
    """``batch``: parent nodes split per step (twice as many children bounded at once);
    ``root_iterations`` / ``iterations``: Adam steps on the root and on each batch of children;
    ``lr`` / ``lr_beta``: Adam's steps for ``α`` and ``β`` in the tree (``root_lr`` for ``α`` at
    the root and in ``tighten_iterations`` steps on each hidden layer's bounds, see
    :func:`root_bounds`); ``max_nodes``: open nodes at most, and fewer if they would take more
    than ``max_bytes`` (about ``9·N`` bytes each for ``N`` hidden ReLUs); ``second_layer``:
    bound each node's second-layer pre-activations under its first-layer splits
    (:class:`~paper_repro.bounds.split_second_layer.SecondLayerBounds`) rather than only clip
    the root's; ``single_precision``: optimise the nodes' bounds in float32 torch rather than
    float64 (:class:`~paper_repro.bounds.split_bounds.SplitBounder`'s ``dtype``; every closed node
    is still certified in float64, rounded outward); ``progress``: seconds between progress
    lines on stderr (0: none); ``refine``: how
    :func:`paper_repro.bounds.refine_layers.refine_bounds` tightens the root bounds of a box
    whose search is still open after ``refine_after`` of the property's time left (``None``:
    never), using at most ``refine_share`` of it (``verify_property`` does this, once per
    box); ``branch_candidates``: choose each node's split among this many top-scored ReLUs by
    one bound of both children each
    (:meth:`~paper_repro.bounds.split_bounds.SplitBounder.filtered_branch`; ≤ 1: the top-scored
    ReLU)."""

    batch: int = 256
    root_iterations: int = 50
    iterations: int = 6
    lr: float = 0.01
    root_lr: float = 0.1
    lr_beta: float = 0.3
    max_nodes: int = 200_000
    max_bytes: float = 1.5e9
    tighten_iterations: int = 20
    second_layer: bool = True
    single_precision: bool = True
    progress: float = 0.0
    refine: RefineOptions | None = RefineOptions()  # noqa: RUF009 (frozen: shared safely)
    refine_after: float = 0.03
    refine_share: float = 0.5
    branch_candidates: int = 32


@dataclass
class _Stack:
    """Open nodes: ``splits`` int8 ``[M, N]``, ``alpha``/``beta`` float32 ``[M, N]``, ``lam``
    ``[M, K]``, ``lower`` ``[M]`` (torch bounds) and ``branch`` ``[M]`` (the ReLU to split)."""

    splits: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    lam: np.ndarray
    lower: np.ndarray
    branch: np.ndarray

    def push(self, d: Domains, lower: np.ndarray, branch: np.ndarray) -> None:
        self.splits = np.concatenate([self.splits, d.splits])
        self.alpha = np.concatenate([self.alpha, d.alpha.astype(np.float32)])
        self.beta = np.concatenate([self.beta, d.beta.astype(np.float32)])
        self.lam = np.concatenate([self.lam, d.lam])
        self.lower = np.concatenate([self.lower, lower])
        self.branch = np.concatenate([self.branch, branch])

    def pop(self, n: int) -> tuple[Domains, np.ndarray]:
        """The last ``n`` nodes (fewer if there are fewer) and their branching ReLUs."""
        cut = max(0, len(self.lower) - n)
        d = Domains(self.splits[cut:], self.alpha[cut:], self.beta[cut:], self.lam[cut:])
        branch = self.branch[cut:]
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name)[:cut])
        return d, branch

    @property
    def done(self) -> float:
        """The share of the tree's measure closed, ``1 − Σ 2^−depth`` over the open nodes (a node
        ``d`` splits deep stands for ``2^−d`` of the root): how far the search has come, not how
        long it has to go (nodes deeper down may still be split many times)."""
        return 1.0 - float(np.sum(np.exp2(-(self.splits != 0).sum(axis=1, dtype=np.float64))))

    @property
    def nbytes(self) -> int:
        """Memory held by the open nodes."""
        return sum(getattr(self, f.name).nbytes for f in fields(self))


def crown_bounds(
    net: ReluNetwork, lo: np.ndarray, hi: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Sound CROWN bounds ``(l_k, u_k)`` (``[n_k]`` each) of every hidden pre-activation over the
    box ``[lo, hi]``, outward rounded; like :func:`root_bounds`, shared by networks that differ
    in their last layer only."""
    region = BoxRegion(np.asarray(lo, np.float64), np.asarray(hi, np.float64))
    return layer_bounds(net, region, crown_rule())


def crown_proves(
    net: ReluNetwork,
    lo: np.ndarray,
    hi: np.ndarray,
    c: np.ndarray,
    pre: list[tuple[np.ndarray, np.ndarray]],
) -> bool:
    """Whether one CROWN pass shows that no ``x ∈ [lo, hi]`` has ``C f(x) ≤ 0``: some row of
    ``c`` (``[K, n_L]``) has an outward-rounded lower bound ``> 0`` over the box, with the hidden
    bounds ``pre`` (:func:`crown_bounds`). The cheap test before any optimisation."""
    region = BoxRegion(np.asarray(lo, np.float64), np.asarray(hi, np.float64))
    rows = np.atleast_2d(np.asarray(c, np.float64))
    lower = linear_lower_bound(net, rows, len(net.weights), pre, region, crown_rule())
    return bool(np.any(lower > 0))


def root_bounds(
    net: ReluNetwork,
    lo: np.ndarray,
    hi: np.ndarray,
    options: SplitBabOptions = SplitBabOptions(),
    crown: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Sound bounds ``(l_k, u_k)`` of every hidden pre-activation over the box ``[lo, hi]``:
    CROWN (``crown``, if already computed by :func:`crown_bounds`), then
    ``options.tighten_iterations`` steps of α-CROWN per layer (:meth:`SplitBounder.tighten`).
    They depend on the hidden layers only, so networks that differ in their last layer (the
    cases of one VNN-LIB box) can share them."""
    region = BoxRegion(np.asarray(lo, np.float64), np.asarray(hi, np.float64))
    pre = crown_bounds(net, lo, hi) if crown is None else crown
    if options.tighten_iterations and len(pre) > 1:
        bounder = SplitBounder(net, region.lo, region.hi, pre, np.zeros((1, net.num_classes)))
        bounder.tighten(options.tighten_iterations, options.root_lr)
        pre = [(bounder.root_lo[s].copy(), bounder.root_hi[s].copy()) for s in bounder.slices()]
    return pre


def split_bab(
    net: ReluNetwork,
    lo: np.ndarray,
    hi: np.ndarray,
    c: np.ndarray,
    deadline: float,
    options: SplitBabOptions = SplitBabOptions(),
    pre_bounds: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> Decision:
    """Is there ``x ∈ [lo, hi]`` with ``C f(x) ≤ 0`` (all rows)? One :class:`SplitSearch` run
    to ``deadline``; see there for the arguments and the answer."""
    return SplitSearch(net, lo, hi, c, options, pre_bounds).run(deadline)


class SplitSearch(ResumableSearch):
    """The branch and bound of one question, resumable: :meth:`run` stops at its deadline with
    the open nodes kept, and a later :meth:`run` continues from them.

    Args:
        net: the ReLU network ``f``.
        lo, hi: the box, float64 ``[n₀]``.
        c: ``[K, n_L]`` output rows: the question is whether some ``x`` has ``C f(x) ≤ 0``.
        options: :class:`SplitBabOptions`.
        pre_bounds: :func:`root_bounds` of ``net`` and the box, if already computed.
        label: what the progress lines name after ``split-bab`` (e.g. ``"case 3"``).
    """

    def __init__(
        self,
        net: ReluNetwork,
        lo: np.ndarray,
        hi: np.ndarray,
        c: np.ndarray,
        options: SplitBabOptions = SplitBabOptions(),
        pre_bounds: list[tuple[np.ndarray, np.ndarray]] | None = None,
        label: str = "",
    ) -> None:
        self.options = options
        self.label = f" {label}" if label else ""
        pre = root_bounds(net, lo, hi, options) if pre_bounds is None else pre_bounds
        self.root_pre = pre
        self.bounder = SplitBounder(
            net,
            np.asarray(lo, np.float64),
            np.asarray(hi, np.float64),
            pre,
            c,
            options.second_layer,
            torch.float32 if options.single_precision else torch.float64,
        )
        self.stack: _Stack | None = None  # open nodes, once the root is split
        self.closed = 0
        super().__init__()

    def set_root_bounds(self, pre: list[tuple[np.ndarray, np.ndarray]]) -> None:
        """Continue with other sound root bounds (``(l_k, u_k)`` per hidden layer over the
        whole box, e.g. refined ones): they hold on every open node too, so none is lost."""
        self.root_pre = pre
        self.bounder.set_root_bounds(pre)

    @property
    def open_bytes(self) -> int:
        """Memory held by the open nodes."""
        return 0 if self.stack is None else self.stack.nbytes

    def _run(self, start: float, deadline: float) -> Decision:
        options, bounder = self.options, self.bounder
        if self.stack is None:
            root = bounder.optimise(bounder.root(), options.root_iterations, options.root_lr)
            if options.progress > 0:
                unstable = int(((bounder.root_lo < 0) & (bounder.root_hi > 0)).sum())
                print(
                    f"# split-bab{self.label}: root bound {root.lower[0]:.4g}, "
                    f"{unstable} unstable ReLUs, {time.monotonic() - start:.2f} s",
                    file=sys.stderr,
                    flush=True,
                )
            if bounder.evaluate(root.x_star)[0] <= 0:
                return Decision(Verdict.ADVERSARIAL, root.x_star[0], 0.0)
            if root.lower[0] > 0 and bounder.certify(root.domains)[0] > 0:
                return Decision(Verdict.ROBUST, None, 0.0)
            if root.branch[0] < 0:
                return _unknown(_LEAF)
            k = root.domains.lam.shape[1]
            n = bounder.n_relus
            self.stack = _Stack(
                np.zeros((0, n), np.int8),
                np.zeros((0, n), np.float32),
                np.zeros((0, n), np.float32),
                np.zeros((0, k)),
                np.zeros(0),
                np.zeros(0, int),
            )
            self.stack.push(root.domains, root.lower, root.branch)
        stack = self.stack
        most = min(options.max_nodes, int(options.max_bytes / (9 * bounder.n_relus + 64)))
        report = start + options.progress if options.progress > 0 else np.inf
        while len(stack.lower):
            if time.monotonic() > deadline:
                return _unknown(
                    f"timeout: {len(stack.lower)} nodes open, {self.closed} closed "
                    f"({100 * stack.done:.1f} % of the tree's measure)"
                )
            if time.monotonic() >= report:
                report = time.monotonic() + options.progress
                print(
                    f"# split-bab{self.label}: {self.closed} closed, {len(stack.lower)} open "
                    f"({100 * stack.done:.1f} % done), least open bound {stack.lower.min():.4g}",
                    file=sys.stderr,
                    flush=True,
                )
            parents, branch = stack.pop(options.batch)
            kids = children(parents, branch)
            res = bounder.optimise(kids, options.iterations, options.lr, options.lr_beta)
            cand = bounder.evaluate(res.x_star) <= 0
            if cand.any():
                return Decision(Verdict.ADVERSARIAL, res.x_star[int(np.argmax(cand))], 0.0)
            done = res.empty.copy()  # no input of the box meets its splits
            hopeful = np.flatnonzero((res.lower > 0) & ~done)
            if hopeful.size:
                sub = res.domains.take(hopeful)
                pre = (res.pre[0][hopeful], res.pre[1][hopeful])
                done[hopeful] = bounder.certify(sub, pre) > 0
            self.closed += int(done.sum())
            left = ~done
            if (res.branch[left] < 0).any():
                return _unknown(_LEAF)
            if len(stack.lower) + int(left.sum()) > most:
                return _unknown(f"more than {most} open nodes (memory)")
            keep = np.flatnonzero(left)
            branch = (
                bounder.filtered_branch(res, keep, options.branch_candidates)
                if options.branch_candidates > 1
                else res.branch[keep]
            )
            stack.push(res.domains.take(keep), res.lower[keep], branch)
        return Decision(Verdict.ROBUST, None, 0.0, f"{self.closed} nodes closed")


def _unknown(why: str) -> Decision:
    return Decision(Verdict.UNKNOWN, None, 0.0, why)
