"""Carlini et al.'s 10 × 10 figures: for one image of each digit (rows, source label 0–9) its
adversarial example towards each target label (columns), the original on the diagonal — CW
examples beside provably minimal ones, for N and N̄ (their Figs. 2–5 layout).

Each grid is drawn as one 280 × 280 mosaic (a 28 × 28 tile per cell), so a figure of eight
grids stays one image per panel rather than 800 axes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from paper_repro.errors import PaperReproError
from paper_repro.experiments.plots import NORM_NAMES, SavedFigure, _save, _vec

TILE = 28
MISSING = 0.5  # grey tile: no example (target not reached, or no image of that digit)


def digit_mosaic(
    df: pd.DataFrame,
    originals: dict[int, np.ndarray],
    model: str,
    norm: str,
    column: str,
    classes: int = 10,
) -> tuple[np.ndarray, int]:
    """The ``[280, 280]`` mosaic of one model, norm and kind of example.

    Args:
        df: instance records (:func:`~paper_repro.experiments.minimal_runs.load_records`).
        originals: test index → ``[784]`` image.
        model, norm: which records.
        column: ``"witness"`` (the certified minimal example) or ``"cw_adv"`` (the CW start).
        classes: grid size.

    Returns:
        The mosaic (values in [0, 1], grey where no example) and the number of cells filled
        off the diagonal. Row ``s`` shows the first image (smallest index) of label ``s``.
    """
    d = df[(df["model"] == model) & (df["norm"] == norm) & df["target"].notna()]
    mosaic = np.full((classes * TILE, classes * TILE), MISSING)
    filled = 0
    for s in range(classes):
        rows = d[d["label"] == s]
        if rows.empty:
            continue
        image = int(rows["image"].min())
        rows = rows[rows["image"] == image].set_index("target")
        for t in range(classes):
            if t == s:
                tile = originals.get(image)
            else:
                tile = _vec(rows.at[t, column]) if t in rows.index else None
                filled += tile is not None
            if tile is not None:
                block = np.asarray(tile, dtype=float).reshape(TILE, TILE)
                mosaic[s * TILE : (s + 1) * TILE, t * TILE : (t + 1) * TILE] = block
    return mosaic, filled


def plot_digit_grids(
    df: pd.DataFrame,
    originals: dict[int, np.ndarray],
    models: Sequence[str],
    norms: Sequence[str],
    path: str | Path,
    names: dict[str, str] | None = None,
) -> SavedFigure:
    """One row of panels per (model, norm): CW examples (left) and certified minimal examples
    (right), each a 10 × 10 grid of source label (rows) × target label (columns).

    Raises:
        PaperReproError: no targeted records of these models and norms.
    """
    panels = [(m, n) for m in models for n in norms]
    if not panels:
        raise PaperReproError("no model and norm to plot")
    fig, axes = plt.subplots(len(panels), 2, figsize=(9, 4.6 * len(panels)), squeeze=False)
    total = 0
    for i, (model, norm) in enumerate(panels):
        label = f"{(names or {}).get(model, model)} ({model}), {NORM_NAMES.get(norm, norm)}"
        for j, (column, kind) in enumerate((("cw_adv", "CW"), ("witness", "minimal"))):
            mosaic, filled = digit_mosaic(df, originals, model, norm, column)
            total += filled
            ax = axes[i, j]
            ax.imshow(mosaic, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ticks = np.arange(10) * TILE + TILE / 2
            ax.set_xticks(ticks, [str(t) for t in range(10)], fontsize=8)
            ax.set_yticks(ticks, [str(t) for t in range(10)], fontsize=8)
            ax.set_xlabel("target label", fontsize=9)
            ax.set_ylabel("source label", fontsize=9)
            ax.set_title(f"{kind}: {label}", fontsize=10)
    if total == 0:
        plt.close(fig)
        raise PaperReproError(f"no adversarial examples of {list(models)} to show")
    fig.suptitle("Source × target grids: CW vs provably minimal examples (grey: none)")
    return _save(fig, path)
