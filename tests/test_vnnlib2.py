"""VNN-LIB 2.0: the parser gives the 1.0 parser's property for the same query, each malformed or
unsupported query is one clear error, ``paper-repro verify`` reads both versions, and the
chapter-5 command line (``paper-repro vnnlib2 verify/supports``) answers sat/unsat with checked
assignments and refuses what §5 says it must."""

from __future__ import annotations

import re
from fractions import Fraction

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from paper_repro import cli
from paper_repro.errors import PaperReproError
from paper_repro.exact.frontends.verify import check_point
from paper_repro.exact.witnesses.witness import ExactNetwork
from paper_repro.network import ReluNetwork
from paper_repro.vnnlib import parse_vnnlib_text
from paper_repro.vnnlib2 import (
    TensorDecl,
    is_vnnlib2,
    parse_vnnlib2_query,
    parse_vnnlib2_text,
)


def _v2(decls: str, body: str, version: str = "2.0") -> str:
    return f"; a comment\n(vnnlib-version <{version}>)\n(declare-network N\n{decls})\n{body}"


def _v1(n: int, m: int, body: str) -> str:
    head = "".join(f"(declare-const X_{i} Real)\n" for i in range(n))
    return head + "".join(f"(declare-const Y_{j} Real)\n" for j in range(m)) + body


XY = '(declare-input X float32 [1,2] "x")\n(declare-output Y Real [1,3] "y")\n'
BOX2 = "(assert (>= X[0,0] 0.0))(assert (<= X[0,0] 1.0))(assert (>= X[0,1] -0.5))"
BOX2 += "(assert (<= X[0,1] 0.1))\n"
BOX1 = "(assert (>= X_0 0.0))(assert (<= X_0 1.0))(assert (>= X_1 -0.5))(assert (<= X_1 0.1))\n"

EQUIVALENT = {
    "or of comparisons": (
        "(assert (or (>= Y[0,1] Y[0,0]) (and (>= Y[0,2] Y[0,0]) (< Y[0,1] 0.25))))",
        "(assert (or (>= Y_1 Y_0) (and (>= Y_2 Y_0) (< Y_1 0.25))))",
    ),
    "linear terms": (
        "(assert (<= (+ (* 2 Y[0,0]) (- Y[0,1] Y[0,2] 1.5) (- Y[0,2])) (* 0.5 3 Y[0,1])))",
        "(assert (<= (+ (* 2 Y_0) (- Y_1 Y_2 1.5) (- Y_2)) (* 0.5 3 Y_1)))",
    ),
    "== and !=": (
        "(assert (== Y[0,0] 0.5))(assert (!= Y[0,1] Y[0,2]))",
        "(assert (= Y_0 0.5))(assert (or (< Y_1 Y_2) (> Y_1 Y_2)))",
    ),
    "exponents and integers": (
        "(assert (> Y[0,0] 1e-1))(assert (<= Y[0,1] -2))",
        "(assert (> Y_0 0.1))(assert (<= Y_1 -2.0))",
    ),
    "boxes in 'and' assertions": (  # vnnlib 1.0.2's compat transform ORs these (see docs)
        "(assert (and (>= X[0,0] 0.25) (<= X[0,0] 0.5)))(assert (and (<= X[0,1] 0.0)))"
        "(assert (>= Y[0,0] 0))",
        "(assert (and (>= X_0 0.25) (<= X_0 0.5)))(assert (and (<= X_1 0.0)))(assert (>= Y_0 0))",
    ),
}


@pytest.mark.parametrize("name", EQUIVALENT)
def test_valid_2_0_gives_the_1_0_property(name):
    body2, body1 = EQUIVALENT[name]
    prop1 = parse_vnnlib_text(_v1(2, 3, BOX1 + body1))
    text2 = _v2(XY, BOX2 + body2)
    assert parse_vnnlib2_text(text2) == prop1
    assert parse_vnnlib_text(text2) == prop1  # the 1.0 entry point detects 2.0 by content
    assert prop1.cases


def test_shapes_map_row_major_and_scalars_take_no_index():
    decls = "(declare-input X real [2,3])\n(declare-output Y real [])\n"
    box = "".join(
        f"(assert (>= X[{i},{j}] {3 * i + j}))(assert (<= X[{i},{j}] {3 * i + j}.5))"
        for i in range(2)
        for j in range(3)
    )
    query = parse_vnnlib2_query(_v2(decls, box + "(assert (<= Y 5))"))
    assert query.network == "N" and query.output == TensorDecl("Y", "real", ())
    (case,) = query.property.cases
    assert case.box.lower == tuple(Fraction(k) for k in range(6))
    assert case.box.upper == tuple(Fraction(2 * k + 1, 2) for k in range(6))
    assert query.input.element(5) == "X[1,2]" and query.output.element(0) == "Y"
    assert case.constraints[0].coeffs == (Fraction(1),) and case.constraints[0].rhs == 5


