"""Read a fully connected ReLU MLP from an ONNX file into a :class:`ReluNetwork`.

Supported graphs are chains over one data tensor built from ``Gemm`` (``alpha``, ``beta``,
``transA``, ``transB``), ``MatMul`` + ``Add``, ``Relu``, ``Flatten`` / ``Reshape`` to a flat vector,
``Identity`` and ``Constant``; weights come from initializers (or ``Constant`` nodes). Elementwise
``Sub``, ``Div`` (by a constant), ``Mul`` and ``Add`` with a constant broadcast over the features —
e.g. a ``(x − mean) / std`` normalisation, also on the unflattened input — are affine too (``Div``
becomes a product by ``1/c`` rounded to float64). Consecutive affine ops are composed into one
layer, so pre-processing is folded into the first layer. Inputs are ``[batch, features…]``, e.g.
``[1, 784]``, ``[1, 1, 28, 28]``, ``[1, 784, 1]`` (also multiplied as ``W @ x``) or ACAS Xu's
``[1, 1, 1, 5]`` (multiplied as ``x @ M`` without a flatten: all but the last feature axis are 1).
The graph must end with an affine layer (the logits). Anything else (``Conv``, ``Sigmoid``,
``Softmax``, branches, ...) raises :class:`PaperReproError` naming the offending op.

Internally the data tensor is tracked as ``A @ z + c`` with ``z`` the last ReLU output (or the
network input), in one of two layouts: ``row`` (``[N, n]``, batch first, the usual export) or
``col`` (``[n, N]``, e.g. ``Gemm(W, X, transB=1)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from paper_repro.errors import PaperReproError
from paper_repro.network import ReluNetwork

_SUPPORTED = "Gemm, MatMul, Add, Sub, Mul, Div, Relu, Flatten, Reshape, Identity, Constant"
_ELEMENTWISE = ("Add", "Sub", "Mul", "Div")


@dataclass
class _Data:
    """The one data tensor: ``value = A @ z + c`` (``A``: ``[m, n_z]``) in ``layout``."""

    a: np.ndarray | None  # None: the identity on z (nothing applied since the last ReLU)
    c: np.ndarray | None
    layout: str  # "row" ([N, m]) or "col" ([m, N])
    dim: int  # m, the number of features
    shaped: bool = False  # still the raw (possibly multi-dimensional) graph input
    feat: tuple[int, ...] = ()  # the raw input's feature shape (while ``shaped``)

    def affine(self, w: np.ndarray, bias: np.ndarray | None) -> _Data:
        """Compose ``v ↦ w @ v + bias`` after the current value."""
        a = w if self.a is None else w @ self.a
        c = None if self.c is None else w @ self.c
        if bias is not None:
            c = bias if c is None else c + bias
        return _Data(a, c, self.layout, int(w.shape[0]))


def load_onnx(path: str | Path):
    """The ``onnx.ModelProto`` at ``path``; a missing or unreadable file is one
    :class:`PaperReproError` naming it."""
    import onnx

    p = Path(path)
    if not p.is_file():
        raise PaperReproError(f"ONNX file not found: {p}")
    try:
        return onnx.load(str(p))
    except Exception as exc:  # protobuf raises DecodeError, RuntimeError, ...
        raise PaperReproError(f"cannot read ONNX file {p}: {exc}") from None


def read_onnx_mlp(path: str | Path, *, output_relu: bool = False) -> ReluNetwork:
    """Parse the ONNX file at ``path`` into a float64 :class:`ReluNetwork`.

    The graph is first put in the reader's form by exact rewrites (:func:`normalize_graph`): a
    one-dimensional input ``[n]`` becomes ``[1, n]``, and ``Identity``/``Flatten``/``Reshape``
    nodes ending the graph are dropped. ``output_relu``: a graph whose output is a
    ``Relu`` (a property's outputs need not be logits, e.g. VNN-LIB) gets ``+ 0`` appended,
    an exact final affine layer; without it such a graph is an error (a classifier's logits).

    Raises:
        PaperReproError: missing or corrupt file, unsupported op (named), branching graph,
            non-constant weights, shape mismatch, or a graph that does not end in an affine layer.
    """
    model = load_onnx(path)
    normalize_graph(model, output_relu=output_relu)
    return network_from_model(model, Path(path))


def normalize_graph(model, *, output_relu: bool = False, batch_dimension: bool = True) -> None:
    """Exact rewrites of ``model`` (an ``onnx.ModelProto``, changed in place) into the form
    :func:`network_from_model` reads.

    * a one-dimensional input ``[n]`` gets a leading batch dimension of 1; so does any input
      whose first dimension is not 1 when ``batch_dimension`` is false (the declared shape has
      none, e.g. ``[2, 3]`` in VNN-LIB 2.0); elementwise ops broadcast the same way, and an op
      that would now see another shape is refused by the reader;
    * ``Identity``, ``Flatten`` and ``Reshape`` nodes ending the graph are dropped (they keep the
      row-major order of the elements, which is all the flattened output is);
    * with ``output_relu``, a graph then ending with ``Relu`` (or with no node) gets ``+ 0``
      appended (``I·a + 0`` is exact).
    """
    import onnx

    graph = model.graph
    if len(graph.output) == 1:
        _strip_output_reshapes(graph)
    consts = {i.name for i in graph.initializer}
    inputs = [v for v in graph.input if v.name not in consts]
    if len(inputs) == 1:
        dims = inputs[0].type.tensor_type.shape.dim
        values = [d.dim_value if d.HasField("dim_value") else None for d in dims]
        unbatched = values and (len(values) == 1 or (not batch_dimension and values[0] != 1))
        if unbatched and None not in values:
            del dims[:]
            for v in [1, *values]:
                dims.add(dim_value=v)
    if output_relu and len(graph.output) == 1:
        producer = {out: node for node in graph.node for out in node.output}
        last = producer.get(graph.output[0].name)
        if last is None or last.op_type == "Relu":
            zero = onnx.helper.make_tensor("normalized_zero", onnx.TensorProto.FLOAT, [], [0.0])
            graph.initializer.append(zero)
            out = graph.output[0]
            node = onnx.helper.make_node("Add", [out.name, zero.name], ["normalized_out"])
            graph.node.append(node)
            out.name = "normalized_out"


def _strip_output_reshapes(graph) -> None:
    """Drop the ``Identity``/``Flatten``/``Reshape`` nodes that end the graph."""
    while True:
        node = next((n for n in graph.node if graph.output[0].name in n.output), None)
        used = node is not None and any(node.output[0] in n.input for n in graph.node)
        if node is None or used or node.op_type not in ("Identity", "Flatten", "Reshape"):
            return
        graph.output[0].name = node.input[0]
        graph.node.remove(node)


def network_from_model(model, p: Path) -> ReluNetwork:
    """:func:`read_onnx_mlp` on a loaded ``onnx.ModelProto`` (``p``: its file, for messages)."""
    import onnx
    from onnx import numpy_helper

    graph = model.graph
    if len(graph.node) == 0:
        raise PaperReproError(f"ONNX file {p} has no nodes (corrupt or empty graph)")
    consts: dict[str, np.ndarray] = {}
    for init in graph.initializer:
        try:
            consts[init.name] = np.asarray(numpy_helper.to_array(init), dtype=np.float64)
        except Exception as exc:
            raise PaperReproError(f"{p}: unreadable initializer {init.name!r}: {exc}") from None
    inputs = [vi for vi in graph.input if vi.name not in consts]
    if len(inputs) != 1:
        raise PaperReproError(f"{p}: expected exactly one data input, found {len(inputs)}")
    in_dims = [d.dim_value if d.HasField("dim_value") else None
               for d in inputs[0].type.tensor_type.shape.dim]  # fmt: skip
    feat = in_dims[1:]
    if len(in_dims) < 2 or any(d is None or d <= 0 for d in feat):
        raise PaperReproError(f"{p}: input shape {in_dims} is not [batch, features...]")
    n_in = int(np.prod(feat))
    data = {inputs[0].name: _Data(None, None, "row", n_in, len(feat) > 1, tuple(feat))}
    layers: list[tuple[np.ndarray, np.ndarray]] = []
    n_z = n_in
    for node in graph.node:
        op = node.op_type
        if op == "Constant":
            consts[node.output[0]] = _constant_value(node, p)
            continue
        if op not in _SUPPORTED.split(", "):
            raise PaperReproError(
                f"{p}: unsupported ONNX op {op!r} (node {node.name!r}); only {_SUPPORTED} "
                "are allowed in a fully connected ReLU network"
            )
        live = [name for name in node.input if name in data]
        if len(live) != 1 or any(n and n not in data and n not in consts for n in node.input):
            raise PaperReproError(
                f"{p}: node {node.name!r} ({op}) must take exactly one data tensor and constant "
                "weights; branching graphs and computed weights are not supported"
            )
        cur = data.pop(live[0])
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        column = cur.shaped and len(cur.feat) == 2 and cur.feat[1] == 1 and op == "MatMul"
        row = cur.shaped and all(d == 1 for d in cur.feat[:-1]) and op == "MatMul"
        if column and node.input[1] == live[0]:  # W @ x on a [1, n, 1] input: feature-first
            cur = _Data(cur.a, cur.c, "col", cur.dim)
        elif row and node.input[0] == live[0]:  # x @ M on [1, …, 1, n] (ACAS Xu's [1,1,1,5])
            cur = _Data(cur.a, cur.c, "row", cur.dim)
        elif cur.shaped and op not in ("Flatten", "Reshape", "Identity", *_ELEMENTWISE):
            raise PaperReproError(f"{p}: {op} applied to an unflattened multi-dimensional input")
        if op == "Identity":
            out = cur
        elif op in _ELEMENTWISE:
            out = _elementwise(op, node, cur, consts, p)
        elif op in ("Flatten", "Reshape"):
            out = _flatten(op, node, cur, consts, attrs, p)
        elif op == "Relu":
            if cur.a is None and cur.c is None and layers:
                out = cur  # relu(relu(v)) = relu(v)
            else:
                w = np.eye(cur.dim) if cur.a is None else cur.a
                b = np.zeros(cur.dim) if cur.c is None else cur.c
                layers.append((w, b))
                n_z = cur.dim
                out = _Data(None, None, cur.layout, cur.dim)
        else:
            out = _affine_op(op, node, cur, consts, attrs, p)
        data[node.output[0]] = out
    outs = [o.name for o in graph.output]
    if len(outs) != 1 or outs[0] not in data or len(data) != 1:
        raise PaperReproError(f"{p}: the graph must have one output, the end of the layer chain")
    last = data[outs[0]]
    if last.a is None:
        raise PaperReproError(
            f"{p}: the graph must end with an affine layer producing the logits, not a ReLU"
        )
    if last.a.shape[1] != n_z:  # pragma: no cover - guaranteed by construction
        raise PaperReproError(f"{p}: internal shape mismatch")
    b = np.zeros(last.dim) if last.c is None else last.c
    layers.append((last.a, b))
    return ReluNetwork.from_arrays([w for w, _ in layers], [b for _, b in layers])


def _constant_value(node, p: Path) -> np.ndarray:
    from onnx import helper, numpy_helper

    for a in node.attribute:
        if a.name == "value":
            return np.asarray(numpy_helper.to_array(a.t), dtype=np.float64)
        if a.name in ("value_float", "value_int"):
            return np.asarray(helper.get_attribute_value(a), dtype=np.float64)
        if a.name in ("value_floats", "value_ints"):
            return np.asarray(list(helper.get_attribute_value(a)), dtype=np.float64)
    raise PaperReproError(f"{p}: Constant node {node.name!r} has no supported value attribute")


def _flatten(op: str, node, cur: _Data, consts: dict, attrs: dict, p: Path) -> _Data:
    """``Flatten(axis=1)`` or ``Reshape`` to ``[N, features]`` (C order): no arithmetic."""
    if cur.layout != "row":
        raise PaperReproError(f"{p}: {op} on a feature-first ([n, N]) tensor is not supported")
    if op == "Flatten":
        if int(attrs.get("axis", 1)) != 1:
            raise PaperReproError(f"{p}: Flatten must use axis=1, got {attrs.get('axis')}")
    else:
        shape = [int(s) for s in np.asarray(consts[node.input[1]]).reshape(-1)]
        ok = len(shape) == 2 and shape[1] in (-1, cur.dim) and shape[0] in (-1, 0, 1)
        ok = ok and not (shape[0] == -1 and shape[1] == -1)
        if not ok:
            raise PaperReproError(f"{p}: Reshape to {shape} is not a flatten to [batch, {cur.dim}]")
    return _Data(cur.a, cur.c, cur.layout, cur.dim)


def _elementwise(op: str, node, cur: _Data, consts: dict, p: Path) -> _Data:
    """``x ± c``, ``c − x``, ``x · c``, ``x / c`` with a constant ``c`` broadcast per feature."""
    pos = 0 if node.input[0] not in consts else 1
    const = np.asarray(consts[node.input[1 - pos]], dtype=np.float64)
    if op == "Add" and not cur.shaped:
        return _affine_op(op, node, cur, consts, {}, p)
    if cur.shaped:
        try:
            vec = np.broadcast_to(const, (1, *cur.feat)).reshape(-1).copy()
        except ValueError:
            raise PaperReproError(
                f"{p}: {op} {node.name!r} constant of shape {const.shape} does not broadcast "
                f"over the input's features {list(cur.feat)}"
            ) from None
    else:
        vec = _feature_vector(const, cur, f"{op} {node.name!r}", p)
    ones = np.ones(cur.dim)
    if op == "Div" and pos == 1:
        raise PaperReproError(f"{p}: Div {node.name!r} divides by the data: not affine")
    if op == "Div" and np.any(vec == 0):
        raise PaperReproError(f"{p}: Div {node.name!r} divides by zero")
    if op == "Add":
        scale, bias = ones, vec
    elif op == "Sub":
        scale, bias = (ones, -vec) if pos == 0 else (-ones, vec)
    else:  # Mul, Div (only the chosen one is computed: 1/vec of a Sub's zero mean would warn)
        scale, bias = (vec if op == "Mul" else 1.0 / vec), None
    out = cur.affine(np.diag(scale), bias)
    return _Data(out.a, out.c, cur.layout, cur.dim, cur.shaped, cur.feat)


def _affine_op(op: str, node, cur: _Data, consts: dict, attrs: dict, p: Path) -> _Data:
    """``Gemm``, ``MatMul`` or ``Add`` with one data operand and constant other operands."""
    pos = list(node.input).index(next(n for n in node.input if n not in consts))
    if op == "Add":
        bias = np.asarray(consts[node.input[1 - pos]])
        return cur.affine(np.eye(cur.dim), _feature_vector(bias, cur, f"{op} {node.name!r}", p))
    if op == "MatMul":
        mat, trans, alpha, beta, c = consts[node.input[1 - pos]], False, 1.0, 0.0, None
    else:
        if pos == 2:
            raise PaperReproError(f"{p}: Gemm {node.name!r} has the data tensor as its bias C")
        mat = consts[node.input[1 - pos]]
        trans = bool(attrs.get("transB" if pos == 0 else "transA", 0))
        data_trans = bool(attrs.get("transA" if pos == 0 else "transB", 0))
        alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
        c = consts[node.input[2]] if len(node.input) > 2 and node.input[2] else None
        if data_trans:  # the data operand is transposed: swap its layout
            cur = _Data(cur.a, cur.c, "col" if cur.layout == "row" else "row", cur.dim)
    if mat.ndim != 2:
        raise PaperReproError(f"{p}: {op} {node.name!r} weight must be 2-D, got {mat.shape}")
    mat = mat.T if trans else mat
    if pos == 0:  # data @ M: data must be [N, n], out [N, m]; W = M^T
        if cur.layout != "row":
            raise PaperReproError(f"{p}: {op} {node.name!r} multiplies the batch dimension")
        w = mat.T
    else:  # M @ data: data must be [n, N], out [m, N]; W = M
        if cur.layout != "col":
            raise PaperReproError(f"{p}: {op} {node.name!r} multiplies the batch dimension")
        w = mat
    if w.shape[1] != cur.dim:
        raise PaperReproError(
            f"{p}: {op} {node.name!r} expects {w.shape[1]} features but gets {cur.dim}"
        )
    out = cur.affine(alpha * w, None)
    if c is not None and beta != 0.0:
        out = out.affine(np.eye(out.dim), beta * _feature_vector(c, out, f"{op} bias", p))
    return out


def _feature_vector(bias: np.ndarray, cur: _Data, what: str, p: Path) -> np.ndarray:
    """Broadcast a constant added to a ``[N, m]``/``[m, N]`` tensor to a per-feature ``[m]``."""
    b = np.asarray(bias, dtype=np.float64)
    if b.size == 1:
        return np.full(cur.dim, float(b.reshape(-1)[0]))
    while b.ndim > (1 if cur.layout == "row" else 2) and b.shape[0] == 1:
        b = b[0]  # a leading batch axis, e.g. [1, m] or [1, m, 1]
    ok_row = cur.layout == "row" and (b.shape in [(cur.dim,), (1, cur.dim)])
    ok_col = cur.layout == "col" and b.shape == (cur.dim, 1)
    if not (ok_row or ok_col):
        raise PaperReproError(
            f"{p}: {what} of shape {b.shape} does not broadcast per feature over {cur.dim} "
            f"features ({cur.layout} layout)"
        )
    return b.reshape(-1).copy()
