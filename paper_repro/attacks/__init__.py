"""Adversarial attacks as small callables configured by dataclasses (torchattacks-style).

Untargeted attacks map ``(model, x [B,784] in [0,1], y [B]) -> x_adv [B,784]`` in [0,1]; the
targeted minimal-distance attacks take ``targets [B]`` as well and return a result record
(adversarial inputs, float64-verified success flags and distances).

* :mod:`~paper_repro.attacks.gradient` — FGSM, PGD, Pahlavan et al.'s targeted iterated FGSM.
* :mod:`~paper_repro.attacks.carlini_wagner` — CW L∞ and L1 (Carlini et al.'s ``x′_init``).
* :mod:`~paper_repro.attacks.closest_fgsm` — Pahlavan et al.'s δ bisection ("closest FGSM").
* :mod:`~paper_repro.attacks.common` / :mod:`~paper_repro.attacks.tracking` — success test
  (float64, ties count for the target), distances, result bookkeeping.
"""

from paper_repro.attacks.carlini_wagner import CarliniWagnerL1, CarliniWagnerLinf, CWResult
from paper_repro.attacks.closest_fgsm import (
    ClosestFGSM,
    ClosestFGSMResult,
    Criterion,
    all_target_pairs,
)
from paper_repro.attacks.common import Norm, distance, is_targeted_adversarial, targeted_margin
from paper_repro.attacks.gradient import FGSM, PGD, IteratedFGSM

__all__ = [
    "FGSM",
    "PGD",
    "CWResult",
    "CarliniWagnerL1",
    "CarliniWagnerLinf",
    "ClosestFGSM",
    "ClosestFGSMResult",
    "Criterion",
    "IteratedFGSM",
    "Norm",
    "all_target_pairs",
    "distance",
    "is_targeted_adversarial",
    "targeted_margin",
]
