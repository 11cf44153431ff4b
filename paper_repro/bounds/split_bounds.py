"""Optimised linear lower bounds over many branch-and-bound subdomains at once (α/β-CROWN).

A subdomain of a box ``[lo, hi]`` is a set of ReLU phase splits. Its bound is the Lagrangian
bound of :func:`paper_repro.bounds.outward.linear_lower_bound` on the root's pre-activation
bounds clipped to the splits (active: ``ẑ ≥ 0``, inactive: ``ẑ ≤ 0``), with the coefficients
``Λ`` on each hidden pre-activation chosen, per subdomain and neuron, as

* unstable (``l < 0 < u``): ``g·u/(u−l)`` where ``g < 0`` (upper chord), ``g·α`` where ``g ≥ 0``
  (lower line ``z ≥ α ẑ``, ``α ∈ [0, 1]``: α-CROWN, Xu et al., 2021);
* split active: ``g − β``; split inactive: ``β`` (``β ≥ 0``: the multiplier of the split
  constraint, β-CROWN, Wang et al., 2021); other stable neurons: ``g`` or ``0``;

and the objective ``Σ_k λ_k (C f(x))_k`` (``λ`` on the simplex) for a conjunction of ``K`` rows.
``α``, ``β`` and ``λ`` are improved by Adam on the sum of the bounds, in torch float64 for a
whole batch. Any choice is a valid bound, so optimisation is only about tightness; soundness
comes from :meth:`SplitBounder.certify`, which recomputes the bound with the *same* choice
through the outward-rounded numpy routine. A torch value is never a proof.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from paper_repro.bounds import split_branching
from paper_repro.bounds.outward import BoxRegion, linear_lower_bound
from paper_repro.bounds.radius_batch import torch_layers
from paper_repro.bounds.split_relaxation import Relaxation, relu_coefficients
from paper_repro.bounds.split_second_layer import SecondLayerBounds
from paper_repro.network import ReluNetwork


@dataclass
class Domains:
    """``B`` subdomains. ``splits``: int8 ``[B, N]`` (``N`` hidden ReLUs in layer order; ``+1``
    active, ``−1`` inactive, ``0`` free); ``alpha``, ``beta``: ``[B, N]``; ``lam``: ``[B, K]``
    (logits of the objective weights ``λ = softmax(lam)``)."""

    splits: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    lam: np.ndarray

    def __len__(self) -> int:
        return self.splits.shape[0]

    def take(self, index) -> Domains:
        """The subdomains ``index`` (a slice, an index array or a boolean mask over ``B``)."""
        return Domains(self.splits[index], self.alpha[index], self.beta[index], self.lam[index])

    @staticmethod
    def concat(parts: list[Domains]) -> Domains:
        """The subdomains of ``parts``, in order."""
        return Domains(
            *(np.concatenate([getattr(d, f.name) for d in parts]) for f in fields(Domains))
        )


@dataclass(frozen=True)
class BoundResult:
    """Per subdomain: ``lower`` (torch float64 value, ``[B]``; not a proof), the optimised
    ``domains``, ``x_star`` (``[B, n₀]``, the box corner minimising the final linear function:
    a candidate counterexample), ``branch`` (``[B]``, index in ``0..N−1`` of the free
    unstable ReLU to split next, ``−1`` if none), ``pre`` (the sound pre-activation bounds
    :meth:`SplitBounder.clipped` gave each subdomain, ``[B, N]`` each), ``empty`` (``[B]``:
    the subdomain's bounds cross somewhere, so no input of the box meets its splits; ``lower``
    means nothing there) and ``score`` (``[B, N]``: each free unstable ReLU's branching score,
    ``−inf`` elsewhere; ``branch`` is its argmax)."""

    lower: np.ndarray
    domains: Domains
    x_star: np.ndarray
    branch: np.ndarray
    pre: tuple[np.ndarray, np.ndarray]
    empty: np.ndarray
    score: np.ndarray


class SplitBounder:
    """Bounds of ``min_{x ∈ [lo, hi]} max_k (C f(x))_k`` over subdomains of the box.

    Args:
        net: the ReLU network ``f``.
        lo, hi: the box, ``[n₀]`` each.
        pre_bounds: sound ``(l_k, u_k)`` of every hidden pre-activation over the whole box.
        c: ``[K, n_L]`` rows; a subdomain is closed when its bound is ``> 0``.
        second_layer: bound each subdomain's second-layer pre-activations again under its
            first-layer splits (:class:`~paper_repro.bounds.split_second_layer.SecondLayerBounds`)
            instead of only clipping the root's.
        dtype: the torch type of :meth:`optimise` (float32 closed 1.34× the nodes in one test;
            the value only selects nodes and :meth:`certify` recomputes every bound in float64,
            rounded outward, so the type affects speed and tightness, never soundness).
            :meth:`tighten` and :meth:`certify` are float64 always.
    """

    def __init__(
        self,
        net: ReluNetwork,
        lo: np.ndarray,
        hi: np.ndarray,
        pre_bounds: list[tuple[np.ndarray, np.ndarray]],
        c: np.ndarray,
        second_layer: bool = True,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        self.net = net
        self.dtype = dtype
        self.region = BoxRegion(np.asarray(lo, np.float64), np.asarray(hi, np.float64))
        self.layers = torch_layers(net)
        self.sizes = [w.shape[0] for w in net.weights[:-1]]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(int)
        self.root_lo = np.concatenate([b[0] for b in pre_bounds])
        self.root_hi = np.concatenate([b[1] for b in pre_bounds])
        self.c = np.atleast_2d(np.asarray(c, np.float64))
        self.lo_t = torch.from_numpy(self.region.lo)
        self.hi_t = torch.from_numpy(self.region.hi)
        self._typed = {torch.float64: (self.layers, self.lo_t, self.hi_t)}
        if dtype != torch.float64:
            self._typed[dtype] = (
                [(w.to(dtype), b.to(dtype)) for w, b in self.layers],
                self.lo_t.to(dtype),
                self.hi_t.to(dtype),
            )
        self._second_layer = second_layer and len(self.sizes) > 1
        self._second: SecondLayerBounds | None = None  # built from the final root bounds

    @property
    def n_relus(self) -> int:
        return int(self.offsets[-1])

    def tighten(self, iterations: int, lr: float = 0.1, first: int = 2) -> int:
        """Tighten the root bounds of hidden layers ``first … L−1`` (in order) by optimising
        ``α`` separately for every bound (α-CROWN's intermediate bounds), each certified by the
        outward-rounded routine before it replaces the old one. Returns how many ReLUs became
        stable."""
        before = int(((self.root_lo < 0) & (self.root_hi > 0)).sum())
        for k in range(max(2, first), len(self.layers)):
            s = slice(self.offsets[k - 1], self.offsets[k])
            n, below = self.sizes[k - 1], int(self.offsets[k - 1])
            rows = np.vstack([np.eye(n), -np.eye(n)])
            lo, hi = (
                torch.from_numpy(np.tile(a[:below], (2 * n, 1)))
                for a in (self.root_lo, self.root_hi)
            )
            alpha0 = (hi >= -lo).to(torch.float64)
            alpha = alpha0.clone().requires_grad_(True)
            zeros = torch.zeros_like(lo)
            relax = self.relaxations(lo, hi, zeros, k)
            opt = torch.optim.Adam([alpha], lr=lr, fused=True)
            coef = torch.from_numpy(rows)
            for _ in range(iterations):
                value, _, _ = self.backward(coef, k, relax, alpha, zeros)
                opt.zero_grad()
                (-value.sum()).backward()
                opt.step()
                with torch.no_grad():
                    alpha.clamp_(0.0, 1.0)
            a = alpha.detach().numpy()
            pre = [(self.root_lo[t], self.root_hi[t]) for t in self.slices()[: k - 1]]
            alphas = [a[:, t] for t in self.slices()[: k - 1]]
            zero = np.zeros_like(a)
            zeros_k = [zero[:, t] for t in self.slices()[: k - 1]]
            bound = linear_lower_bound(
                self.net, rows, k, pre, self.region, self._rule(alphas, zeros_k, zeros_k)
            )
            self.root_lo[s] = np.maximum(self.root_lo[s], bound[:n])
            self.root_hi[s] = np.minimum(self.root_hi[s], -bound[n:])
        self._second = None
        return before - int(((self.root_lo < 0) & (self.root_hi > 0)).sum())

    def set_root_bounds(self, pre_bounds: list[tuple[np.ndarray, np.ndarray]]) -> None:
        """Replace the root bounds by other sound ones (``(l_k, u_k)`` per hidden layer, e.g.
        refined by :func:`paper_repro.bounds.refine_layers.refine_bounds`): any sound bounds
        over the whole box hold on every subdomain, so domains already made stay valid."""
        self.root_lo = np.concatenate([np.asarray(b[0], np.float64) for b in pre_bounds])
        self.root_hi = np.concatenate([np.asarray(b[1], np.float64) for b in pre_bounds])
        self._second = None

    def root(self) -> Domains:
        """The unsplit domain with CROWN's adaptive slopes, ``β = 0`` and equal ``λ``."""
        alpha = (self.root_hi >= -self.root_lo).astype(np.float64)[None]
        k = self.c.shape[0]
        return Domains(
            np.zeros((1, self.n_relus), np.int8), alpha, np.zeros_like(alpha), np.zeros((1, k))
        )

    def clipped(self, splits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sound pre-activation bounds of the subdomains ``splits`` (``[B, N]`` each): the root
        bounds (the second layer's updated under the first layer's splits, if enabled), clipped
        to the splits. A subdomain whose bounds cross (``lo > hi``) is empty."""
        lo = np.tile(self.root_lo, (len(splits), 1))
        hi = np.tile(self.root_hi, (len(splits), 1))
        if self._second_layer:
            first, second = self.slices()[:2]
            if self._second is None:
                self._second = SecondLayerBounds(
                    self.net,
                    self.region.lo,
                    self.region.hi,
                    (self.root_lo[first], self.root_hi[first]),
                    (self.root_lo[second], self.root_hi[second]),
                    self.dtype == torch.float32,
                )
            # nodes that differ only beyond the first layer (both children of a split deeper
            # down) share their second-layer bounds: compute each distinct row once
            rows, inverse = np.unique(splits[:, first], axis=0, return_inverse=True)
            l2, h2 = self._second.bounds(rows)
            lo[:, second], hi[:, second] = l2[inverse.ravel()], h2[inverse.ravel()]
        return _clip(lo, hi, splits)

    def typed(self, dtype: torch.dtype) -> tuple[list, torch.Tensor, torch.Tensor]:
        """The layers ``[(W, b)]`` and the box ``lo, hi`` (``[n₀]``) as torch tensors of
        ``dtype`` (float64 or the bounder's own type)."""
        return self._typed[dtype]

    def relaxations(self, lo, hi, splits, top: int) -> list[Relaxation]:
        """The per-node constants of hidden layers ``1 … top − 1`` (``[B, N]`` inputs)."""
        return [Relaxation.of(lo[:, s], hi[:, s], splits[:, s]) for s in self.slices()[: top - 1]]

    def bound(self, relax, alpha, beta, lam, trace: dict | None = None):
        """Torch bounds ``[B]``, the input coefficients ``[B, n₀]`` and each free unstable
        ReLU's loss per hidden layer (``[B, n_k]``; how much its relaxation costs the bound);
        ``trace``: see :meth:`below`."""
        coef = torch.softmax(lam, dim=1) @ torch.from_numpy(self.c).to(lam.dtype)  # [B, n_L]
        return self.backward(coef, len(self.layers), relax, alpha, beta, trace)

    def backward(self, coef, top, relax, alpha, beta, trace: dict | None = None):
        """:meth:`bound` of ``coef @ ẑ_top`` (``[B, n_top]``; ``top = L``: the outputs),
        through hidden layers ``top − 1 … 1`` with their relaxations ``relax``
        (:class:`~paper_repro.bounds.split_relaxation.Relaxation`)."""
        w, b = self._typed[coef.dtype][0][top - 1]
        const = torch.zeros(coef.shape[0], dtype=coef.dtype) + coef @ b
        return self.below(coef @ w, top - 1, relax, alpha, beta, const, trace)

    def below(self, g, top, relax, alpha, beta, const=None, trace: dict | None = None):
        """The backward pass from coefficients ``g`` (``[B, n_top]``) on ``h_top``, the output
        of hidden layer ``top`` (``0``: the input), down to the box, with the ``B`` rows'
        relaxations ``relax`` of hidden layers ``1 … top`` and their ``α, β`` (``[B, N]``):
        ``const`` (``[B]``, added first) plus the pass's constant and box minimum, the input
        coefficients ``[B, n₀]`` and the losses of hidden layers ``1 … top``. ``trace``, if
        given, gets for each hidden layer ``j ≤ top`` the tuple ``(g_j, Λ_j, loss_j, c_j)`` —
        the coefficients on ``h_j`` and ``ẑ_j``, the losses, and the bound's part so far (from
        the layers above ``h_j``) — and for ``j = 0`` ``(g_0, None, None, c_0)``."""
        layers, lo_t, hi_t = self._typed[g.dtype]
        if const is None:
            const = torch.zeros(g.shape[0], dtype=g.dtype)
        losses = []
        for j in range(top, 0, -1):
            s = slice(self.offsets[j - 1], self.offsets[j])
            coef, loss, const_k = relax[j - 1].apply(g, alpha[:, s], beta[:, s])
            if trace is not None:
                trace[j] = (g, coef, loss, const)
            const = const + const_k
            losses.append(loss)
            w, b = layers[j - 1]
            const = const + coef @ b
            g = coef @ w
        if trace is not None:
            trace[0] = (g, None, None, const)
        const = const + torch.minimum(g * lo_t, g * hi_t).sum(1)
        losses.reverse()
        return const, g, losses

    def optimise(
        self, domains: Domains, iterations: int, lr: float = 0.1, lr_beta: float = 0.05
    ) -> BoundResult:
        """Improve ``α, β, λ`` of every domain by ``iterations`` Adam steps of ``lr`` (``α``,
        ``λ``) and ``lr_beta`` (0: evaluate only); keeps each domain's best iterate."""
        lo_np, hi_np = self.clipped(domains.splits)
        dt = self.dtype
        lo, hi = torch.from_numpy(lo_np).to(dt), torch.from_numpy(hi_np).to(dt)
        relax = self.relaxations(lo, hi, torch.from_numpy(domains.splits), len(self.layers))
        alpha = torch.tensor(domains.alpha, dtype=dt, requires_grad=True)
        beta = torch.tensor(domains.beta, dtype=dt, requires_grad=True)
        lam = torch.tensor(domains.lam, dtype=dt, requires_grad=True)
        groups = [{"params": [alpha], "lr": lr}, {"params": [beta], "lr": lr_beta}]
        if self.c.shape[0] > 1:
            groups.append({"params": [lam], "lr": lr})
        opt = torch.optim.Adam(groups, fused=True) if iterations else None
        best = torch.full((len(domains),), -np.inf, dtype=dt)
        keep = [np.array(a, np.float64) for a in (domains.alpha, domains.beta, domains.lam)]
        g0 = loss = None
        for it in range(iterations + 1):
            value, g, losses = self.bound(relax, alpha, beta, lam)
            better = (value > best).detach()
            if it == 0 or bool(better.any()):
                idx = better.numpy()
                best = torch.where(better, value.detach(), best)
                for arr, p in zip(keep, (alpha, beta, lam), strict=True):
                    arr[idx] = p.detach().numpy()[idx]
                g0 = g.detach() if g0 is None else torch.where(better[:, None], g.detach(), g0)
                if losses:
                    now = torch.cat(losses, dim=1).detach()
                    loss = now if loss is None else torch.where(better[:, None], now, loss)
            if it == iterations or bool((best > 0).all()):
                break
            assert opt is not None
            opt.zero_grad()
            (-value.sum()).backward()
            opt.step()
            with torch.no_grad():
                alpha.clamp_(0.0, 1.0)
                beta.clamp_(min=0.0)
        x_star = torch.where(g0 > 0, self.lo_t, self.hi_t).numpy()
        out = Domains(domains.splits, keep[0], keep[1], keep[2])
        score = self._score(loss, lo_np, hi_np)
        branch = np.where(np.isfinite(score).any(axis=1), score.argmax(axis=1), -1)
        empty = (lo_np > hi_np).any(axis=1)
        return BoundResult(best.numpy(), out, x_star, branch, (lo_np, hi_np), empty, score)

    @staticmethod
    def _score(loss, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Per domain and ReLU (``[B, N]``), the branching score of a free unstable ReLU: its loss
        (ties and zero losses: the larger triangle ``−l·u/(u−l)``); ``−inf`` if it is stable or
        split."""
        unstable = (lo < 0) & (hi > 0)
        height = np.where(unstable, -lo * hi / np.where(unstable, hi - lo, 1.0), 0.0)
        score = height * 1e-6 + (0.0 if loss is None else loss.numpy())
        return np.where(unstable, score, -np.inf)

    def filtered_branch(
        self, res: BoundResult, index: np.ndarray, candidates: int, chunk: int = 64
    ) -> np.ndarray:
        """The ReLU each domain ``index`` of ``res`` (``[M]``) splits next by filtered smart
        branching among its ``candidates`` top-scored ReLUs
        (:func:`paper_repro.bounds.split_branching.filtered_branch`; ``−1``: none free)."""
        return split_branching.filtered_branch(self, res, index, candidates, chunk)

    def certify(
        self,
        domains: Domains,
        pre: tuple[np.ndarray, np.ndarray] | None = None,
        rows: np.ndarray | None = None,
    ) -> np.ndarray:
        """Sound lower bounds ``[B]`` of the domains' objective, with their ``α, β, λ``,
        through :func:`~paper_repro.bounds.outward.linear_lower_bound` (outward rounded).
        ``pre``: the domains' :meth:`clipped` bounds if already computed (``[B, N]`` each);
        ``rows``: each domain's objective on the outputs (``[B, n_L]``) instead of ``λ``'s
        weights on ``C`` (the bound is then of ``min rows_b · f(x)`` over domain ``b``)."""
        lo, hi = self.clipped(domains.splits) if pre is None else pre
        if rows is None:
            lam = domains.lam - domains.lam.max(axis=1, keepdims=True)
            weights = np.exp(lam) / np.exp(lam).sum(axis=1, keepdims=True)  # ≥ 0: any do
            rows = weights @ self.c
        pre = [(lo[:, s], hi[:, s]) for s in self.slices()]
        alpha = [domains.alpha[:, s] for s in self.slices()]
        beta = [domains.beta[:, s] for s in self.slices()]
        split = [domains.splits[:, s] for s in self.slices()]
        rule = self._rule(alpha, beta, split)
        return linear_lower_bound(self.net, rows, len(self.net.weights), pre, self.region, rule)

    @staticmethod
    def _rule(alpha: list, beta: list, split: list):
        """The :data:`~paper_repro.bounds.outward.SlopeRule` of per-row ``α, β`` and splits
        (lists over hidden layers of ``[m, n_k]`` arrays)."""

        def rule(k: int, g: np.ndarray, lk: np.ndarray, hk: np.ndarray) -> np.ndarray:
            lam_k, _ = relu_coefficients(
                torch.from_numpy(g),
                torch.from_numpy(np.asarray(lk, np.float64)),
                torch.from_numpy(np.asarray(hk, np.float64)),
                torch.from_numpy(split[k - 1].astype(np.float64)),
                torch.from_numpy(np.clip(alpha[k - 1], 0.0, 1.0).astype(np.float64)),
                torch.from_numpy(np.maximum(beta[k - 1], 0.0).astype(np.float64)),
            )
            return lam_k.numpy()

        return rule

    def slices(self) -> list[slice]:
        """Each hidden layer's slice of the ``N`` ReLUs."""
        return [slice(self.offsets[i], self.offsets[i + 1]) for i in range(len(self.sizes))]

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        """``max_k (C f(x))_k`` for inputs ``x`` (``[B, n₀]``) in float64: ``≤ 0`` marks a
        candidate counterexample (to be checked exactly by the caller)."""
        return (self.net.forward(x) @ self.c.T).max(axis=1)


def children(parents: Domains, branch: np.ndarray) -> Domains:
    """Two children per parent (``[2B, …]``), split on ReLU ``branch[b]`` (``[B]``): active
    (first half) and inactive; they inherit ``α, λ`` and ``β`` (0 on the new split)."""
    rows = np.arange(len(parents))
    out = []
    for phase in (1, -1):
        s = parents.splits.copy()
        s[rows, branch] = phase
        b = parents.beta.copy()
        b[rows, branch] = 0.0
        out.append(Domains(s, parents.alpha.copy(), b, parents.lam.copy()))
    return Domains.concat(out)


def _clip(lo: np.ndarray, hi: np.ndarray, splits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pre-activation bounds ``[B, N]`` clipped to the splits (active: ``ẑ ≥ 0``, inactive:
    ``ẑ ≤ 0``); a subdomain whose bounds then cross holds no input."""
    return (
        np.where(splits > 0, np.maximum(lo, 0.0), lo),
        np.where(splits < 0, np.minimum(hi, 0.0), hi),
    )
