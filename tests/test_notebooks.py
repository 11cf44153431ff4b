"""Run each notebook with papermill (default parameters: the demo set under ``results/demo``,
tables and figures redirected to a temporary folder) and check it writes exactly the tables and
figures its Snakemake rule declares. ``make test`` executes the notebooks through nbval
(``pytest --nbval-lax notebooks``); this slower check runs with ``-m slow``."""

from __future__ import annotations

from pathlib import Path

import papermill
import pytest

from paper_repro.config import REPO_ROOT
from paper_repro.experiments.notebook_registry import NOTEBOOKS


@pytest.mark.slow
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[nb.name for nb in NOTEBOOKS])
def test_notebook_writes_its_registry_outputs(nb, tmp_path):
    name = nb.name
    tables = {Path(p).name for p in nb.table_files().values()}
    figures = {Path(p).name for p in nb.figure_files().values()}
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
