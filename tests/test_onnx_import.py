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
