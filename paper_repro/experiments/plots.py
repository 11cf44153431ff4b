"""Figures of the four notebooks (matplotlib, Agg backend): every ``plot_*`` function writes
one PNG and returns its path (a :class:`SavedFigure`, which Jupyter shows inline); the last three
functions pick the images those figures show. Distances are in [0, 1] pixel units unless a label
says ×255 (Pahlavan et al.).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from paper_repro.errors import PaperReproError
from paper_repro.exact.witnesses import records
from paper_repro.experiments import pahlavan_metrics as pm
from paper_repro.experiments import wong_kolter_metrics as wk

DPI = 110
NORM_NAMES = {"linf": "L∞", "l1": "L1"}


class SavedFigure(type(Path())):
    """The path of a PNG written by a ``plot_*`` function; in a notebook it displays as the
    image itself (``_repr_png_``), so a figure shows where it is made, not only on disk."""

    def _repr_png_(self) -> bytes:
        return self.read_bytes()


def _save(fig: plt.Figure, path: str | Path) -> SavedFigure:
    path = SavedFigure(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _need(frame: pd.DataFrame, what: str) -> None:
    if frame is None or len(frame) == 0:
        raise PaperReproError(f"nothing to plot: no {what}")


def plot_examples(
    rows: dict[str, Sequence[np.ndarray | None]],
    titles: Sequence[str],
    path: str | Path,
    title: str,
    captions: dict[str, Sequence[str]] | None = None,
) -> Path:
    """A grid of 28×28 digits: one row per entry of ``rows`` (e.g. original, CW, minimal; each
    a list of ``[784]`` images in [0, 1] or ``None`` for "not found"), one column per example
    with ``titles``, optional per-image ``captions`` (same keys and lengths as ``rows``) —
    Carlini et al.'s figures of originals and adversarial examples."""
    n = len(titles)
    if n == 0 or any(len(v) != n for v in rows.values()):
        raise PaperReproError("every row needs one image (or None) per title")
    fig, axes = plt.subplots(len(rows), n, figsize=(1.5 * n + 1, 1.7 * len(rows)), squeeze=False)
    for i, (name, images) in enumerate(rows.items()):
        for j, img in enumerate(images):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if img is not None:
                ax.imshow(np.asarray(img, dtype=float).reshape(28, 28), cmap="gray", vmin=0, vmax=1)
            else:
                ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes)
            if i == 0:
                ax.set_title(titles[j], fontsize=9)
            if captions and name in captions:
                ax.set_xlabel(captions[name][j], fontsize=8)
        axes[i, 0].set_ylabel(name, fontsize=9)
    fig.suptitle(title)
    return _save(fig, path)


def plot_switched_relus(df: pd.DataFrame, models: Sequence[str], path: str | Path) -> Path:
    """Histograms of switched ReLUs between ``x`` and its minimal example (Carlini Sec. 4.2),
    one panel per norm, one histogram per model."""
    _need(df, "records")
    norms = sorted(df["norm"].unique())
    fig, axes = plt.subplots(1, len(norms), figsize=(5 * len(norms), 3.5), squeeze=False)
    for ax, norm in zip(axes[0], norms, strict=True):
        for m in models:
            v = pd.to_numeric(
                df[(df["model"] == m) & (df["norm"] == norm)]["switched_relus"], errors="coerce"
            ).dropna()
            if len(v):
                ax.hist(
                    v,
                    bins=np.arange(0, v.max() + 2) - 0.5,
                    alpha=0.6,
                    label=f"{m} (n={len(v)}, mean {v.mean():.1f})",
                )
        ax.set_xlabel("ReLUs switching phase, x → minimal example")
        ax.set_ylabel("instances")
        ax.set_title(f"Nonlinearity, {NORM_NAMES.get(norm, norm)} minimal examples")
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_cosine_histograms(frame: pd.DataFrame, path: str | Path, bin_width: float = 0.1) -> Path:
    """Pahlavan et al. Figs. 1 and 3: frequency of cosine-similarity ranges between the closest
    FGSM and the certified closest perturbation, one panel per network."""
    _need(frame, "cosine similarities")
    nets = sorted(frame["network"].unique())
    fig, axes = plt.subplots(1, len(nets), figsize=(4.5 * len(nets), 3.3), squeeze=False)
    for ax, net in zip(axes[0], nets, strict=True):
        cos = frame.loc[frame["network"] == net, "cosine"].dropna()
        if len(cos):
            h = pm.cosine_histogram(cos.to_numpy(), bin_width)
            ax.bar(h["lo"], h["count"], width=bin_width, align="edge", edgecolor="k")
        ax.set_xlim(-1, 1)
        ax.set_xlabel("cosine similarity (FGSM vs certified perturbation)")
        ax.set_ylabel("(image, target) pairs")
        ax.set_title(f"{net} (n={len(cos)})")
    return _save(fig, path)