def test_detection_ignores_comments_and_1_0_files():
    assert is_vnnlib2(_v2(XY, BOX2))
    assert not is_vnnlib2(_v1(2, 3, BOX1) + "; (vnnlib-version <2.0>)\n")


MALFORMED = [
    (_v2(XY, BOX2 + "(assert (<= Y[0,0] 1)"), "never closed"),
    (_v2(XY, BOX2 + "(assert (<= Y[0,0] 1)))"), "unexpected ')'"),
    (_v2(XY, BOX2 + '(assert (<= Y[0,0] "1))'), "unterminated string"),
    (_v2(XY, BOX2 + "(assert (<= Y[0 0] 1))"), "malformed index"),
    (_v2(XY, BOX2).replace("(vnnlib-version <2.0>)", ""), "must start with (vnnlib-version"),
    (_v2(XY, BOX2, version="2.1"), "version 2.1 is not supported"),
    (_v2(XY, BOX2 + "(assert (<= Z[0] 1))"), "unknown variable 'Z'"),
    (_v2(XY, BOX2 + "(assert (<= Y[0] 1))"), "indexed with 1 indices"),
    (_v2(XY, BOX2 + "(assert (<= Y[0,3] 1))"), "out of range"),
    (_v2(XY, BOX2 + "(assert (<= (* Y[0,0] Y[0,1]) 1))"), "non-linear"),
    (_v2(XY, BOX2 + "(assert (<= (/ Y[0,0] 2) 1))"), "unsupported arithmetic operator (/"),
    (_v2(XY, BOX2 + "(assert (= Y[0,0] 1))"), "2.0 writes '=='"),
    (_v2(XY, BOX2 + "(assert (not (<= Y[0,0] 1)))"), "unsupported formula (not"),
    (_v2(XY, BOX2 + "(assert (>= X[0,0] 2))"), "empty input box: X[0,0]"),
    (_v2(XY, "(assert (>= X[0,0] 0))(assert (<= Y[0,0] 1))"), "X[0,0] has no upper bound"),
    (_v2(XY, BOX2 + "(assert (<= (+ X[0,0] X[0,1]) 1))"), "single elements of X (a box)"),
    (_v2(XY, BOX2 + "(assert (<= X[0,0] Y[0,0]))"), "mixes inputs X and outputs Y"),
    (_v2(XY + '(declare-hidden H float32 [1] "h")', BOX2), "hidden nodes"),
    (_v2(XY.replace("input X", "input X2 float32 [1])(declare-input X"), BOX2), "2 inputs"),
    (
        _v2(XY, "").replace(
            ")\n",
            ")\n(declare-network M (declare-input A real [1]) (declare-output B real [1]))\n",
            1,
        )
        + BOX2,
        "2 networks declared",
    ),
    (_v2("(equal-to M)\n" + XY, BOX2), "(equal-to …) is not supported"),
    (_v2(XY.replace("Real", "int64"), BOX2), "element type int64 of Y is not supported"),
    (_v2(XY.replace("Real", "float33"), BOX2), "unknown element type 'float33'"),
    (_v2(XY, ""), "no (assert"),
    (_v2(XY, BOX2 + "(declare-network M (declare-input A real [1]))"), "before asserts"),
]


@pytest.mark.parametrize(("text", "match"), MALFORMED)
def test_malformed_or_unsupported_is_one_clear_error(text, match):
    with pytest.raises(PaperReproError, match=re.escape(match)):
        parse_vnnlib2_text(text)


