"""The four papers' notebooks in one place: what each reads, writes and is parameterised with.

The Snakemake rules (``rules/notebooks.smk``: one papermill rule template instantiated per entry)
and the tests (notebook hygiene, the tiny end-to-end run) both read :data:`NOTEBOOKS`, so a
notebook's tables and figures are declared once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from paper_repro.experiments.studies import Study, studies


@dataclass(frozen=True)
class Notebook:
    """One paper's notebook ``notebooks/{name}.ipynb``.

    Attributes:
        name: file stem, also the prefix of its tables (``results/tables/{name}_{table}.csv``)
            and figures (``results/figures/{name}_{figure}.png``).
        category: the paper, as the HTML report groups it.
        studies: the config studies whose instance files it reads.
        tables: table names it writes (besides ``claims`` and ``provenance``, which all write).
        figures: figure names it writes (each shown in the report with ``report/{name}.rst``).
        accuracy: it reads ``results/tables/accuracy.csv``.
        certify: it reads ``results/certify/{model}.csv`` of every trained model.
        parameters: the notebook's pipeline parameters from the validated config and the names
            of the trained models (papermill ``-y``; the results folders are added by the rule).
    """

    name: str
    category: str
    studies: tuple[str, ...]
    tables: tuple[str, ...]
    figures: tuple[str, ...]
    parameters: Callable[[dict[str, Any], list[str]], dict[str, Any]]
    accuracy: bool = False
    certify: bool = False

    def table_files(self, root: str = "results") -> dict[str, str]:
        """``{table: path}`` for every table, ``claims`` and ``provenance`` included."""
        names = (*self.tables, "provenance", "claims")
        return {t: f"{root}/tables/{self.name}_{t}.csv" for t in names}

    def figure_files(self, root: str = "results") -> dict[str, str]:
        """``{figure: path}``."""
        return {f: f"{root}/figures/{self.name}_{f}.png" for f in self.figures}

    def study_objects(self, cfg: dict[str, Any]) -> list[Study]:
        """Its configured studies (a notebook whose studies are all absent is not run)."""
        have = studies(cfg)
        return [have[s] for s in self.studies if s in have]

    def instance_files(self, cfg: dict[str, Any], root: str = "results") -> list[str]:
        """The job outputs of its configured studies."""
        return [f for s in self.study_objects(cfg) for f in s.outputs(root)]


def _models(cfg: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    have = studies(cfg)
    return list(dict.fromkeys(m for n in names if n in have for m in have[n].models))


def _norms(cfg: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    have = studies(cfg)
    return sorted({str(x) for n in names if n in have for x in have[n].norms})


def _carlini(cfg: dict[str, Any], trained: list[str]) -> dict[str, Any]:
    pair = list(studies(cfg)["carlini"].models[:2])
    smt = cfg.get("experiments", {}).get("smt", {})
    return {
        "models": _models(cfg, ("carlini", "carlini_extended")),
        "norms": _norms(cfg, ("carlini", "carlini_extended")),
        "base_model": pair[0],
        "defended_model": pair[-1],
        **{f"smt_{k}": v for k, v in smt.items()},
    }


def _pahlavan(cfg: dict[str, Any], trained: list[str]) -> dict[str, Any]:
    models = _models(cfg, ("pahlavan",))
    archs = dict.fromkeys(m.rsplit("_", 1)[0] for m in models)
    pairs = [[f"{a}_vanilla", f"{a}_alp"] for a in archs]
    return {"pairs": [p for p in pairs if set(p) <= set(models)]}


def _wong_kolter(cfg: dict[str, Any], trained: list[str]) -> dict[str, Any]:
    return {"models": trained, "eps": cfg["experiments"]["certify"]["eps"]}


def _dathathri(cfg: dict[str, Any], trained: list[str]) -> dict[str, Any]:
    have = studies(cfg)
    caps = [have[n].max_distance for n in ("dathathri", "dathathri_targeted") if n in have]
    out: dict[str, Any] = {"models": _models(cfg, ("dathathri", "dathathri_targeted"))}
    if caps and all(c is not None for c in caps):
        out["delta_max"] = float(min(caps))  # the curves stop where ρ stops being exact
    return out


NOTEBOOKS: tuple[Notebook, ...] = (
    Notebook(
        "carlini",
        "Carlini et al.",
        ("carlini", "carlini_extended"),
        (
            "table1",
            "table1_all",
            "table2",
            "table2_all",
            "nonlinearity",
            "nonlinearity_all",
            "smt_checks",
            "smt_solvers",
        ),
        ("examples", "grids", "nonlinearity"),
        _carlini,
    ),
    Notebook(
        "pahlavan",
        "Pahlavan et al.",
        ("pahlavan",),
        ("accuracy", "summary", "pairs", "delta_hist", "mean_delta"),
        ("cosine", "heatmaps", "delta_hist", "mean_delta"),
        _pahlavan,
        accuracy=True,
    ),
    Notebook(
        "wong_kolter",
        "Wong & Kolter",
        ("sandwich",),
        ("table1", "radius_summary", "sandwich"),
        ("radius", "sandwich"),
        _wong_kolter,
        certify=True,
    ),
    Notebook(
        "dathathri",
        "Dathathri et al.",
        ("dathathri", "dathathri_targeted"),
        ("table3a", "table3b", "table3c", "curves"),
        ("frequency",),
        _dathathri,
    ),
)
"""The notebooks in pipeline order."""


def runnable(cfg: dict[str, Any]) -> list[Notebook]:
    """The notebooks whose studies the config provides (Carlini also needs its ``carlini``
    study's model pair; Pahlavan a vanilla/ALP pair)."""
    have = studies(cfg)
    out = []
    for nb in NOTEBOOKS:
        if not nb.study_objects(cfg):
            continue
        if nb.name == "carlini" and "carlini" not in have:
            continue
        if nb.name == "pahlavan" and not _pahlavan(cfg, [])["pairs"]:
            continue
        out.append(nb)
    return out
