"""Adversarial attacks as small callables configured by dataclasses (torchattacks-style).

Every attack maps ``(model, x [B,784] in [0,1], y [B]) -> x_adv [B,784]`` in [0,1].
"""

from paper_repro.attacks.gradient import FGSM, PGD, IteratedFGSM

__all__ = ["FGSM", "PGD", "IteratedFGSM"]
