"""Model architecture parsing, save/load, ONNX export equivalence, the float64 network view."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from paper_repro.errors import PaperReproError
from paper_repro.models import (
    MLP,
    export_onnx,
    load_model,
    network_to_torch,
    parse_arch,
    save_model,
)
from paper_repro.network import ReluNetwork, load_network


@pytest.mark.parametrize(
    ("arch", "hidden"), [("24x24", (24, 24)), ("50", (50,)), ("60x30", (60, 30))]
)
def test_parse_arch(arch, hidden):
    assert parse_arch(arch) == hidden


@pytest.mark.parametrize("arch", ["", "x24", "24x", "0", "24x-1", "abc", "24 24"])
def test_parse_arch_rejects(arch):
    with pytest.raises(PaperReproError, match="unknown architecture"):
        parse_arch(arch)


def test_mlp_shapes():
    model = MLP((24, 24))
    sizes = [(m.in_features, m.out_features) for m in model.linears()]
    assert sizes == [(784, 24), (24, 24), (24, 10)]
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_save_load_roundtrip(tmp_path):
    torch.manual_seed(0)
    model = MLP((5,))
    save_model(model, tmp_path / "m.pt", {"arch": "5", "seed": 3})
    loaded, meta = load_model(tmp_path / "m.pt")
    assert meta == {"arch": "5", "seed": 3}
    x = torch.rand(4, 784)
    torch.testing.assert_close(loaded(x), model(x))


def test_load_rejects_garbage(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    with pytest.raises(PaperReproError, match="cannot read model"):
        load_model(tmp_path / "bad.pt")
    with pytest.raises(PaperReproError, match="not found"):
        load_model(tmp_path / "missing.pt")


def test_load_rejects_nan_weights(tmp_path):
    model = MLP((3,))
    with torch.no_grad():
        model.linears()[0].weight[0, 0] = float("nan")
    save_model(model, tmp_path / "nan.pt", {})
    with pytest.raises(PaperReproError, match="NaN"):
        load_model(tmp_path / "nan.pt")


def test_onnx_export_matches_torch(tmp_path):
    torch.manual_seed(1)
    model = MLP((24, 24)).eval()
    export_onnx(model, tmp_path / "m.onnx")
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    x = torch.rand(16, 784)
    got = sess.run(None, {"input": x.numpy()})[0]
    np.testing.assert_allclose(got, model(x).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_network_view_matches_torch_and_roundtrips(tmp_path):
    torch.manual_seed(2)
    model = MLP((7, 5)).eval()
    net = model.to_network()
    assert net.hidden_sizes == (7, 5) and net.input_dim == 784 and net.num_classes == 10
    x = torch.rand(3, 784)
    np.testing.assert_allclose(
        net.forward(x.double().numpy()), model(x).detach().numpy(), rtol=1e-5, atol=1e-5
    )
    back = network_to_torch(net, torch.float64)
    np.testing.assert_allclose(back(x.double()).detach().numpy(), net.forward(x.double().numpy()))
    save_model(model, tmp_path / "m.pt", {})
    assert load_network(tmp_path / "m.pt").digest() == net.digest()


def test_network_rejects_bad_shapes_and_values():
    with pytest.raises(PaperReproError, match="expects"):
        ReluNetwork.from_arrays([np.zeros((3, 2)), np.zeros((2, 4))], [np.zeros(3), np.zeros(2)])
    with pytest.raises(PaperReproError, match="NaN"):
        ReluNetwork.from_arrays([np.full((2, 2), np.inf)], [np.zeros(2)])
    with pytest.raises(PaperReproError, match="unknown model format"):
        load_network(__file__)
