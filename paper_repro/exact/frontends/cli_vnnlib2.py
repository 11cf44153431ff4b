"""``paper-repro vnnlib2``: the VNN-LIB 2.0 solver command line (chapter 5 of the standard).

::

    paper-repro vnnlib2 --name | --version
    paper-repro vnnlib2 verify QUERY --network NAME=FILE [--timeout S] [--assume-real]
                                     [--seed N] [--no-falsify]
    paper-repro vnnlib2 supports --CAPABILITY      (--onnx-operators, --vnnlib-versions, …)

``verify`` prints ``sat``, ``unsat``, ``timed-out`` or ``unknown`` as the first line of stdout;
after ``sat`` the satisfying assignment in the standard's command-line format (per declared
variable a line ``NAME TYPE [dims]``, then its elements one per line in row-major order). The
decision is :func:`~paper_repro.exact.frontends.verify.verify_property`: ``unsat`` only from the
engine's safe bounds, ``sat`` only with a point checked in exact rational arithmetic. That
analysis is exact over the reals for the float64 reading of the ONNX weights; it does not model
float32 rounding, so, as §5 requires, a query declaring a floating-point element type is refused
unless ``--assume-real`` (a non-standard option) accepts real semantics for it. Also refused:
missing or extra ``--network`` files, ONNX element types or shapes that differ from the
declared ones, and every construct outside the parser's subset (:mod:`paper_repro.vnnlib2`).
Errors are one ``error: …`` line on stderr and exit status 2; notes go to stderr.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import math
import sys
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from paper_repro.errors import PaperReproError
from paper_repro.exact.frontends.cli_verify import command_start, search_seconds
from paper_repro.onnx_import import _SUPPORTED

if TYPE_CHECKING:
    from paper_repro.network import ReluNetwork
    from paper_repro.vnnlib2 import Query2, TensorDecl

NAME = "paper-repro exact ReLU network verifier (BaB with safe dual bounds, exact witnesses)"
CAPABILITIES: dict[str, tuple[str, ...]] = {
    "onnx-opset-versions": ("7", "22"),
    "onnx-element-types": ("real",),
    "onnx-operators": tuple(_SUPPORTED.split(", ")),  # what read_onnx_mlp reads
    "onnx-operators-unsat-proofs": (),
    "vnnlib-versions": ("2.0", "2.0"),
    "hidden-node-theories": ("NH",),
    "multiple-input-output-theories": ("SIO",),
    "multiple-network-theories": ("SNET",),
    "multiple-node-comparison-theories": ("SNC",),
    # OUTC: vnnlib-satisfactory's name for comparisons between outputs (LIN in the standard)
    "arithmetic-complexity-theories": (
        "BND",
        "OUTC",
        "LIN * linear constraints on outputs only; inputs must be bounded by constants (a box)",
    ),
    "optimised-disjunctive-reasoning": ("false",),
    "serialise-assignments": ("false",),
    "unsat-proofs": ("false",),
}
_ANSWER = {"sat": "sat", "unsat": "unsat", "timeout": "timed-out", "unknown": "unknown"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the global options and the ``verify`` and ``supports`` commands."""
    parser.add_argument("--name", action="store_true", help="print the solver's name")
    parser.add_argument("--version", dest="show_version", action="store_true", help="version")
    sub = parser.add_subparsers(dest="vnnlib2_command", metavar="COMMAND")
    v = sub.add_parser("verify", help="decide a VNN-LIB 2.0 query (sat/unsat/timed-out/unknown)")
    v.add_argument("query", help="the VNN-LIB 2.0 query file")
    v.add_argument(
        "--network", action="append", default=[], metavar="NAME=FILE", help="ONNX file of NAME"
    )
    v.add_argument("--timeout", type=float, help="seconds for the whole command (default none)")
    v.add_argument(
        "--assume-real", action="store_true", help="non-standard: analyse float types as reals"
    )
    v.add_argument("--seed", type=int, default=0, help="falsifier/engine seed (default 0)")
    v.add_argument("--no-falsify", action="store_true", help="skip the PGD falsifier")
    s = sub.add_parser("supports", help="report a capability (standard chapter 5)")
    group = s.add_mutually_exclusive_group(required=True)
    for cap in CAPABILITIES:
        group.add_argument(f"--{cap}", dest="capability", action="store_const", const=cap)


