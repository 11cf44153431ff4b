"""``paper-repro minadv``: the provably minimal adversarial example of one input, as JSON.

``paper-repro minadv --model M.pt (--input x.npy | --mnist-index I) [--target T] --norm linf|l1
[--backend bab|milp|smt|marabou] [--protocol exact|binary_search] [--smt-solver z3|cvc5]
[--timeout S] [--tolerance T] [--precision P] [--label L] [--json]`` prints one JSON object:
the :class:`MinAdvResult` record (status, lower, upper, witness as 784 floats or null,
seconds, …) plus the query's identity.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from paper_repro.errors import PaperReproError
from paper_repro.exact.backends import BACKENDS
from paper_repro.exact.decide import SmtSolver
from paper_repro.exact.search import Backend, Protocol, SolveOptions, minimal_adversarial
from paper_repro.exact.witnesses.records import result_to_dict
from paper_repro.network import load_network
from paper_repro.query import Norm, Query


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``minadv`` options on ``parser``."""
    parser.add_argument("--model", required=True, help="network file (.pt or .onnx)")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", help=".npy with 784 values in [0,1]: (784,), (28,28) or (1,28,28)")
    src.add_argument("--mnist-index", type=int, help="index of a genuine MNIST test image")
    parser.add_argument("--target", type=int, default=None, help="target class (default: any)")
    parser.add_argument("--label", type=int, default=None, help="class of x (default: predicted)")
    parser.add_argument("--norm", required=True, choices=[n.value for n in Norm])
    # Defaults come from the config's `experiments` section (and `seed`), like the pipeline's.
    parser.add_argument("--backend", choices=backend_choices(), help=backend_help())
    parser.add_argument("--protocol", choices=[p.value for p in Protocol], help="default: config")
    parser.add_argument(
        "--smt-solver",
        choices=[s.value for s in SmtSolver],
        default=SmtSolver.Z3.value,
        help="solver of --backend smt (cvc5: the optional 'smt' extra)",
    )
    parser.add_argument("--timeout", type=float, help="seconds (default: config)")
    parser.add_argument("--tolerance", type=float, help="default: config")
    parser.add_argument("--precision", type=float, help="default: config")
    parser.add_argument("--seed", type=int, help="default: config")
    parser.add_argument("--json", action="store_true", help="print JSON (the only output format)")
    parser.add_argument(
        "--quiet", action="store_true", help="no progress lines on stderr (default: every 10 s)"
    )


def backend_choices() -> list[str]:
    """The ``--backend`` choices: the names in :data:`~paper_repro.exact.backends.BACKENDS`."""
    return [spec.name for spec in BACKENDS.values()]


def backend_help() -> str:
    """The ``--backend`` help, one clause per registry entry."""
    both = [s.name for s in BACKENDS.values() if s.minimises]
    only = [s.name for s in BACKENDS.values() if not s.minimises]
    parts = [f"{s.name}: {s.summary}" for s in BACKENDS.values()]
    return (
        "; ".join(parts)
        + f". {' and '.join(both)} take either protocol; {' and '.join(only)} decide fixed-δ "
        "questions only: they need --protocol binary_search. Default: config"
    )


def _load_input(args: argparse.Namespace, n_in: int) -> tuple[np.ndarray, int | None, str]:
    if args.input is not None:
        path = Path(args.input)
        if not path.is_file():
            raise PaperReproError(f"input file not found: {path}")
        try:
            x = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise PaperReproError(f"cannot read {path} as .npy: {exc}") from None
        if x.shape not in ((n_in,), (28, 28), (1, 28, 28)) or x.size != n_in:
            raise PaperReproError(
                f"input {path} has shape {x.shape}: expected ({n_in},), (28, 28) or (1, 28, 28)"
            )
        if not np.issubdtype(x.dtype, np.number):
            raise PaperReproError(f"input {path} is not numeric (dtype {x.dtype})")
        return np.asarray(x, dtype=np.float64).reshape(-1), None, str(path)
    try:
        from paper_repro.data import load_test_image
    except ImportError:
        raise PaperReproError("--mnist-index needs paper_repro.data.load_test_image") from None
    if args.mnist_index < 0:
        raise PaperReproError(f"--mnist-index must be ≥ 0, got {args.mnist_index}")
    if n_in != 784:
        raise PaperReproError(
            f"--mnist-index gives a 784-pixel MNIST image but the network expects {n_in} "
            "inputs: use --input"
        )
    x, label = load_test_image(args.mnist_index)
    return np.asarray(x, dtype=np.float64).reshape(-1), int(label), f"mnist-test:{args.mnist_index}"


def _json_value(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, dict):
        return {k: _json_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_json_value(x) for x in v]
    return v


def run(args: argparse.Namespace) -> int:
    """Solve the query described by ``args`` and print the JSON record; returns the exit code.

    Raises:
        PaperReproError: bad model, input, class indices or options.
    """
    network = load_network(args.model)
    x, true_label, source = _load_input(args, network.input_dim)
    predicted = int(np.argmax(network.forward(x)))
    label = predicted if args.label is None else int(args.label)
    query = Query(network, x, label, args.target, Norm.parse(args.norm))
    from paper_repro.config import load_config

    cfg = load_config(*(getattr(args, "config", None) or []))
    ex = cfg["experiments"]

    def pick(name: str, default):
        value = getattr(args, name)
        return default if value is None else value

    options = SolveOptions(
        tolerance=pick("tolerance", ex["tolerance"]),
        precision=pick("precision", ex["precision"]),
        protocol=Protocol(pick("protocol", ex["protocol"])),
        timeout=pick("timeout", ex["timeout"]),
        seed=pick("seed", cfg["seed"]),
        smt_solver=SmtSolver(args.smt_solver),
        progress=0.0 if args.quiet else 10.0,
    )
    backend = Backend(pick("backend", ex["backend"]))
    if not args.quiet:
        import sys

        print(
            f"# minadv: {options.protocol} with {backend}, "
            f"timeout {options.timeout:g} s (progress every 10 s; --quiet to silence)",
            file=sys.stderr,
            flush=True,
        )
    result = minimal_adversarial(query, backend, options)
    record = {
        "model": str(args.model),
        "model_sha256": network.digest(),
        "input": source,
        "true_label": true_label,
        "label": label,
        "predicted": predicted,
        "target": args.target,
        "norm": str(query.norm),
        "protocol": str(options.protocol),
        "smt_solver": str(options.smt_solver) if backend == Backend.SMT else None,
        **result_to_dict(result),
    }
    print(json.dumps(_json_value(record)))
    return 0