def plot_perturbations(
    x: Sequence[np.ndarray],
    x_fgsm: Sequence[np.ndarray | None],
    x_min: Sequence[np.ndarray | None],
    captions: Sequence[str],
    path: str | Path,
    title: str,
) -> Path:
    """Pahlavan et al. Figs. 2 and 4: heatmaps of the perturbation in pixels (×255) of the
    closest FGSM and the certified closest adversary, one row per example."""
    n = len(captions)
    if n == 0 or not len(x) == len(x_fgsm) == len(x_min) == n:
        raise PaperReproError("need one original, FGSM and minimal image per caption")
    fig, axes = plt.subplots(n, 3, figsize=(9, 2.4 * n), squeeze=False)
    for i in range(n):
        base = np.asarray(x[i], dtype=float)
        axes[i, 0].imshow(base.reshape(28, 28), cmap="gray", vmin=0, vmax=1)
        axes[i, 0].set_ylabel(captions[i], fontsize=8)
        for j, (name, adv) in enumerate((("FGSM", x_fgsm[i]), ("certified", x_min[i])), 1):
            ax = axes[i, j]
            if adv is None:
                ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes)
            else:
                d = (np.asarray(adv, dtype=float) - base).reshape(28, 28) * pm.PIXELS
                lim = max(float(np.abs(d).max()), 1e-9)
                im = ax.imshow(d, cmap="RdBu_r", vmin=-lim, vmax=lim)
                bar = fig.colorbar(im, ax=ax, fraction=0.046)
                bar.set_label("Δ pixels (×255)" if j == 2 else "", fontsize=8)
            ax.set_title(f"{name} perturbation" if i == 0 else "", fontsize=9)
        axes[i, 0].set_title("original" if i == 0 else "", fontsize=9)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(title)
    return _save(fig, path)


def plot_delta_histograms(hist: pd.DataFrame, path: str | Path) -> Path:
    """Pahlavan et al. Figs. 5 and 6: examples per δ-robustness range in pixels (×255), FGSM vs
    certified, one panel per network (input: :func:`pahlavan_metrics.delta_histogram`)."""
    _need(hist, "histogram rows")
    nets = sorted(hist["network"].unique())
    fig, axes = plt.subplots(1, len(nets), figsize=(5 * len(nets), 3.5), squeeze=False)
    for ax, net in zip(axes[0], nets, strict=True):
        g = hist[hist["network"] == net]
        used = g[g["count"] > 0]
        hi = float(used["hi"].max()) if len(used) else 255.0
        for k, (method, part) in enumerate(g.groupby("method", sort=True)):
            w = float((part["hi"] - part["lo"]).iloc[0])
            ax.bar(
                part["lo"] + k * w / 2,
                part["count"],
                width=w / 2,
                align="edge",
                label=method,
                alpha=0.8,
            )
        ax.set_xlim(0, hi + 1)
        ax.set_xlabel("δ-robustness (L∞, pixels ×255)")
        ax.set_ylabel("images")
        ax.set_title(net)
        ax.legend()
    return _save(fig, path)


def plot_mean_delta(mean: pd.DataFrame, path: str | Path) -> Path:
    """Pahlavan et al. Fig. 7: mean minimal δ (pixels ×255) per network, FGSM vs certified;
    the paper's approximate values as black markers (input: ``pahlavan_mean_delta``)."""
    _need(mean, "networks")
    x = np.arange(len(mean))
    fig, ax = plt.subplots(figsize=(1.8 * len(mean) + 2, 3.5))
    ax.bar(x - 0.2, mean["fgsm"], width=0.4, label="closest FGSM")
    ax.bar(x + 0.2, mean["exact"], width=0.4, label="certified closest")
    if "exact_paper_approx" in mean:
        ax.scatter(
            x + 0.2,
            mean["exact_paper_approx"],
            color="k",
            marker="_",
            s=400,
            label="paper (≈, Reluplex)",
            zorder=3,
        )
    ax.set_xticks(x, mean["network"])
    ax.set_ylabel("mean minimal δ (pixels ×255)")
    ax.set_title("Average δ-robustness per network")
    ax.legend()
    return _save(fig, path)


