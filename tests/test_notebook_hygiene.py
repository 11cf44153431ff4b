"""The four papermill notebooks: one ``parameters`` cell, no function or class definitions
(logic lives in the package), no committed outputs, and the tables / figures the Snakemake rules
declare are the ones the notebooks write."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from paper_repro.config import REPO_ROOT

NOTEBOOKS = ("carlini", "pahlavan", "wong_kolter", "dathathri")


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


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_rule_outputs_are_written_by_the_notebook(name):
    """Each table / figure the rule declares appears in the notebook as a saved name."""
    rules = (REPO_ROOT / "rules" / "notebooks.smk").read_text()
    block = rules.split(f"rule {name}_notebook:")[1].split("\nrule ")[0]
    outputs_block = block.split("output:")[1].split("params:")[0]
    outputs = re.findall(r'"(?:results/tables|figures)/([a-z_0-9]+)\.(?:csv|png)"', outputs_block)
    assert outputs, f"rule {name}_notebook declares no tables or figures"
    source = "\n".join(c.source for c in _read(name).cells)
    for out in outputs:
        assert out.startswith(f"{name}_"), out
        assert f'"{out}"' in source or f"/{out}.png" in source, out
    assert f'"notebooks", "{name}.ipynb"' in block
    assert Path(REPO_ROOT / "report" / f"{name}.rst").is_file()