def run(args: argparse.Namespace) -> int:
    """Dispatch ``--name``, ``--version``, ``supports`` or ``verify``; returns the exit status.

    Raises:
        PaperReproError: no command, or any error of :func:`run_verify`.
    """
    if args.name:
        print(NAME)
    elif args.show_version:
        print(importlib.metadata.version("paper-repro"))
    elif args.vnnlib2_command == "supports":
        sys.stdout.write("".join(line + "\n" for line in CAPABILITIES[args.capability]))
    elif args.vnnlib2_command == "verify":
        # --timeout bounds the whole command, start-up included (the caller times the process)
        return run_verify(args, command_start())
    else:
        raise PaperReproError("give a command: verify or supports (or --name, --version)")
    return 0


def run_verify(args: argparse.Namespace, start: float) -> int:
    """``verify``: check the query against the networks given, decide it, print the answer
    (``--timeout`` counts from ``start``, a ``time.monotonic()`` value).

    Raises:
        PaperReproError: an unreadable or unsupported query or network, a missing or extra
            ``--network``, declared types or shapes the solver cannot honour or the ONNX
            file does not have, a bad timeout.
    """
    import torch

    from paper_repro.exact.frontends.cli_verify import _stdout_to_stderr
    from paper_repro.exact.frontends.verify import VerifyOptions, VerifyStatus, verify_property
    from paper_repro.vnnlib2 import REAL_TYPES, is_vnnlib2, read_vnnlib2

    path = Path(args.query)
    if path.is_file() and not is_vnnlib2(path.read_text(errors="replace")):
        raise PaperReproError(
            f"{path} is not a VNN-LIB 2.0 query (no (vnnlib-version <2.0>)); for VNN-LIB 1.0 "
            "use: paper-repro verify --onnx NET --vnnlib FILE"
        )
    query = read_vnnlib2(path)
    files = _network_files(args.network, query.network)
    floats = sorted({d.dtype for d in (query.input, query.output)} - REAL_TYPES)
    if floats and not args.assume_real:
        raise PaperReproError(
            f"the query declares element type {', '.join(floats)}: this solver is sound only "
            "over the reals (exact arithmetic on the float64 reading of the weights, no float "
            "rounding), so VNN-LIB 2.0 §5 requires it to refuse; declare the tensors 'real', "
            "or pass --assume-real to accept real semantics"
        )
    budget = math.inf if args.timeout is None else args.timeout
    if not budget > 0:
        raise PaperReproError(f"--timeout must be > 0 seconds, got {args.timeout}")
    torch.set_num_threads(1)
    network = load_declared_network(files, query)
    left = min(search_seconds(budget, start), 7 * 86400.0)
    if left <= 0:
        print("timed-out")
        print("# timed-out before the search began", file=sys.stderr)
        return 0
    opts = VerifyOptions(timeout=left, seed=args.seed, **({"pgd": None} if args.no_falsify else {}))
    with _stdout_to_stderr():  # solver banners (HiGHS prints from C) must not precede the answer
        res = verify_property(network, query.property, opts)
    lines = [_ANSWER[str(res.status)]]
    if res.status == VerifyStatus.SAT:
        lines += assignment_lines(query, res.x, res.point, res.y)
    sys.stdout.write("\n".join(lines) + "\n")
    note = f"# {lines[0]} in {res.seconds:.2f} s"
    if floats:
        note += f" (element types {', '.join(floats)} analysed over the reals: --assume-real)"
    if res.status == VerifyStatus.SAT:
        note += f"; found by {res.found_by}, exact slack {res.exact_slack}, "
        note += f"float32 slack {res.float32_slack}"
    if res.message:
        note += f": {res.message}"
    print(note, file=sys.stderr)
    return 0