def plot_radius_curves(certify: pd.DataFrame, path: str | Path, bins: int = 20) -> Path:
    """Wong & Kolter Fig. 5: certified L∞ radius (dual network) of each test example in
    increasing order, coloured by the fraction of correctly classified examples nearby in that
    order (:func:`wong_kolter_metrics.radius_curve`); one panel per model."""
    _need(certify, "certified radii")
    models = sorted(certify["model"].unique())
    ncols = min(3, len(models))
    nrows = -(-len(models) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4.2 * ncols + 1, 3.2 * nrows), squeeze=False, sharey=True
    )
    sc = None
    for ax, model in zip(axes.ravel(), models, strict=False):
        g = certify[certify["model"] == model]
        c = wk.radius_curve(g["radius_dual"].to_numpy(float), g["correct"].to_numpy(bool), bins)
        sc = ax.scatter(
            c["rank"],
            c["radius"],
            c=c["group_fraction_correct"],
            cmap="viridis",
            vmin=0,
            vmax=1,
            s=10,
        )
        ax.set_title(f"{model} (n={len(c)})")
        ax.set_xlabel("test example (sorted by radius)")
        ax.set_ylabel("certified L∞ radius ε")
    for ax in axes.ravel()[len(models) :]:
        ax.set_visible(False)
    fig.colorbar(sc, ax=axes.ravel().tolist(), label="fraction correctly classified")
    fig.suptitle("Maximum certified ε per test example (dual network, [0,1] pixels)", y=1.03)
    return _save(fig, path)


def plot_bound_sandwich(sandwich: pd.DataFrame, path: str | Path) -> Path:
    """Per (model, image): certified radius (dual, CROWN) ≤ certified bracket of the exact
    minimal untargeted L∞ distance ≤ attack distances (CW, closest FGSM). Without examples (no
    correctly classified image) the figure says so."""
    if len(sandwich) == 0:
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.text(0.5, 0.5, "no correctly classified image with exact searches", ha="center")
        ax.set_axis_off()
        return _save(fig, path)
    s = sandwich.sort_values(["model", "image"], ignore_index=True)
    x = np.arange(len(s))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(s) + 2), 4))
    ax.scatter(x, s["radius_dual"], marker="v", label="certified radius (dual)")
    ax.scatter(x, s["radius_crown"], marker="1", label="certified radius (CROWN)")
    ax.errorbar(
        x,
        s["exact_upper"],
        yerr=[s["exact_upper"] - s["exact_lower"], 0 * x],
        fmt="o",
        color="k",
        capsize=3,
        label="exact minimal δ* [lower, upper]",
    )
    ax.scatter(x, s["cw"], marker="^", label="CW attack")
    if "fgsm" in s:
        ax.scatter(x, s["fgsm"].where(np.isfinite(s["fgsm"])), marker="x", label="closest FGSM")
    ax.set_xticks(
        x,
        [f"{m}\n#{i}" for m, i in zip(s["model"], s["image"], strict=True)],
        fontsize=7,
        rotation=90,
    )
    ax.set_ylabel("untargeted L∞ distance ([0,1] pixels)")
    ax.set_title("Certified radius ≤ exact minimal distance ≤ attack distance")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: no point hidden
    return _save(fig, path)


def plot_frequency_curves(curves: pd.DataFrame, path: str | Path) -> Path:
    """Dathathri et al. Fig. 5: adversarial frequency φ(δ) vs the L1 threshold δ, one panel per
    target (``-1`` = untargeted); colour = ``model`` (when the column exists), line style =
    ``method``; L1 in [0,1] pixel units (one pixel black → white = 1, no ×255)."""
    _need(curves, "curves")
    curves = curves if "model" in curves else curves.assign(model="")
    targets = sorted(curves["target"].unique())
    models = sorted(curves["model"].unique())
    styles = dict(zip(sorted(curves["method"].unique()), ["-", "--", ":", "-."] * 3, strict=False))
    colours = {m: f"C{k % 10}" for k, m in enumerate(models)}
    fig, axes = plt.subplots(1, len(targets), figsize=(4.2 * len(targets), 3.4), squeeze=False)
    for ax, t in zip(axes[0], targets, strict=True):
        for (model, method), g in curves[curves["target"] == t].groupby(["model", "method"]):
            ax.step(
                g["delta"],
                100 * g["frequency"],
                where="post",
                color=colours[model],
                linestyle=styles[method],
                label=f"{model} {method}".strip(),
            )
        ax.set_xlabel("δ (L1, net pixel change)")
        ax.set_ylabel("frequency φ (%)")
        ax.set_ylim(-2, 102)
        ax.set_title("untargeted" if t == -1 else f"target class {t}")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=min(len(labels), 4),
        fontsize=8,
    )
    fig.suptitle("Adversarial frequency φ(δ) (Dathathri et al. Fig. 5)", y=1.02)
    return _save(fig, path)