# ------------------------------------------------------------------------------ the command lines
def _model(path, net: ReluNetwork, in_shape, out_shape=None, dtype=TensorProto.FLOAT):
    """``net`` as an ONNX graph of Gemm/Relu on a ``[1, n]`` input, or of MatMul/Add/Relu on a
    batch-free ``in_shape`` ending with a Reshape to ``out_shape`` (the standard's tensors)."""
    np_type = helper.tensor_dtype_to_np_dtype(dtype)
    nodes, inits, cur, batch = [], {}, "x", len(in_shape) == 2 and in_shape[0] == 1
    for k, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        inits[f"w{k}"], inits[f"b{k}"] = w.astype(np_type), b.astype(np_type)
        if batch:
            nodes.append(helper.make_node("Gemm", [cur, f"w{k}", f"b{k}"], [f"a{k}"], transB=1))
        else:
            inits[f"w{k}"] = np.ascontiguousarray(w.T.astype(np_type))
            nodes.append(helper.make_node("MatMul", [cur, f"w{k}"], [f"m{k}"]))
            nodes.append(helper.make_node("Add", [f"m{k}", f"b{k}"], [f"a{k}"]))
        nodes.append(helper.make_node("Relu", [f"a{k}"], [f"r{k}"]))
        cur = f"r{k}" if k < len(net.weights) - 1 else f"a{k}"
    if out_shape is not None:  # end with Relu and a Reshape, as the conformance nets do
        inits["shape"] = np.array(out_shape, np.int64)
        nodes.append(helper.make_node("Reshape", [nodes[-1].output[0], "shape"], ["y"]))
    else:
        nodes[-1] = helper.make_node("Identity", [cur], ["y"])
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", dtype, in_shape)],
        [helper.make_tensor_value_info("y", dtype, out_shape or [1, net.num_classes])],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    return path


# y0 = relu(x0 − x1), y1 = relu(0.5) on [0,1]^2: max y0 = 1, reached at (1, 0)
TINY = ReluNetwork.from_arrays([[[1.0, -1.0], [0.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]]],
                               [[0.0, 0.5], [0.0, 0.0]])  # fmt: skip


def _box(*names: str) -> str:
    return "".join(f"(assert (>= {v} 0.0))(assert (<= {v} 1.0))\n" for v in names)


BOX_TINY = _box("X[0,0]", "X[0,1]")


def _decls(dtype: str = "real", shapes=("[1,2]", "[1,2]")) -> str:
    return f"(declare-input X {dtype} {shapes[0]})\n(declare-output Y {dtype} {shapes[1]})\n"


def _run(argv, capfd) -> tuple[int, list[str], str]:
    code = cli.main(argv)
    out, err = capfd.readouterr()
    return code, out.splitlines(), err


@pytest.mark.parametrize(("bound", "answer"), [("0.5", "sat"), ("1.5", "unsat")])
def test_paper_repro_verify_reads_2_0_like_1_0(tmp_path, capfd, bound, answer):
    model = _model(tmp_path / "n.onnx", TINY, [1, 2])
    for name, text in {
        "p2.vnnlib": _v2(_decls("float32"), BOX_TINY + f"(assert (>= Y[0,0] {bound}))"),
        "p1.vnnlib": _v1(2, 2, _box("X_0", "X_1") + f"(assert (>= Y_0 {bound}))"),
    }.items():
        (tmp_path / name).write_text(text)
        argv = ["verify", "--onnx", str(model), "--vnnlib", str(tmp_path / name), "--timeout", "20"]
        code, out, _ = _run(argv, capfd)
        assert code == 0 and out[0] == answer


@pytest.mark.parametrize(("bound", "answer"), [("0.5", "sat"), ("1.5", "unsat")])
def test_vnnlib2_verify_answers_with_a_checked_assignment(tmp_path, capfd, bound, answer):
    model = _model(tmp_path / "n.onnx", TINY, [1, 2])
    query = tmp_path / "q.vnnlib"
    query.write_text(_v2(_decls(), BOX_TINY + f"(assert (>= Y[0,0] {bound}))"))
    argv = ["vnnlib2", "verify", str(query), "--network", f"N={model}", "--timeout", "20"]
    code, out, err = _run(argv, capfd)
    assert code == 0 and out[0] == answer and err.startswith(f"# {answer}")
    if answer == "sat":
        assert out[1] == "X real [1,2]" and out[4] == "Y real [1,2]" and len(out) == 7
        x = np.array([float(v) for v in out[2:4]])
        prop = parse_vnnlib2_text(query.read_text())
        assert check_point(ExactNetwork(TINY), prop.cases[0], x) is not None
        assert float(out[5]) >= 0.5 and float(out[5]) == pytest.approx(x[0] - x[1])
    else:
        assert len(out) == 1