def _network_files(specs: list[str], declared: str) -> dict[str, Path]:
    """``NAME=FILE`` options as a dict; exactly the declared network must be given (§5)."""
    files: dict[str, Path] = {}
    for spec in specs:
        name, sep, file = spec.partition("=")
        if not sep or not name or not file:
            raise PaperReproError(f"--network expects NAME=FILE, got {spec!r}")
        if name in files:
            raise PaperReproError(f"--network {name} given twice")
        files[name] = Path(file)
    if declared not in files:
        raise PaperReproError(f"no --network {declared}=FILE for the declared network {declared}")
    extra = sorted(set(files) - {declared})
    if extra:
        raise PaperReproError(f"--network {', '.join(extra)}: not declared by the query")
    return files


def _onnx_type(elem_type: int) -> str:
    """An ONNX element type by its VNN-LIB (ONNX IR "set 1") name: ``float32``, ``int64``, …"""
    from onnx import TensorProto

    name = TensorProto.DataType.Name(elem_type).lower()
    return {"float": "float32", "double": "float64"}.get(name, name)


def _check_tensor(decl: TensorDecl, info, path: Path) -> None:
    """The ONNX graph input/output ``info`` must have ``decl``'s element type (unless ``real``),
    shape (symbolic ONNX dimensions match any) and, if the query names it, node name."""
    from paper_repro.vnnlib2 import REAL_TYPES

    tensor = info.type.tensor_type
    actual = _onnx_type(tensor.elem_type)
    if decl.dtype not in REAL_TYPES and actual != decl.dtype:
        raise PaperReproError(
            f"{path}: {info.name!r} has element type {actual} but the query declares "
            f"{decl.name} {decl.dtype} (declare it 'real' to allow the conversion)"
        )
    if tensor.HasField("shape"):
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
        if len(dims) != len(decl.shape) or any(
            d is not None and d != e for d, e in zip(dims, decl.shape, strict=False)
        ):
            raise PaperReproError(
                f"{path}: {info.name!r} has shape {dims} but the query declares {decl.name} "
                f"{list(decl.shape)}"
            )
    if decl.onnx_name is not None and decl.onnx_name != info.name:
        raise PaperReproError(f"{path}: no ONNX node {decl.onnx_name!r} (found {info.name!r})")


def load_declared_network(files: dict[str, Path], query: Query2) -> ReluNetwork:
    """The declared network's ONNX file, checked against the declarations, as a
    :class:`ReluNetwork`, read with the exact rewrites of
    :func:`~paper_repro.onnx_import.normalize_graph` (an input without a batch dimension,
    reshapes ending the graph, a final ``Relu``), which the standard allows.

    Raises:
        PaperReproError: a missing or unreadable file, mismatched declarations, an unsupported
            graph (from the reader).
    """
    from paper_repro.onnx_import import load_onnx, network_from_model, normalize_graph

    path = files[query.network]
    model = load_onnx(path)
    graph = model.graph
    consts = {i.name for i in graph.initializer}
    inputs = [v for v in graph.input if v.name not in consts]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise PaperReproError(
            f"{path}: {len(inputs)} inputs and {len(graph.output)} outputs, but the query "
            "declares one of each (theory SIO)"
        )
    _check_tensor(query.input, inputs[0], path)
    _check_tensor(query.output, graph.output[0], path)
    normalize_graph(model, output_relu=True, batch_dimension=False)
    return network_from_model(model, path)


def assignment_lines(query: Query2, x, point, y) -> list[str]:
    """The standard's command-line assignment: ``NAME TYPE [dims]`` then the elements in
    row-major order, inputs then outputs. Inputs are the checked float64 values (``repr``: they
    read back exactly), or the exact decimal where the checked point is not a float64; outputs
    are the exact outputs rounded to float64."""
    from paper_repro.exact.frontends.cli_verify import _decimal

    xs = [repr(float(v)) if Fraction(float(v)) == p else _decimal(p) for v, p in zip(x, point)]  # noqa: B905
    lines: list[str] = []
    for decl, values in ((query.input, xs), (query.output, [repr(float(v)) for v in y])):
        lines.append(f"{decl.name} {decl.dtype} [{','.join(map(str, decl.shape))}]")
        lines += values
    return lines
