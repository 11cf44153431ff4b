"""ONNX import: exported MLPs and hand-built graphs must reproduce onnxruntime's logits."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from paper_repro.errors import PaperReproError
from paper_repro.models import MLP, export_onnx
from paper_repro.network import load_network
from paper_repro.onnx_import import read_onnx_mlp

torch.set_num_threads(1)


def _ort_logits(path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return sess.run(None, {name: x})[0]


def _save(nodes, inits, path, in_shape, out_dim, name="g"):
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", out_dim])],
        initializer=[numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("hidden", [(7,), (5, 4), (3, 6, 2)])
def test_exported_mlp_matches_onnxruntime_and_torch(tmp_path, hidden):
    torch.manual_seed(len(hidden))
    model = MLP(hidden, input_dim=12, classes=4)
    path = tmp_path / "m.onnx"
    export_onnx(model, path)
    net = read_onnx_mlp(path)
    assert net.hidden_sizes == hidden and net.input_dim == 12 and net.num_classes == 4
    x = np.random.default_rng(0).random((9, 12)).astype(np.float32)
    np.testing.assert_allclose(net.forward(x), _ort_logits(path, x), atol=1e-5)
    torch_w = [m.weight.detach().double().numpy() for m in model.linears()]
    for w, tw in zip(net.weights, torch_w, strict=True):
        np.testing.assert_array_equal(w, tw)  # float32 weights are read exactly
    assert load_network(path).digest() == net.digest()


def test_matmul_add_and_gemm_variants(tmp_path):
    rng = np.random.default_rng(1)
    w1 = rng.normal(size=(6, 5))  # MatMul: x[N,6] @ w1 -> [N,5]
    b1 = rng.normal(size=5)
    w2 = rng.normal(size=(5, 4))  # Gemm transB=0: B is [in, out]
    b2 = rng.normal(size=4)
    w3 = rng.normal(size=(3, 4))  # Gemm transB=1, alpha/beta
    b3 = rng.normal(size=3)
    nodes = [
        helper.make_node("Identity", ["x"], ["x0"]),
        helper.make_node("MatMul", ["x0", "w1"], ["h1"]),
        helper.make_node("Add", ["b1", "h1"], ["a1"]),
        helper.make_node("Relu", ["a1"], ["r1"]),
        helper.make_node("Gemm", ["r1", "w2", "b2"], ["h2"], transB=0),
        helper.make_node("Relu", ["h2"], ["r2"]),
        helper.make_node("Gemm", ["r2", "w3", "b3"], ["y"], transB=1, alpha=0.5, beta=2.0),
    ]
    inits = {"w1": w1, "b1": b1, "w2": w2, "b2": b2, "w3": w3, "b3": b3}
    path = _save(nodes, inits, tmp_path / "g.onnx", ["N", 6], 3)
    net = read_onnx_mlp(path)
    assert net.hidden_sizes == (5, 4)
    x = rng.random((8, 6)).astype(np.float32)
    np.testing.assert_allclose(net.forward(x), _ort_logits(path, x), atol=1e-5)


def test_flatten_transposed_gemm_and_composed_affines(tmp_path):
    rng = np.random.default_rng(2)
    wa = rng.normal(size=(5, 4))  # Gemm(X, wa^T) with transA on the data
    wb = rng.normal(size=(5, 5))
    w_out = rng.normal(size=(2, 5))
    shape = np.array([-1, 4], dtype=np.int64)
    nodes = [
        helper.make_node("Flatten", ["x"], ["f"], axis=1),
        helper.make_node("Constant", [], ["shape"], value=numpy_helper.from_array(shape)),
        helper.make_node("Reshape", ["f", "shape"], ["f2"]),
        helper.make_node("Gemm", ["f2", "wa"], ["h"], transB=1),  # no bias
        helper.make_node("MatMul", ["h", "wb"], ["h2"]),  # composed with the Gemm
        helper.make_node("Relu", ["h2"], ["r"]),
        helper.make_node("Gemm", ["w_out", "r"], ["yt"], transB=1),  # W @ r^T: [2, N]
        helper.make_node("Gemm", ["yt", "eye", "bias"], ["y"], transA=1),  # back to [N, 2]
    ]
    inits = {"wa": wa, "wb": wb, "w_out": w_out, "eye": np.eye(2), "bias": rng.normal(size=2)}
    path = _save(nodes, inits, tmp_path / "f.onnx", ["N", 1, 2, 2], 2)
    net = read_onnx_mlp(path)
    assert net.input_dim == 4 and net.hidden_sizes == (5,)
    x = rng.random((7, 1, 2, 2)).astype(np.float32)
    np.testing.assert_allclose(net.forward(x.reshape(7, 4)), _ort_logits(path, x), atol=1e-5)


@pytest.mark.parametrize(
    ("op", "extra"),
    [("Sigmoid", {}), ("Softmax", {"axis": 1}), ("Tanh", {})],
)
def test_rejects_unsupported_ops_by_name(tmp_path, op, extra):
    w = np.ones((3, 2))
    nodes = [
        helper.make_node("Gemm", ["x", "w"], ["h"], transB=1),
        helper.make_node(op, ["h"], ["y"], **extra),
    ]
    path = _save(nodes, {"w": w}, tmp_path / "bad.onnx", ["N", 2], 3)
    with pytest.raises(PaperReproError, match=op):
        read_onnx_mlp(path)


def test_rejects_conv(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "k"], ["y"])]
    path = _save(nodes, {"k": np.ones((1, 1, 1, 1))}, tmp_path / "c.onnx", ["N", 1, 2, 2], 4)
    with pytest.raises(PaperReproError, match="Conv"):
        read_onnx_mlp(path)


def test_rejects_trailing_relu_and_branches(tmp_path):
    w = np.ones((3, 2))
    nodes = [
        helper.make_node("Gemm", ["x", "w"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["y"]),
    ]
    with pytest.raises(PaperReproError, match="end with an affine"):
        read_onnx_mlp(_save(nodes, {"w": w}, tmp_path / "r.onnx", ["N", 2], 3))
    nodes = [
        helper.make_node("Gemm", ["x", "w"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Add", ["h", "r"], ["y"]),
    ]
    with pytest.raises(PaperReproError, match="branching"):
        read_onnx_mlp(_save(nodes, {"w": w}, tmp_path / "b.onnx", ["N", 2], 3))


def test_corrupt_and_missing_files(tmp_path):
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"\x08\x07not a protobuf \xff\xff\xff" * 10)
    with pytest.raises(PaperReproError, match=r"corrupt|cannot read|no nodes"):
        read_onnx_mlp(bad)
    with pytest.raises(PaperReproError, match="not found"):
        read_onnx_mlp(tmp_path / "missing.onnx")
    with pytest.raises(PaperReproError):
        load_network(bad)


def _ort_flat(path, x: np.ndarray) -> np.ndarray:
    return _ort_logits(path, x).reshape(x.shape[0], -1)


def _save_io(nodes, inits, path, in_shape, out_shape):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))
    return path


def test_column_input_784x1_with_matmul_on_the_left(tmp_path):
    rng = np.random.default_rng(5)
    f32 = np.float32
    inits = {
        "w1": rng.normal(size=(16, 784)).astype(f32) * 0.05,
        "b1": rng.normal(size=(16, 1)).astype(f32),
        "w2": rng.normal(size=(10, 16)).astype(f32),
        "b2": rng.normal(size=(1, 10, 1)).astype(f32),
        "mean": np.array([0.1307], f32),
        "std": np.array([0.3081], f32),
    }
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["s"]),
        helper.make_node("Div", ["s", "std"], ["n"]),
        helper.make_node("MatMul", ["w1", "n"], ["h"]),
        helper.make_node("Add", ["h", "b1"], ["a"]),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("MatMul", ["w2", "r"], ["o"]),
        helper.make_node("Add", ["o", "b2"], ["y"]),
    ]
    path = _save_io(nodes, inits, tmp_path / "col.onnx", [1, 784, 1], [1, 10, 1])
    net = read_onnx_mlp(path)
    assert (net.input_dim, net.hidden_sizes, net.num_classes) == (784, (16,), 10)
    for seed in range(3):
        x = np.random.default_rng(seed).random((1, 784, 1)).astype(f32)
        got = net.forward(x.reshape(1, -1))
        np.testing.assert_allclose(got, _ort_flat(path, x), rtol=1e-4, atol=1e-4)


def test_acasxu_shaped_input_multiplied_without_a_flatten(tmp_path):
    """ACAS Xu's ONNX form: input ``[1, 1, 1, 5]``, ``(x − mean) / range``, then ``x @ M`` on the
    4-D tensor (broadcast matmul over the leading unit axes); output ``[1, 1, 1, 5]``."""
    rng = np.random.default_rng(6)
    f32 = np.float32
    inits = {
        "mean": np.array([0.1, 0.0, -0.2, 0.3, 0.5], f32),
        "range": np.array([2.0, 6.28, 6.28, 1.1, 1.2], f32),
        "m1": rng.normal(size=(5, 50)).astype(f32),
        "b1": rng.normal(size=(1, 1, 1, 50)).astype(f32),
        "m2": rng.normal(size=(50, 5)).astype(f32),
        "b2": rng.normal(size=5).astype(f32),
    }
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["s"]),
        helper.make_node("Div", ["s", "range"], ["n"]),
        helper.make_node("MatMul", ["n", "m1"], ["h"]),
        helper.make_node("Add", ["h", "b1"], ["a"]),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("MatMul", ["r", "m2"], ["o"]),
        helper.make_node("Add", ["o", "b2"], ["y"]),
    ]
    path = _save_io(nodes, inits, tmp_path / "acas.onnx", [1, 1, 1, 5], [1, 1, 1, 5])
    net = read_onnx_mlp(path)
    assert (net.input_dim, net.hidden_sizes, net.num_classes) == (5, (50,), 5)
    for seed in range(3):
        x = np.random.default_rng(seed).normal(size=(1, 1, 1, 5)).astype(f32)
        got = net.forward(x.reshape(1, -1))
        np.testing.assert_allclose(got, _ort_flat(path, x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("in_shape", [[1, 1, 28, 28], [1, 784], [1, 784, 1]])
def test_normalisation_folded_into_the_first_layer(tmp_path, in_shape):
    rng = np.random.default_rng(6)
    f32 = np.float32
    mean = rng.random([1, *in_shape[1:]]).astype(f32) if len(in_shape) == 2 else np.float32(0.5)
    inits = {
        "mean": np.asarray(mean, f32),
        "std": np.full([1] * len(in_shape), 0.25, f32),
        "scale": np.array(2.0, f32),
        "w1": rng.normal(size=(784, 8)).astype(f32) * 0.1,
        "b1": rng.normal(size=8).astype(f32),
        "w2": rng.normal(size=(8, 3)).astype(f32),
        "shape": np.array([1, 784], np.int64),
    }
    first = "Flatten" if len(in_shape) == 4 else "Reshape"
    flat_in = ["n2"] if first == "Flatten" else ["n2", "shape"]
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["s"]),
        helper.make_node("Div", ["s", "std"], ["n"]),
        helper.make_node("Mul", ["scale", "n"], ["n2"]),
        helper.make_node(first, flat_in, ["f"]),
        helper.make_node("Gemm", ["f", "w1", "b1"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["y"]),
    ]
    path = _save_io(nodes, inits, tmp_path / "norm.onnx", in_shape, [1, 3])
    net = read_onnx_mlp(path)
    assert net.input_dim == 784 and net.hidden_sizes == (8,)
    x = rng.random(in_shape).astype(f32)
    np.testing.assert_allclose(
        net.forward(x.reshape(1, -1)), _ort_flat(path, x), rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize(
    ("op", "inputs", "match"),
    [
        ("Div", ["c", "x"], "divides by the data"),
        ("BatchNormalization", ["x", "c", "c", "c", "c"], "BatchNormalization"),
        ("MaxPool", ["x"], "MaxPool"),
    ],
)
def test_unsupported_preprocessing_names_the_operator(tmp_path, op, inputs, match):
    nodes = [
        helper.make_node(op, inputs, ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "w"], ["y"], transB=1),
    ]
    inits = {"c": np.ones(1, np.float32), "w": np.ones((2, 4), np.float32)}
    path = _save_io(nodes, inits, tmp_path / "bad.onnx", [1, 1, 2, 2], [1, 2])
    with pytest.raises(PaperReproError, match=match):
        read_onnx_mlp(path)


def test_exact_rewrites_for_verification_graphs(tmp_path):
    """An input without a batch dimension and (with ``output_relu``, as ``verify`` reads
    networks) a final Relu: read exactly as onnxruntime computes them."""
    rng = np.random.default_rng(5)
    w1, w2 = rng.normal(size=(4, 3)), rng.normal(size=(2, 4))
    nodes = [
        helper.make_node("Gemm", ["xb", "w1"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Gemm", ["r", "w2"], ["o"], transB=1),
        helper.make_node("Relu", ["o"], ["y"]),
    ]
    # the graph's input is [3]; it is reshaped to [1, 3] inside the graph
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["xb"]), *nodes],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        initializer=[
            numpy_helper.from_array(w1.astype(np.float32), "w1"),
            numpy_helper.from_array(w2.astype(np.float32), "w2"),
            numpy_helper.from_array(np.array([1, 3], dtype=np.int64), "shape"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    path = tmp_path / "v.onnx"
    onnx.save(model, str(path))
    with pytest.raises(PaperReproError, match="end with an affine"):
        read_onnx_mlp(path)  # a classifier's logits must be affine
    net = read_onnx_mlp(path, output_relu=True)
    assert net.input_dim == 3 and net.num_classes == 2
    assert load_network(path, output_relu=True).digest() == net.digest()
    for x in rng.normal(size=(20, 3)).astype(np.float32):
        np.testing.assert_allclose(net.forward(x.astype(np.float64)), _ort_logits(path, x)[0],
                                   atol=1e-5)  # fmt: skip


def test_a_fixed_batch_dimension_stays_a_batch(tmp_path):
    """``[2, 3]``: a batch of two 3-feature rows for ``read_onnx_mlp`` (only VNN-LIB 2.0, whose
    declared shapes have no batch dimension, reads it as 6 features)."""
    w = np.random.default_rng(6).normal(size=(2, 3))
    path = _save([helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)], {"w": w},
                 tmp_path / "b2.onnx", [2, 3], 2)  # fmt: skip
    net = read_onnx_mlp(path)
    assert net.input_dim == 3 and net.num_classes == 2
    x = np.random.default_rng(7).random((2, 3)).astype(np.float32)
    np.testing.assert_allclose(net.forward(x.astype(np.float64)), _ort_logits(path, x), atol=1e-5)