def test_batch_free_input_relu_and_reshape_at_the_end(tmp_path, capfd):
    # X [2] → MatMul, Add, Relu, MatMul, Add, Relu, Reshape [2,1], like the conformance nets
    model = _model(tmp_path / "n.onnx", TINY, [2], out_shape=[2, 1])
    box = _box("X[0]", "X[1]")
    for bound, answer in (("0.5", "sat"), ("1.5", "unsat")):
        query = tmp_path / "q.vnnlib"
        decls = _decls("float32", ("[2]", "[2,1]"))
        query.write_text(_v2(decls, box + f"(assert (>= Y[0,0] {bound}))"))
        argv = ["vnnlib2", "verify", str(query), "--network", f"N={model}", "--assume-real"]
        code, out, err = _run(argv, capfd)
        assert code == 0 and out[0] == answer and "--assume-real" in err


def test_section_5_refusals(tmp_path, capfd):
    model = _model(tmp_path / "n.onnx", TINY, [1, 2])
    query = tmp_path / "q.vnnlib"
    query.write_text(_v2(_decls("float32"), BOX_TINY + "(assert (>= Y[0,0] 0.5))"))
    base = ["vnnlib2", "verify", str(query)]
    cases = [
        ([*base, "--network", f"N={model}"], "sound only over the reals"),  # float32 declared
        ([*base, "--assume-real"], "no --network N=FILE"),
        ([*base, "--network", f"N={model}", "--network", f"M={model}", "--assume-real"], "M: not"),
        ([*base, "--network", f"{model}", "--assume-real"], "NAME=FILE"),
        ([*base, "--network", "N=missing.onnx", "--assume-real"], "not found"),
    ]
    for argv, match in cases:
        code, out, err = _run(argv, capfd)
        assert code == 2 and out == [] and err.startswith("error:") and match in err, (argv, err)
    query.write_text(_v2(_decls("float64"), BOX_TINY + "(assert (>= Y[0,0] 0.5))"))
    code, _, err = _run([*base, "--network", f"N={model}", "--assume-real"], capfd)
    assert code == 2 and "element type float32 but the query declares X float64" in err
    decls = _decls("real", ("[2]", "[1,2]"))
    query.write_text(_v2(decls, _box("X[0]", "X[1]") + "(assert (>= Y[0,0] 0.5))"))
    code, _, err = _run([*base, "--network", f"N={model}"], capfd)
    assert code == 2 and "has shape [1, 2] but the query declares X [2]" in err
    one = tmp_path / "p1.vnnlib"
    one.write_text(_v1(2, 2, BOX1 + "(assert (>= Y_0 0.5))"))
    code, _, err = _run(["vnnlib2", "verify", str(one), "--network", f"N={model}"], capfd)
    assert code == 2 and "paper-repro verify --onnx" in err


def test_timeout_already_spent_answers_timed_out(tmp_path, capfd):
    model = _model(tmp_path / "n.onnx", TINY, [1, 2])
    query = tmp_path / "q.vnnlib"
    query.write_text(_v2(_decls(), BOX_TINY + "(assert (>= Y[0,0] 0.5))"))
    argv = ["vnnlib2", "verify", str(query), "--network", f"N={model}", "--timeout", "0.001"]
    code, out, _ = _run(argv, capfd)
    assert code == 0 and out == ["timed-out"]


def test_supports_name_and_version(capfd):
    from paper_repro.exact.frontends.cli_vnnlib2 import CAPABILITIES

    for cap in CAPABILITIES:
        code, out, _ = _run(["vnnlib2", "supports", f"--{cap}"], capfd)
        assert code == 0 and all(line.strip() for line in out)
    assert _run(["vnnlib2", "supports", "--vnnlib-versions"], capfd)[1] == ["2.0", "2.0"]
    opsets = _run(["vnnlib2", "supports", "--onnx-opset-versions"], capfd)[1]
    assert len(opsets) == 2 and int(opsets[0]) <= int(opsets[1])
    for flag in ("--serialise-assignments", "--unsat-proofs", "--optimised-disjunctive-reasoning"):
        assert _run(["vnnlib2", "supports", flag], capfd)[1] == ["false"]
    assert "Relu" in _run(["vnnlib2", "supports", "--onnx-operators"], capfd)[1]
    assert _run(["vnnlib2", "supports", "--onnx-element-types"], capfd)[1] == ["real"]
    assert _run(["vnnlib2", "--name"], capfd)[1][0].startswith("paper-repro")
    assert re.match(r"^\d+\.\d+", _run(["vnnlib2", "--version"], capfd)[1][0])
    code, _, err = _run(["vnnlib2"], capfd)
    assert code == 2 and "give a command" in err
