"""The papers' instance sets ("studies", config ``experiments.studies``) and their jobs.

A study names models, norms and a number of MNIST test images; for each (model, norm) it asks
for the certified minimal adversarial example of every image — one query per target class, or
one untargeted query. Which images: one seeded order of the test set (:func:`select_images`),
keeping those that *every* model of the study classifies correctly (Carlini et al. and Pahlavan
et al. attack correctly classified images only; a shared set makes model comparisons paired),
optionally one digit at a time (Carlini et al.'s 10 × 10 source × target grids).

A (model, norm) pair of a study is split into ``shards`` jobs (images dealt round-robin); each
job streams its records to a checkpoint as they finish (:func:`run_shard`), so an interrupted
run loses nothing finished.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paper_repro.errors import PaperReproError
from paper_repro.network import ReluNetwork
from paper_repro.query import Norm


@dataclass(frozen=True)
class Study:
    """One instance set (a validated ``experiments.studies.<name>`` entry).

    Attributes:
        name: e.g. ``"carlini"``.
        models: model names (``{arch}_{method}``).
        norms: distances to minimise.
        images: test images per (model, norm).
        per_class: draw the images one digit at a time (0, 1, …, 9, 0, …).
        untargeted: one untargeted query per image instead of one per target class.
        max_distance: resolve ``δ*`` only up to this distance (``None``: the whole domain).
        timeout: seconds per query.
        shards: jobs per (model, norm).
        attack_chunk: images attacked in one batched call
            (:class:`~paper_repro.experiments.attack_starts.StartCache`).
    """

    name: str
    models: tuple[str, ...]
    norms: tuple[Norm, ...]
    images: int
    per_class: bool
    untargeted: bool
    max_distance: float | None
    timeout: float
    shards: int
    attack_chunk: int = 10

    @classmethod
    def from_config(cls, name: str, cfg: dict[str, Any]) -> Study:
        """The study ``name`` of a validated config (its timeout defaults to the global one)."""
        ex = cfg["experiments"]
        if ex["studies"].get(name) is None:
            known = ", ".join(sorted(ex["studies"])) or "none"
            raise PaperReproError(f"no study {name!r} in the config (configured: {known})")
        s = ex["studies"][name]
        return cls(
            name=name,
            models=tuple(s["models"]),
            norms=tuple(Norm.parse(n) for n in s["norms"]),
            images=int(s["images"]),
            per_class=bool(s["per_class"]),
            untargeted=bool(s["untargeted"]),
            max_distance=s["max_distance"],
            timeout=float(s["timeout"] if s["timeout"] is not None else ex["timeout"]),
            shards=min(int(s["shards"]), int(s["images"])),
            attack_chunk=int(s["attack_chunk"]),
        )

    def job_minutes(self, classes: int = 10) -> float:
        """The longest one job of the study can spend in queries (minutes): its images ×
        queries per image (1 untargeted, ``classes − 1`` targeted) × the per-query limit. The
        pipeline uses it as the job's runtime estimate and its scheduling priority (the longest
        jobs first, so that no long job starts last and leaves the other core idle)."""
        per_image = 1 if self.untargeted else classes - 1
        images = -(-self.images // self.shards)
        return images * per_image * self.timeout / 60.0

    def output(self, model: str, norm: Norm | str, shard: int, root: str = "results") -> str:
        """The job's declared output (JSONL, one record per query)."""
        return f"{root}/instances/{self.name}/{model}/{norm}/{shard}.jsonl"

    def outputs(self, root: str = "results") -> list[str]:
        """Every job output of the study."""
        return [
            self.output(m, n, k, root)
            for m in self.models
            for n in self.norms
            for k in range(self.shards)
        ]

    def shard_images(self, selected: Sequence[int], shard: int) -> list[int]:
        """The images of job ``shard`` (``0 ≤ shard < shards``): every ``shards``-th one."""
        if not 0 <= shard < self.shards:
            raise PaperReproError(f"shard {shard} is not one of 0..{self.shards - 1}")
        return [int(i) for i in selected[shard :: self.shards]]


def studies(cfg: dict[str, Any]) -> dict[str, Study]:
    """All studies of a validated config, by name (those set to null are dropped)."""
    have = cfg["experiments"]["studies"]
    return {name: Study.from_config(name, cfg) for name in have if have[name] is not None}


def select_images(
    labels: np.ndarray, correct: np.ndarray, count: int, per_class: bool, seed: int
) -> list[int]:
    """``count`` test indices in a seeded order, each correctly classified (``correct[i]``).

    Args:
        labels: ``[N]`` true classes of the test set.
        correct: ``[N]`` bool, every model of the study predicts ``labels[i]``.
        count: images wanted.
        per_class: take them one class at a time (0, 1, …, 9, 0, …): ``count = 10`` gives one
            image per digit.
        seed: the order is ``numpy.random.default_rng(seed).permutation(N)``.

    Raises:
        PaperReproError: fewer than ``count`` eligible images (or none of some class).
    """
    labels, correct = np.asarray(labels), np.asarray(correct, dtype=bool)
    order = np.random.default_rng(seed).permutation(labels.shape[0])
    eligible = order[correct[order]]
    if not per_class:
        if eligible.size < count:
            raise PaperReproError(
                f"only {eligible.size} test images are classified correctly by every model of "
                f"the study; {count} were asked for"
            )
        return [int(i) for i in eligible[:count]]
    classes = np.unique(labels)
    queues = {int(c): [int(i) for i in eligible if labels[i] == c] for c in classes}
    picked: list[int] = []
    while len(picked) < count:
        c = int(classes[len(picked) % classes.size])
        rank = len(picked) // classes.size
        if rank >= len(queues[c]):
            raise PaperReproError(
                f"digit {c} has only {len(queues[c])} test images classified correctly by every "
                f"model of the study; {count} images one digit at a time need more"
            )
        picked.append(queues[c][rank])
    return picked


def study_images(
    study: Study, networks: Sequence[ReluNetwork], images: np.ndarray, labels: np.ndarray, seed: int
) -> list[int]:
    """:func:`select_images` for ``study`` on a test split (``images`` ``[N, 784]``), eligible
    when all ``networks`` (the study's models) classify an image correctly."""
    correct = np.ones(labels.shape[0], dtype=bool)
    xs = np.asarray(images, dtype=np.float64)
    for net in networks:
        correct &= np.argmax(net.forward(xs), axis=1) == labels
    return select_images(labels, correct, study.images, study.per_class, seed)


def run_shard(
    images: Sequence[int],
    solve_image: Callable[[int], list[dict[str, Any]]],
    out: str | Path,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Solve ``images`` in order with ``solve_image`` (which checkpoints its records), log one
    line per image, and write all records to ``out`` at the end (atomically)."""
    from paper_repro.experiments.minimal_runs import finish

    recs: list[dict[str, Any]] = []
    for n, image in enumerate(images, 1):
        got = solve_image(image)
        recs.extend(got)
        optimal = sum(r["status"] == "optimal" for r in got)
        seconds = sum(r["seconds"] for r in got)
        log(f"[{n}/{len(images)}] image {image}: {optimal}/{len(got)} optimal, {seconds:.1f} s")
    finish(recs, out)
    return recs
