"""Training: ``vanilla`` (cross-entropy, Adam; Pahlavan et al. Sec. 3), ``pgd`` (Madry et al.
adversarial training with L∞ PGD from a random start), ``alp`` (adversarial logit pairing,
Kannan et al., as Pahlavan et al. describe it: targeted iterated FGSM towards random labels,
loss ``CE(x) + CE(x_adv) + λ‖f(x) − f(x_adv)‖²``, trained at ε = 0.3 then fine-tuned at 0.1) and
``wk`` (Wong & Kolter's provably robust training: the robust cross-entropy of their Eq. 14,
``CE(−J_ε(x, g(e_y 1ᵀ − I)), y)``, through the dual network of their Sec. 3 / Alg. 1, with ε
ramped up over the first epochs).

Everything is seeded: the same config, data and seed give bit-identical weights on one machine.
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from paper_repro.attacks.gradient import PGD, IteratedFGSM
from paper_repro.bounds.dual_torch import robust_loss
from paper_repro.data import Split
from paper_repro.errors import PaperReproError
from paper_repro.models import MLP


class Method(enum.StrEnum):
    """How a model is trained."""

    VANILLA = "vanilla"
    PGD = "pgd"
    ALP = "alp"
    WK = "wk"

    @classmethod
    def parse(cls, value: str) -> Method:
        try:
            return cls(value)
        except ValueError:
            raise PaperReproError(
                f"unknown training method {value!r}: expected one of vanilla, pgd, alp, wk"
            ) from None


class LrSchedule(enum.StrEnum):
    """Learning rate over the run: ``constant``, or ``cosine`` annealing to 0 (per batch)."""

    CONSTANT = "constant"
    COSINE = "cosine"


@dataclass(frozen=True)
class Stage:
    """One phase of adversarial training at radius ``eps`` for ``epochs`` passes.

    During the first ``ramp_epochs`` of the stage ε grows linearly from ``eps_start`` (default:
    the previous stage's ε, 0 for the first stage) to ``eps``: small MLPs trained at ε = 0.3 from
    the start collapse; Wong & Kolter ramp ε up the same way.
    """

    eps: float
    epochs: int
    ramp_epochs: int = 0
    eps_start: float | None = None


@dataclass(frozen=True)
class TrainOptions:
    """Everything that determines a training run (built from the ``training`` config section).

    Attributes:
        method: vanilla, pgd or alp.
        stages: ``(eps, epochs)`` phases; vanilla has one stage with ``eps = 0``.
        lr: Adam learning rate.
        batch_size: minibatch size.
        steps: attack iterations per batch (PGD / iterated FGSM).
        step_size: attack step α (pgd), or ``None`` to use ``step_size_fraction · ε`` (alp).
        step_size_fraction: α as a fraction of ε (alp).
        pairing_weight: λ of the logit-pairing term (alp).
        init_from_vanilla: start from the trained vanilla model of the same arch.
        lr_schedule: constant or cosine-annealed learning rate.
        weight_decay: decoupled weight decay (AdamW, Loshchilov & Hutter); 0 = plain Adam.
        clip: (wk) intersect the ε-ball with [0, 1]ⁿ in the dual bound (the paper: no).
    """

    method: Method
    stages: tuple[Stage, ...]
    lr: float
    batch_size: int
    steps: int = 0
    step_size: float | None = None
    step_size_fraction: float = 0.25
    pairing_weight: float = 1.0
    init_from_vanilla: bool = False
    lr_schedule: LrSchedule = LrSchedule.CONSTANT
    weight_decay: float = 0.0
    clip: bool = False

    @classmethod
    def from_config(cls, method: str, training: dict[str, Any]) -> TrainOptions:
        """Options for ``method`` from the validated ``training`` config section."""
        m = Method.parse(method)
        sec = training[m.value]
        common = {
            "lr": sec["lr"],
            "batch_size": int(sec.get("batch_size") or training["batch_size"]),
            "lr_schedule": LrSchedule(sec.get("lr_schedule", "constant")),
            "weight_decay": float(sec.get("weight_decay", 0.0)),
            "init_from_vanilla": sec.get("init", "scratch") == "vanilla",
        }
        if m is Method.VANILLA:
            return cls(m, (Stage(0.0, sec["epochs"]),), **common)
        if m is Method.PGD:
            stage = Stage(sec["eps"], sec["epochs"], sec["ramp_epochs"])
            return cls(m, (stage,), steps=sec["steps"], step_size=sec["step_size"], **common)
        if m is Method.WK:
            stage = Stage(sec["eps"], sec["epochs"], sec["ramp_epochs"], sec["eps_start"])
            return cls(m, (stage,), clip=sec["clip"], **common)
        stages = tuple(Stage(s["eps"], s["epochs"], s.get("ramp_epochs", 0)) for s in sec["stages"])
        return cls(
            m,
            stages,
            steps=sec["steps"],
            step_size_fraction=sec["step_size_fraction"],
            pairing_weight=sec["pairing_weight"],
            **common,
        )


def _batches(n: int, batch: int, gen: torch.Generator) -> Iterator[torch.Tensor]:
    perm = torch.randperm(n, generator=gen)
    for i in range(0, n, batch):
        yield perm[i : i + batch]


def _loss_fn(
    opts: TrainOptions, eps: float, gen: torch.Generator
) -> Callable[[MLP, torch.Tensor, torch.Tensor], torch.Tensor]:
    if opts.method is Method.VANILLA:
        return lambda model, x, y: F.cross_entropy(model(x), y)
    if opts.method is Method.PGD:
        attack = PGD(eps=eps, steps=opts.steps, step_size=float(opts.step_size))

        def pgd_loss(model: MLP, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            x_adv = attack(model, x, y, generator=gen)
            return F.cross_entropy(model(x_adv), y)

        return pgd_loss
    if opts.method is Method.WK:
        return lambda model, x, y: robust_loss(model, x, y, eps, opts.clip)[0]
    ifgsm = IteratedFGSM(eps=eps, steps=opts.steps, step_size=opts.step_size_fraction * eps)

    def alp_loss(model: MLP, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x_adv = ifgsm(model, x, y, generator=gen)
        z, z_adv = model(x), model(x_adv)
        pairing = ((z - z_adv) ** 2).sum(dim=1).mean()
        return F.cross_entropy(z, y) + F.cross_entropy(z_adv, y) + opts.pairing_weight * pairing

    return alp_loss


def train_model(
    hidden: tuple[int, ...],
    options: TrainOptions,
    data: Split,
    seed: int,
    init: MLP | None = None,
    progress: bool = False,
) -> tuple[MLP, dict[str, Any]]:
    """Train an MLP with ``hidden`` sizes on ``data`` and return it with a summary.

    Args:
        hidden: hidden layer sizes, e.g. ``(24, 24)``.
        options: see :class:`TrainOptions`.
        data: the training split (``[N, 784]`` in [0,1]).
        seed: seeds initialisation, batch order and attack randomness.
        init: weights to start from (the vanilla model for fine-tuned methods).
        progress: show a tqdm bar over epochs.

    Returns:
        The trained model (eval mode) and ``{"train_seconds", "train_cpu_seconds",
        "final_loss", "epochs"}`` (wall and this process's CPU seconds of the training loop).
    """
    if options.init_from_vanilla and init is None:
        raise PaperReproError(f"{options.method} training starts from a vanilla model: pass --init")
    torch.manual_seed(seed)
    model = MLP(hidden)
    if init is not None:
        if init.hidden != model.hidden:
            raise PaperReproError(f"init model has hidden sizes {init.hidden}, expected {hidden}")
        model.load_state_dict(init.state_dict())
    gen = torch.Generator().manual_seed(seed)
    x_all = torch.from_numpy(data.images)
    y_all = torch.from_numpy(data.labels)
    if options.weight_decay > 0:
        opt: torch.optim.Optimizer = torch.optim.AdamW(
            model.parameters(), lr=options.lr, weight_decay=options.weight_decay
        )
    else:
        opt = torch.optim.Adam(model.parameters(), lr=options.lr)
    start, cpu_start = time.perf_counter(), time.process_time()
    total_epochs = sum(s.epochs for s in options.stages)
    per_epoch = -(-len(y_all) // options.batch_size)
    total_steps, step = total_epochs * per_epoch, 0
    bar = tqdm(total=total_epochs, desc=f"train {options.method}", disable=not progress)
    loss = torch.tensor(float("nan"))
    prev_eps = 0.0
    for stage in options.stages:
        start_eps = prev_eps if stage.eps_start is None else stage.eps_start
        for epoch in range(stage.epochs):
            frac = min(1.0, (epoch + 1) / stage.ramp_epochs) if stage.ramp_epochs else 1.0
            eps = start_eps + frac * (stage.eps - start_eps)
            loss_fn = _loss_fn(options, eps, gen)
            model.train()
            for idx in _batches(len(y_all), options.batch_size, gen):
                if options.lr_schedule is LrSchedule.COSINE:
                    for group in opt.param_groups:
                        group["lr"] = (
                            options.lr * 0.5 * (1 + math.cos(math.pi * step / total_steps))
                        )
                step += 1
                loss = loss_fn(model, x_all[idx], y_all[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            bar.update(1)
            bar.set_postfix(eps=f"{eps:.3f}", loss=f"{loss.item():.3f}")
        prev_eps = stage.eps
    bar.close()
    info = {
        "train_seconds": time.perf_counter() - start,
        "train_cpu_seconds": time.process_time() - cpu_start,
        "final_loss": float(loss.item()),
        "epochs": total_epochs,
    }
    return model.eval(), info
