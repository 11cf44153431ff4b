"""Fully connected ReLU MLPs: ``24x24`` (784-24-24-10, network N of Carlini et al.) and ``50``
(784-50-10, Pahlavan et al.); any hidden sizes by name, e.g. ``60x30`` (Dathathri et al.).

Saved as ``.pt`` (state dict + metadata) and exported to ONNX (input ``[N,784]`` in [0,1],
output ``[N,10]`` logits).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from paper_repro.errors import PaperReproError
from paper_repro.network import ReluNetwork

FORMAT = "paper_repro.mlp/1"
INPUT_DIM = 784
NUM_CLASSES = 10


def parse_arch(arch: str) -> tuple[int, ...]:
    """``"24x24"`` → ``(24, 24)``; ``"50"`` → ``(50,)``.

    Raises:
        PaperReproError: not of the form ``H`` or ``HxHx…`` with positive integers.
    """
    if not isinstance(arch, str) or not re.fullmatch(r"[1-9][0-9]*(x[1-9][0-9]*)*", arch):
        raise PaperReproError(
            f"unknown architecture {arch!r}: expected hidden sizes like '24x24' or '50'"
        )
    return tuple(int(h) for h in arch.split("x"))


class MLP(nn.Module):
    """``784 → hidden[0] → … → 10`` with ReLU after every hidden layer.

    ``forward``: ``x`` of shape ``[B, 784]`` (or ``[B, 1, 28, 28]``) in [0,1] → logits ``[B, 10]``.
    """

    def __init__(
        self, hidden: tuple[int, ...], input_dim: int = INPUT_DIM, classes: int = NUM_CLASSES
    ):
        super().__init__()
        self.hidden = tuple(int(h) for h in hidden)
        sizes = [input_dim, *self.hidden, classes]
        layers: list[nn.Module] = []
        for k in range(len(sizes) - 1):
            layers.append(nn.Linear(sizes[k], sizes[k + 1]))
            if k < len(sizes) - 2:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(x.shape[0], -1))

    def linears(self) -> list[nn.Linear]:
        return [m for m in self.net if isinstance(m, nn.Linear)]

    def to_network(self) -> ReluNetwork:
        """The framework-neutral float64 copy used by bounds and exact solvers."""
        lin = self.linears()
        return ReluNetwork.from_arrays(
            [m.weight.detach().double().numpy() for m in lin],
            [m.bias.detach().double().numpy() for m in lin],
        )


def network_to_torch(network: ReluNetwork, dtype: torch.dtype = torch.float32) -> MLP:
    """An :class:`MLP` with the weights of ``network`` (e.g. to run float32 checks or attacks)."""
    # cast first, then copy: a float64 model keeps float64 weights exactly (casting after the
    # copy would round them through float32)
    model = MLP(network.hidden_sizes, network.input_dim, network.num_classes).to(dtype)
    with torch.no_grad():
        for lin, w, b in zip(model.linears(), network.weights, network.biases, strict=True):
            lin.weight.copy_(torch.from_numpy(np.array(w)))
            lin.bias.copy_(torch.from_numpy(np.array(b)))
    return model.eval()


def save_model(model: MLP, path: str | Path, meta: dict[str, Any]) -> None:
    """Write ``model`` and its metadata (arch, method, seed, data, accuracy, versions)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "hidden": list(model.hidden),
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "meta": meta,
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_model(path: str | Path) -> tuple[MLP, dict[str, Any]]:
    """Read a file written by :func:`save_model`.

    Raises:
        PaperReproError: missing file, not a paper_repro model, or weights that do not fit.
    """
    path = Path(path)
    if not path.is_file():
        raise PaperReproError(f"model file not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PaperReproError(f"cannot read model {path}: {first[:200]}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise PaperReproError(f"{path} is not a paper_repro model file ({FORMAT})")
    model = MLP(tuple(payload["hidden"]))
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise PaperReproError(f"model {path} has malformed weights: {exc}") from None
    for name, tensor in model.state_dict().items():
        if not torch.isfinite(tensor).all():
            raise PaperReproError(f"model {path} has NaN or infinite values in {name}")
    return model.eval(), dict(payload.get("meta", {}))


def export_onnx(model: MLP, path: str | Path) -> None:
    """Export to ONNX: input ``input`` ``[N, 784]`` float32 in [0,1], output ``logits``
    ``[N, 10]``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    dummy = torch.zeros(1, model.linears()[0].in_features)
    torch.onnx.export(
        model.net,  # the Sequential alone: a plain Gemm/Relu graph, no reshape nodes
        (dummy,),
        str(path),
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
        opset_version=17,
        dynamo=False,
    )
