"""Run each notebook with papermill (default parameters: the demo set under ``results/demo``,
tables and figures redirected to a temporary folder) and check it writes exactly the tables and
figures its Snakemake rule declares. ``make test`` executes the notebooks through nbval
(``pytest --nbval-lax notebooks``); this slower check runs with ``-m slow``."""

from __future__ import annotations

import re

import papermill
import pytest

from paper_repro.config import REPO_ROOT

NOTEBOOKS = ("carlini", "pahlavan", "wong_kolter", "dathathri")


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_writes_its_rule_outputs(name, tmp_path):
    rules = (REPO_ROOT / "rules" / "notebooks.smk").read_text()
    block = rules.split(f"rule {name}_notebook:")[1].split("\nrule ")[0]
    outputs_block = block.split("output:")[1].split("params:")[0]
    tables = set(re.findall(r'"results/tables/([a-z_0-9]+\.csv)"', outputs_block))
    figures = set(re.findall(r'"results/figures/([a-z_0-9]+\.png)"', outputs_block))
    out = tmp_path / f"{name}.ipynb"
    papermill.execute_notebook(
        str(REPO_ROOT / "notebooks" / f"{name}.ipynb"),
        str(out),
        parameters={"tables_dir": str(tmp_path / "tables"), "figures_dir": str(tmp_path / "fig")},
        kernel_name="python3",
        progress_bar=False,
    )
    assert {p.name for p in (tmp_path / "tables").iterdir()} == tables
    assert {p.name for p in (tmp_path / "fig").iterdir()} == figures
    text = out.read_text()
    assert f"{name}: " in text  # the one-line summary of the last cell
