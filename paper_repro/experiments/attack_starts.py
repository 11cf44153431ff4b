"""The attacks that start every exact search, batched over several images.

Each query of a study starts from a Carlini–Wagner adversarial example (Carlini et al. Sec. 3)
and, for L∞, is compared with Pahlavan et al.'s closest iterated-FGSM adversary. Both attacks are
batched torch loops whose cost on these small MLPs is mostly per step, not per row: one call on
10 images × 9 targets costs about as much as 2.5 calls on one image (measured on 60x30_vanilla,
CW L∞: 5.2 s for 90 rows vs 2.0 s for 9). :class:`StartCache` therefore attacks a job's images
``chunk`` at a time, in chunks aligned to the job's image list, so a resumed job attacks exactly
the same batches as an uninterrupted one (the FGSM start noise is drawn per batch row).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from paper_repro.models import MLP
from paper_repro.query import Norm

if TYPE_CHECKING:
    from paper_repro.experiments.minimal_runs import RunSettings


@dataclass(frozen=True)
class Starts:
    """One image's attacks towards each class ``≠ label`` in ascending order (9 rows for MNIST):
    ``cw_adv`` ``[T, n]`` (NaN rows where CW found nothing) and ``cw_dist`` ``[T]`` (``inf``
    there); for L∞ also ``fg_adv`` / ``fg_delta`` (closest FGSM), else ``None``."""

    cw_adv: np.ndarray
    cw_dist: np.ndarray
    fg_adv: np.ndarray | None
    fg_delta: np.ndarray | None

    def rows(self, classes: Sequence[int], label: int) -> Starts:
        """The rows of ``classes`` (each ``≠ label``)."""
        idx = [c - (c > label) for c in classes]
        fg = self.fg_adv is not None and self.fg_delta is not None
        return Starts(
            self.cw_adv[idx],
            self.cw_dist[idx],
            self.fg_adv[idx] if fg else None,
            self.fg_delta[idx] if fg else None,
        )


def attack_images(
    model: MLP,
    xs: np.ndarray,
    labels: Sequence[int],
    num_classes: int,
    norm: Norm,
    settings: RunSettings,
) -> list[Starts]:
    """CW (and for L∞ closest-FGSM) attacks of images ``xs`` ``[m, n]`` towards every class
    ``≠`` their label, in one batched call per attack (``m·(num_classes − 1)`` rows), with the
    attacks of ``settings``."""
    rows_x, rows_y, rows_t = [], [], []
    for x, label in zip(xs, labels, strict=True):
        for t in range(num_classes):
            if t != label:
                rows_x.append(np.asarray(x, np.float32))
                rows_y.append(int(label))
                rows_t.append(t)
    x_t = torch.from_numpy(np.stack(rows_x))
    y_t = torch.tensor(rows_y, dtype=torch.long)
    t_t = torch.tensor(rows_t, dtype=torch.long)
    attack = settings.cw_linf if norm is Norm.LINF else settings.cw_l1
    cw = attack(model, x_t, y_t, t_t)
    cw_adv, cw_dist = cw.x_adv.double().numpy(), cw.distance.double().numpy()
    fg_adv = fg_delta = None
    if norm is Norm.LINF:
        fg = settings.closest_fgsm(model, x_t, y_t, t_t)
        fg_adv, fg_delta = fg.x_adv.double().numpy(), fg.delta.double().numpy()
    per = num_classes - 1
    out = []
    for i in range(len(labels)):
        s = slice(i * per, (i + 1) * per)
        out.append(
            Starts(
                cw_adv[s],
                cw_dist[s],
                None if fg_adv is None else fg_adv[s],
                None if fg_delta is None else fg_delta[s],
            )
        )
    return out


class StartCache:
    """Attacks of a job's ``images`` (MNIST indices, in the job's order), computed ``chunk``
    images at a time when one of them is first asked for.

    Args:
        attack: ``attack(indices) -> list[Starts]`` for a chunk of image indices (e.g.
            :func:`attack_images` on those images).
        images: the job's image indices, in order.
        chunk: images per batched attack.
    """

    def __init__(
        self, attack: Callable[[list[int]], list[Starts]], images: Sequence[int], chunk: int
    ) -> None:
        if chunk < 1:
            raise ValueError(f"chunk must be ≥ 1, got {chunk}")
        self._attack = attack
        self._order = {int(im): i for i, im in enumerate(images)}
        self._images = [int(im) for im in images]
        self._chunk = chunk
        self._cache: dict[int, Starts] = {}

    def get(self, image: int) -> Starts:
        """The attacks of ``image`` (one of the job's images)."""
        if image not in self._cache:
            first = self._order[int(image)] // self._chunk * self._chunk
            part = self._images[first : first + self._chunk]
            self._cache = dict(zip(part, self._attack(part), strict=True))
        return self._cache[image]
