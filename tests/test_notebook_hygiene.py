"""The four papermill notebooks: one ``parameters`` cell, no function or class definitions
(logic lives in the package), no committed outputs, and the tables / figures the notebook
registry declares (which the Snakemake rules read) are the ones the notebooks write."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from paper_repro.config import REPO_ROOT, load_config
from paper_repro.experiments.notebook_registry import NOTEBOOKS as REGISTRY
from paper_repro.experiments.notebook_registry import runnable

NOTEBOOKS = tuple(nb.name for nb in REGISTRY)


def _read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(REPO_ROOT / "notebooks" / f"{name}.ipynb", as_version=4)


def test_exactly_the_four_notebooks():
    found = sorted(p.stem for p in (REPO_ROOT / "notebooks").glob("*.ipynb"))
    assert found == sorted(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_one_parameters_cell(name):
    cells = [c for c in _read(name).cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1
    assert cells[0].cell_type == "code"
    # papermill injects overrides after it; every parameter is a plain assignment
    for line in cells[0].source.splitlines():
        assert not line.strip() or re.match(r"^[a-z_][a-z0-9_]* = ", line), line


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_no_definitions(name):
    for cell in _read(name).cells:
        if cell.cell_type == "code":
            assert not re.search(r"^\s*(async\s+)?(def|class)\s", cell.source, re.M), cell.source


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_no_outputs_committed(name):
    book = _read(name)
    nbformat.validate(book)
    for cell in book.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


@pytest.mark.parametrize("nb", REGISTRY, ids=NOTEBOOKS)
def test_registry_outputs_are_written_by_the_notebook(nb):
    """Each table / figure the registry declares appears in the notebook as a saved name, and
    each parameter the pipeline passes is one of the notebook's parameters."""
    source = "\n".join(c.source for c in _read(nb.name).cells)
    names = [Path(p).stem for p in (*nb.table_files().values(), *nb.figure_files().values())]
    for out in names:
        assert out.startswith(f"{nb.name}_"), out
        assert f'"{out}"' in source or f"/{out}.png" in source, out
    assert Path(REPO_ROOT / "report" / f"{nb.name}.rst").is_file()
    params = [c for c in _read(nb.name).cells if "parameters" in c.metadata.get("tags", [])]
    declared = set(re.findall(r"^([a-z_][a-z0-9_]*) = ", params[0].source, re.M))
    cfg = load_config()
    passed = {*nb.parameters(cfg, ["24x24_vanilla"]), "build_demo", "studies"}
    assert passed <= declared, passed - declared


def test_default_config_runs_every_notebook():
    assert [nb.name for nb in runnable(load_config())] == list(NOTEBOOKS)
