"""Glue between the pipeline's result files and the metric modules, for the four notebooks.

The papers' numbers come from :mod:`carlini_tables`, :mod:`pahlavan_metrics`,
:mod:`wong_kolter_metrics` and :mod:`dathathri_metrics`; this module only reshapes the records of
:func:`paper_repro.experiments.minimal_runs.load_records` (one row per model × norm × image ×
target, distances in [0, 1] pixel units) and the certify CSVs into their inputs, puts the papers'
printed numbers beside ours, and attaches provenance (model hash, solver settings, timeouts).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from paper_repro.errors import PaperReproError
from paper_repro.experiments import carlini_tables as ct
from paper_repro.experiments import dathathri_metrics as dm
from paper_repro.experiments import pahlavan_metrics as pm
from paper_repro.experiments import wong_kolter_metrics as wk
from paper_repro.experiments.table_provenance import (  # re-exported for the notebooks
    PROVENANCE_COLUMNS as PROVENANCE_COLUMNS,
)
from paper_repro.experiments.table_provenance import attach_provenance as attach_provenance
from paper_repro.experiments.table_provenance import record_provenance as record_provenance
from paper_repro.experiments.table_provenance import save_table as save_table

# --- Carlini et al. -------------------------------------------------------------------------


def carlini_instances(df: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """The rows Carlini et al.'s tables use, and how many rows were dropped for each reason.

    Their targets are the classes other than the network's prediction ``F(x)``; our jobs use the
    classes other than the label, so for a misclassified image the target equal to the
    prediction (δ* = 0, no search) is dropped. Rows whose CW attack found nothing are dropped
    too (the search needs ``x′_init``).

    Returns:
        ``(rows, dropped_no_cw, dropped_trivial)``.
    """
    trivial = df["target"] == df["prediction"]
    ok = np.isfinite(df["cw_distance"].astype(float)) & ~trivial
    return df[ok].reset_index(drop=True), int((~ok & ~trivial).sum()), int(trivial.sum())


def carlini_table1(df: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """Carlini et al. Table 1 for every model in ``df`` (both sub-rows per model × norm), with
    the paper's row (``*_paper`` columns) beside the models mapped by ``names`` (our model →
    ``"N"`` / ``"N_bar"``) and ``terminated_pct`` = points / total of the terminated sub-row."""
    ours = ct.table1(df)
    ours["paper_model"] = ours["model"].map(names)
    cols = ["points", "total", "cw", "minimal", "improvement_pct"]
    paper = ct.PAPER_TABLE1.rename(columns={c: f"{c}_paper" for c in cols})
    paper = paper.rename(columns={"model": "paper_model"})
    out = ours.merge(paper, on=["paper_model", "norm", "subset"], how="left")
    out["terminated_pct"] = 100.0 * out["points"] / out["total"]
    return out


def carlini_table2(df: pd.DataFrame, base: str, defended: str) -> pd.DataFrame:
    """Carlini et al. Table 2 and Sec. 4.2 (L∞ instances terminated for both networks) beside
    the paper: one row per network plus the robustness factor, the count of instances where the
    defended network is worse, and the mean degradation. When no instance terminated for both,
    one row per network with NaN numbers and the reason in ``note``."""
    names = {base: "N", defended: "N_bar"}
    try:
        t2 = ct.table2(df, base, defended)
    except PaperReproError as exc:
        return pd.DataFrame({"model": [base, defended], "points": 0, "note": str(exc)})
    out = t2.table.copy()
    out["paper_model"] = out["model"].map(names)
    paper = ct.PAPER_TABLE2.rename(columns={"model": "paper_model"})
    out = out.merge(paper, on="paper_model", how="left", suffixes=("", "_paper"))
    out["robustness_factor"] = t2.robustness_factor
    out["robustness_factor_paper"] = ct.PAPER_ROBUSTNESS_FACTOR
    out["worse"], out["worse_paper"] = t2.worse, ct.PAPER_WORSE_COUNT[0]
    out["common"], out["common_paper"] = t2.common, ct.PAPER_WORSE_COUNT[1]
    out["mean_degradation_pct"] = t2.mean_degradation_pct
    out["mean_degradation_pct_paper"] = ct.PAPER_MEAN_DEGRADATION_PCT
    out["note"] = ""
    return out


def defence_pairs(models: Sequence[str]) -> list[tuple[str, str]]:
    """``(arch_vanilla, arch_method)`` for every robustly trained model whose vanilla
    counterpart is also in ``models`` (Table 2 and the nonlinearity test for every defence)."""
    have = set(models)
    return [
        (f"{m.rpartition('_')[0]}_vanilla", m)
        for m in models
        if not m.endswith("_vanilla") and f"{m.rpartition('_')[0]}_vanilla" in have
    ]


def nonlinearity_tests(df: pd.DataFrame, base: str, defended: str) -> pd.DataFrame:
    """Switched ReLUs between ``x`` and the minimal example (Carlini's nonlinearity), ``base``
    vs ``defended`` per norm, with a Mann–Whitney U and a Welch test (the paper: no significant
    difference). Rows with fewer than two witnesses per network get NaN statistics."""
    rows = []
    col = pd.to_numeric(df.get("switched_relus"), errors="coerce")
    for norm in sorted(df["norm"].unique()):
        a = col[(df["model"] == base) & (df["norm"] == norm)].dropna().to_numpy()
        b = col[(df["model"] == defended) & (df["norm"] == norm)].dropna().to_numpy()
        for test in ct.SignificanceTest:
            row = {
                "norm": norm,
                "base": base,
                "defended": defended,
                "test": test.value,
                "n_base": a.size,
                "n_defended": b.size,
                "mean_base": a.mean() if a.size else np.nan,
                "mean_defended": b.mean() if b.size else np.nan,
                "statistic": np.nan,
                "p_value": np.nan,
                "significant_0.05": None,
                "significant_paper": False,
            }
            if a.size >= 2 and b.size >= 2:
                res = ct.compare_samples(a, b, test)
                row.update(
                    statistic=res.statistic,
                    p_value=res.p_value,
                    **{"significant_0.05": res.significant()},
                )
            rows.append(row)
    return pd.DataFrame(rows)


# --- Pahlavan et al. ------------------------------------------------------------------------


def pahlavan_frame(df: pd.DataFrame, originals: dict[int, np.ndarray]) -> pd.DataFrame:
    """Pahlavan et al.'s records from L∞ instances of correctly classified images.

    Args:
        df: :func:`load_records` rows (``fgsm_delta``, ``fgsm_adv`` and ``witness`` needed).
        originals: test image index → ``[784]`` image in [0, 1].

    Returns:
        Columns ``network, image, target, label, status, fgsm_delta, exact_delta, exact_lower,
        cosine`` ([0, 1] units; NaN where no adversary was found); ``exact_delta`` is the
        certified upper end ``upper`` (δ* to the tolerance when ``status`` is optimal).
    """
    d = df[(df["norm"] == "linf") & df["correct"].astype(bool)]
    if d.empty:
        raise PaperReproError("no L∞ records of correctly classified images")
    cos = []
    for _, r in d.iterrows():
        fg, w = r.get("fgsm_adv"), r.get("witness")
        if fg is None or w is None or not isinstance(fg, list) or not isinstance(w, list):
            cos.append(np.nan)
            continue
        cos.append(
            float(pm.cosine_similarity(originals[int(r["image"])], np.array(fg), np.array(w)))
        )
    finite = lambda s: s.astype(float).where(np.isfinite(s.astype(float)))  # noqa: E731
    return pd.DataFrame(
        {
            "network": d["model"].to_numpy(),
            "image": d["image"].to_numpy(),
            "target": d["target"].to_numpy(),
            "label": d["label"].to_numpy(),
            "status": d["status"].to_numpy(),
            "fgsm_delta": finite(d["fgsm_delta"]).clip(upper=1.0).to_numpy(),
            "exact_delta": finite(d["upper"]).clip(upper=1.0).to_numpy(),
            "exact_lower": d["lower"].astype(float).to_numpy(),
            "cosine": cos,
        }
    )


def pahlavan_accuracy(accuracy: pd.DataFrame, models: Sequence[str]) -> pd.DataFrame:
    """Clean and FGSM accuracy of ``models`` (rows of ``accuracy.csv``) beside Pahlavan et al.'s
    (vanilla: 97 % / 14 %; logit pairing: 96.5 % / 89 %, FGSM at δ = 0.2)."""
    acc = accuracy.set_index("model")
    missing = [m for m in models if m not in acc.index]
    if missing:
        raise PaperReproError(f"accuracy table has no rows for {missing}")
    p = pm.PAPER
    paper = {
        "vanilla": (p.clean_accuracy_vanilla, p.fgsm_accuracy_vanilla),
        "alp": (p.clean_accuracy_alp, p.fgsm_accuracy_alp),
    }
    cols = ["clean_acc", "fgsm_eps", "fgsm_acc", "test_source", "n_test", "model_sha256"]
    out = acc.loc[list(models), cols].reset_index()
    method = out["model"].str.split("_").str[-1]
    out["clean_acc_paper"] = method.map(lambda m: paper.get(m, (np.nan,))[0])
    out["fgsm_acc_paper"] = method.map(lambda m: paper.get(m, (np.nan, np.nan))[1])
    out["fgsm_eps_paper"] = p.fgsm_eval_delta
    return out


def pahlavan_mean_delta(frame: pd.DataFrame) -> pd.DataFrame:
    """Fig. 7: mean per-image δ-robustness (pixels ×255) per network and method, beside the
    paper's "about 6 pixels" (vanilla) and "about 20 pixels" (logit pairing)."""
    out = pm.mean_minimal_delta(frame).reset_index()
    method = out["network"].str.split("_").str[-1]
    paper = {"vanilla": pm.PAPER.mean_delta_pixels_vanilla, "alp": pm.PAPER.mean_delta_pixels_alp}
    out["exact_paper_approx"] = method.map(lambda m: paper.get(m, np.nan))
    return out


# --- Wong & Kolter --------------------------------------------------------------------------


def wk_table1(certify: pd.DataFrame, eps: Sequence[float]) -> pd.DataFrame:
    """Wong & Kolter Table 1 rows (errors in %) per model and ε from the certify CSVs, with the
    paper's MNIST row (standard model for ``vanilla``, robust otherwise) where ε matches."""
    rows = []
    paper = wk.PAPER_TABLE1[wk.PAPER_TABLE1["problem"] == "MNIST"]
    for model, g in certify.groupby("model", sort=True):
        robust = not str(model).endswith("_vanilla")
        for e in eps:
            row = wk.error_row(
                e,
                g["correct"].to_numpy(bool),
                g[f"fgsm_correct@{e:g}"].to_numpy(bool),
                g[f"pgd_correct@{e:g}"].to_numpy(bool),
                g[f"certified@{e:g}"].to_numpy(bool),
            ).as_dict()
            p = paper[(paper["robust"] == robust) & np.isclose(paper["eps"], e)]
            for c in ("test_error", "fgsm_error", "pgd_error", "robust_bound"):
                row[f"{c}_paper"] = float(p[c].iloc[0]) if len(p) else np.nan
            rows.append({"model": model, **row, "test_source": g["test_source"].iloc[0]})
    return pd.DataFrame(rows)


def bound_sandwich(df: pd.DataFrame, certify: pd.DataFrame) -> pd.DataFrame:
    """Per (model, image) of a correctly classified image: certified L∞ radius ≤ exact minimal
    untargeted distance ≤ attack distance.

    Returns:
        Columns ``model, image, label, radius_dual, radius_crown, exact_lower, exact_upper``
        (min over targets of the certified bracket), ``cw`` and ``fgsm`` (min over targets of the
        attack distances), ``optimal_targets``, and ``consistent``: ``radius_dual ≤ exact_upper``
        and ``exact_lower ≤ cw`` (what soundness of all three requires). Empty (with these
        columns) when no image with L∞ records is correctly classified.
    """
    d = df[(df["norm"] == "linf") & df["correct"].astype(bool)]
    agg = d.groupby(["model", "image"], as_index=False).agg(
        label=("label", "first"),
        exact_lower=("lower", "min"),
        exact_upper=("upper", "min"),
        cw=("cw_distance", "min"),
        fgsm=("fgsm_delta", "min"),
        optimal_targets=("status", lambda s: int((s == "optimal").sum())),
    )
    cert = certify.rename(columns={"index": "image"})[
        ["model", "image", "radius_dual", "radius_crown"]
    ]
    out = agg.merge(cert, on=["model", "image"], how="left")
    out["consistent"] = (out["radius_dual"] <= out["exact_upper"] + 1e-9) & (
        out["exact_lower"] <= out["cw"] + 1e-9
    )
    return out


# --- Dathathri et al. -----------------------------------------------------------------------


def rho_matrices(df: pd.DataFrame, model: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Targeted L1 distances ``[N, 10]`` of one model's targeted L1 records, one row per image.

    Returns:
        ``({"baseline": CW L1, "ours": certified upper end, "ours_lower": certified lower end},
        labels [N])``; the label's own column and unsolved targets are NaN / inf. A record of a
        capped search (status ``beyond``) has ``ours`` above the cap and ``ours_lower`` = cap.
    """
    d = df[(df["model"] == model) & (df["norm"] == "l1") & df["target"].notna()]
    if d.empty:
        raise PaperReproError(f"no targeted L1 records for model {model!r}")
    images = sorted(d["image"].unique())
    row = {img: i for i, img in enumerate(images)}
    out = {k: np.full((len(images), 10), np.nan) for k in ("baseline", "ours", "ours_lower")}
    labels = np.zeros(len(images), dtype=np.int64)
    for _, r in d.iterrows():
        i, t = row[r["image"]], int(r["target"])
        labels[i] = int(r["label"])
        cw = float(r["cw_distance"])
        out["baseline"][i, t] = cw if np.isfinite(cw) else np.inf
        out["ours"][i, t] = float(r["upper"])
        out["ours_lower"][i, t] = float(r["lower"])
    return out, labels


def untargeted_rho(df: pd.DataFrame, model: str) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
    """Untargeted L1 distances ``[M]`` of one model's untargeted records (one per image), as
    :func:`rho_matrices` names them, with labels ``[M]``; ``None`` without such records (the
    untargeted ρ is then the minimum over the targeted columns)."""
    d = df[(df["model"] == model) & (df["norm"] == "l1") & df["target"].isna()]
    if d.empty:
        return None
    d = d.sort_values("image")
    cw = d["cw_distance"].astype(float).to_numpy()
    rho = {
        "baseline": np.where(np.isfinite(cw), cw, np.inf),
        "ours": d["upper"].astype(float).to_numpy(),
        "ours_lower": d["lower"].astype(float).to_numpy(),
    }
    return rho, d["label"].astype(np.int64).to_numpy()


def _untargeted(
    rho: dict[str, np.ndarray],
    labels: np.ndarray,
    untargeted: tuple[dict[str, np.ndarray], np.ndarray] | None,
) -> dict[str, np.ndarray]:
    """Per method, the untargeted ρ: the untargeted records' when given, else min over targets."""
    if untargeted is not None:
        return {m: untargeted[0][m] for m in rho if m in untargeted[0]}
    return {m: dm.untargeted_rho(r, labels) for m, r in rho.items()}


def _targets(labels: np.ndarray, targets: Iterable[int]) -> list[int]:
    """Targets with at least one example of another label (targeted statistics exist)."""
    return [t for t in targets if np.any(labels != t)]


def dathathri_tables(
    rho: dict[str, np.ndarray],
    labels: np.ndarray,
    targets: tuple[int, ...] = (5, 6),
    untargeted: tuple[dict[str, np.ndarray], np.ndarray] | None = None,
) -> dict[str, pd.DataFrame]:
    """Table 3 (a, b, c) of Dathathri et al. in their layout, ours beside theirs (``paper``).

    ``a``: untargeted frequency φ in % at δ = 5 (from ``untargeted`` — :func:`untargeted_rho`
    — when given, else the minimum over the targeted columns); ``b``: severity μ at δ = 20 for
    ``targets`` (over the examples where the baseline has ρ ≤ 20); ``c``: targeted φ in % per
    target class at δ = 5 and 10, long format. Targets no example can be attacked towards get NaN.
    """
    unt = _untargeted(rho, labels, untargeted)
    a = dm.table3a(unt).reset_index()
    a["delta"] = dm.PAPER_TABLE3A_DELTA
    a["frequency_pct_paper"] = a["method"].map(dm.PAPER_TABLE3A)
    a["examples"] = len(labels) if untargeted is None else len(untargeted[1])
    ok = _targets(labels, targets)
    b = dm.table3b(rho, labels, tuple(ok)) if ok else pd.DataFrame(index=list(rho))
    b = b.reindex(columns=list(targets))
    b = (
        b.rename_axis("method")
        .reset_index()
        .melt("method", var_name="target", value_name="severity")
    )
    b["delta"] = dm.PAPER_TABLE3B_DELTA
    b["severity_paper"] = [
        dm.PAPER_TABLE3B.get(m, {}).get(t, np.nan)
        for m, t in zip(b["method"], b["target"], strict=True)
    ]
    rows = []
    for delta in (5.0, 10.0):
        paper_row = {m: dm.PAPER_TABLE3C.get((m, delta)) for m in rho}
        for m, r in rho.items():
            for t in range(r.shape[1]):
                freq = (
                    100.0 * dm.frequency(dm.targeted_column(r, labels, t), delta)
                    if t in _targets(labels, [t])
                    else np.nan
                )
                paper = paper_row[m][t] if paper_row[m] else np.nan
                rows.append(
                    {
                        "method": m,
                        "delta": delta,
                        "target": t,
                        "frequency_pct": freq,
                        "frequency_pct_paper": paper,
                        "examples": int(np.sum(labels != t)),
                    }
                )
    return {"a": a, "b": b, "c": pd.DataFrame(rows)}


def dathathri_curves(
    rho: dict[str, np.ndarray],
    labels: np.ndarray,
    deltas: np.ndarray,
    targets: tuple[int, ...] = (5, 6),
    untargeted: tuple[dict[str, np.ndarray], np.ndarray] | None = None,
) -> pd.DataFrame:
    """Fig. 5 data (targeted φ(δ) per method and target, plus the untargeted curve as target
    ``-1``, from ``untargeted`` when given), long format ``method, target, delta, frequency``
    (fractions)."""
    ok = tuple(_targets(labels, targets))
    parts = [dm.figure5_curves(rho, labels, deltas, ok)] if ok else []
    for m, r in _untargeted(rho, labels, untargeted).items():
        phi = dm.frequency_curve(r, deltas)
        parts.append(pd.DataFrame({"method": m, "target": -1, "delta": deltas, "frequency": phi}))
    return pd.concat(parts, ignore_index=True)
