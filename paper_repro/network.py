"""A framework-neutral fully connected ReLU network, the object every bound and solver works on.

``ReluNetwork`` holds float64 numpy weights: layer ``k`` maps ``z_k`` (shape ``[n_k]``) to
``W_k @ z_k + b_k`` (``W_k``: ``[n_{k+1}, n_k]``), with a ReLU after every layer but the last.
The last layer's outputs are the logits ``Z(x)`` of Carlini et al. (Sec. 2).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from paper_repro.errors import PaperReproError


@dataclass(frozen=True)
class ReluNetwork:
    """A ReLU MLP ``x ↦ W_L relu(… relu(W_1 x + b_1) …) + b_L``.

    Attributes:
        weights: ``W_k`` of shape ``[n_{k+1}, n_k]``, float64, one per affine layer.
        biases: ``b_k`` of shape ``[n_{k+1}]``, float64.
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        if len(self.weights) == 0 or len(self.weights) != len(self.biases):
            raise PaperReproError(
                "a network needs one bias per weight matrix and at least one layer"
            )
        prev = None
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if w.ndim != 2 or b.ndim != 1 or w.shape[0] != b.shape[0]:
                raise PaperReproError(
                    f"layer {k}: weight shape {w.shape} and bias shape {b.shape} do not match"
                )
            if prev is not None and w.shape[1] != prev:
                raise PaperReproError(f"layer {k} expects {w.shape[1]} inputs but gets {prev}")
            if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
                raise PaperReproError(f"layer {k} has NaN or infinite weights or biases")
            prev = w.shape[0]

    @classmethod
    def from_arrays(cls, weights: list[np.ndarray], biases: list[np.ndarray]) -> ReluNetwork:
        """Build a network from array-likes (copied to float64, read-only)."""
        ws = tuple(_frozen(np.asarray(w, dtype=np.float64)) for w in weights)
        bs = tuple(_frozen(np.asarray(b, dtype=np.float64)) for b in biases)
        return cls(ws, bs)

    @property
    def input_dim(self) -> int:
        return int(self.weights[0].shape[1])

    @property
    def num_classes(self) -> int:
        return int(self.weights[-1].shape[0])

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        return tuple(int(w.shape[0]) for w in self.weights[:-1])

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Float64 logits: ``x`` ``[n_0]`` or ``[batch, n_0]`` → ``[n_L]`` or ``[batch, n_L]``."""
        z = np.asarray(x, dtype=np.float64)
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            z = z @ w.T + b
            if k < len(self.weights) - 1:
                z = np.maximum(z, 0.0)
        return z

    def pre_activations(self, x: np.ndarray) -> list[np.ndarray]:
        """Pre-ReLU values of every hidden layer: ``x`` ``[n_0]`` → ``[n_k]`` each, or
        ``[batch, n_0]`` → ``[batch, n_k]`` each."""
        z = np.asarray(x, dtype=np.float64)
        out = []
        for w, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            z = w @ z + b if z.ndim == 1 else z @ w.T + b
            out.append(z)
            z = np.maximum(z, 0.0)
        return out

    def digest(self) -> str:
        """A sha256 of the weights (shapes and float64 bytes): the model hash results record."""
        h = hashlib.sha256()
        for w, b in zip(self.weights, self.biases, strict=True):
            h.update(str(w.shape).encode())
            h.update(np.ascontiguousarray(w).tobytes())
            h.update(np.ascontiguousarray(b).tobytes())
        return h.hexdigest()


def _frozen(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.setflags(write=False)
    return a


def load_network(path: str | Path, *, output_relu: bool = False) -> ReluNetwork:
    """Read a ``.pt`` file written by :func:`paper_repro.models.save_model` or an ONNX MLP
    (``output_relu``: an ONNX graph may end with a ``Relu``,
    :func:`~paper_repro.onnx_import.read_onnx_mlp`).

    Raises:
        PaperReproError: the file is missing, unreadable, or not a fully connected ReLU network.
    """
    p = Path(path)
    if not p.is_file():
        raise PaperReproError(f"model file not found: {p}")
    if p.suffix == ".onnx":
        from paper_repro.onnx_import import read_onnx_mlp

        return read_onnx_mlp(p, output_relu=output_relu)
    if p.suffix == ".pt":
        from paper_repro.models import load_model

        model, _meta = load_model(p)
        return model.to_network()
    raise PaperReproError(f"unknown model format {p.suffix!r} for {p}: expected .pt or .onnx")