def original_images(paths: Iterable[str | Path]) -> dict[int, np.ndarray]:
    """Test image index → ``[784]`` image in [0, 1] for every image in the instance files,
    read from the split named by the config stored in the records' provenance."""
    from paper_repro.experiments.demo import test_split

    cfg, wanted = None, set()
    for p in paths:
        for rec in records.load_finished(p).values():
            cfg = cfg or rec.get("provenance", {}).get("config")
            wanted.add(int(rec["image"]))
    if cfg is None:
        raise PaperReproError("no records with a stored config: cannot find the test images")
    split = test_split(cfg)
    return {i: split.images[i].astype(np.float64) for i in sorted(wanted)}


def _vec(v: object) -> np.ndarray | None:
    return np.asarray(v, dtype=float) if isinstance(v, list) else None


def carlini_example_grid(
    df: pd.DataFrame,
    originals: dict[int, np.ndarray],
    models: Sequence[str],
    norm: str,
    image: int,
    n: int,
) -> tuple[dict[str, list[np.ndarray | None]], list[str], dict[str, list[str]]]:
    """Inputs of :func:`plot_examples`: the original ``image`` and, per model, its CW and
    minimal examples for the first ``n`` targets; captions give each example's distance
    (``upper`` for the minimal one, ``*`` marking a search that timed out)."""
    d = df[(df["norm"] == norm) & (df["image"] == image) & df["model"].isin(models)]
    targets = sorted(d["target"].unique())[:n]
    if not targets:
        raise PaperReproError(f"no {norm} records of image {image} for {list(models)}")
    rows: dict[str, list[np.ndarray | None]] = {"original": [originals[image]] * len(targets)}
    captions: dict[str, list[str]] = {}
    for m in models:
        g = d[d["model"] == m].set_index("target")
        cw, mn = f"CW\n{m}", f"minimal\n{m}"
        rows[cw] = [_vec(g.at[t, "cw_adv"]) if t in g.index else None for t in targets]
        rows[mn] = [_vec(g.at[t, "witness"]) if t in g.index else None for t in targets]
        captions[cw] = [f"{g.at[t, 'cw_distance']:.3f}" if t in g.index else "" for t in targets]
        captions[mn] = [
            f"{g.at[t, 'upper']:.3f}{'' if g.at[t, 'status'] == 'optimal' else '*'}"
            if t in g.index
            else ""
            for t in targets
        ]
    return rows, [f"target {t}" for t in targets], captions


def pahlavan_heatmap_examples(
    df: pd.DataFrame,
    frame: pd.DataFrame,
    originals: dict[int, np.ndarray],
) -> tuple[list[np.ndarray], list[np.ndarray | None], list[np.ndarray | None], list[str]]:
    """Per network, the most and the least aligned (image, target) pair by cosine similarity
    (Pahlavan et al. Figs. 2 and 4): originals, closest-FGSM and certified closest images, and
    captions."""
    xs, fg, mn, caps = [], [], [], []
    recs = df[df["norm"] == "linf"].set_index(["model", "image", "target"])
    for net, g in frame.dropna(subset=["cosine"]).groupby("network", sort=True):
        g = g.sort_values("cosine", ascending=False)
        picks = [g.iloc[0]] + ([g.iloc[-1]] if len(g) > 1 else [])
        for r in picks:
            rec = recs.loc[(net, r["image"], r["target"])]
            xs.append(originals[int(r["image"])])
            fg.append(_vec(rec["fgsm_adv"]))
            mn.append(_vec(rec["witness"]))
            caps.append(f"{net}\nimage {r['image']}→{r['target']}\ncos {r['cosine']:.2f}")
    if not xs:
        raise PaperReproError("no pair has both an FGSM and a certified adversary")
    return xs, fg, mn, caps
