"""The flat public API of ``paper_repro`` (``from paper_repro import …``): every name imports, is
documented in the package docstring's table, and is loaded lazily; a tiny end-to-end use."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

import paper_repro
from paper_repro.errors import PaperReproError


@pytest.mark.parametrize("name", paper_repro.__all__)
def test_every_public_name_imports_and_is_documented(name):
    obj = getattr(paper_repro, name)
    assert obj is not None and (obj.__doc__ or "").strip(), f"{name} has no docstring"
    rows = re.findall(r"^``(\w+)", paper_repro.__doc__, flags=re.M)
    assert name in rows, f"{name} is not in paper_repro's docstring table"
    assert name in dir(paper_repro)


def test_all_lists_exactly_the_lazy_exports():
    assert sorted(paper_repro.__all__) == sorted(paper_repro._EXPORTS)
    assert len(set(paper_repro.__all__)) == len(paper_repro.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        _ = paper_repro.nonexistent


def test_flat_names_are_the_module_objects():
    from paper_repro.exact.frontends.verify import verify_property
    from paper_repro.exact.search import Backend, minimal_adversarial

    assert paper_repro.verify is verify_property
    assert paper_repro.Backend is Backend and paper_repro.minimal_adversarial is minimal_adversarial


def test_import_paper_repro_loads_neither_torch_nor_numpy():
    code = (
        "import sys, paper_repro; print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


VNNLIB = """(declare-const X_0 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
(assert (>= X_0 0.0))
(assert (<= X_0 {hi}))
(assert (>= Y_1 Y_0))
"""


def test_end_to_end_on_a_tiny_network_through_the_flat_api(tmp_path):
    import paper_repro as pr

    # y0 = 0.5, y1 = relu(x0): at x = 0.25 (class 0) the nearest class-1 point is 0.5, δ* = 0.25
    net = pr.ReluNetwork.from_arrays([[[1.0]], [[0.0], [1.0]]], [[0.0], [0.5, 0.0]])
    x = np.array([0.25])
    options = pr.SolveOptions(tolerance=1e-6, timeout=30, protocol=pr.Protocol.EXACT)
    res = pr.minimal_adversarial(pr.Query(net, x, 0, None, pr.Norm.LINF), pr.Backend.BAB, options)
    assert isinstance(res, pr.MinAdvResult) and res.status == pr.Status.OPTIMAL
    assert res.lower <= 0.25 <= res.upper <= res.lower + 1e-6 and res.witness[0] >= 0.5
    assert pr.certified_radius(net, x, 0).radius <= res.lower  # certified ≤ exact δ*
    for hi, answer in (("0.6", "sat"), ("0.4", "unsat")):
        (tmp_path / f"p{hi}.vnnlib").write_text(VNNLIB.format(hi=hi))
        assert pr.verify(net, pr.parse_vnnlib(tmp_path / f"p{hi}.vnnlib")).status == answer
    with pytest.raises(PaperReproError, match="not found"):
        pr.load_network(tmp_path / "missing.onnx")
