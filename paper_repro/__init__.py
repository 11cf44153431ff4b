"""paper_repro: provably minimal adversarial examples for small ReLU networks on MNIST.

The package follows the pipeline's order: ``data`` → ``models`` → ``train`` → ``attacks`` →
``bounds`` → ``exact`` → ``experiments``; ``cli`` is the ``paper-repro`` command.

The flat public API (``from paper_repro import …``; each name is imported on first use, so
``import paper_repro`` stays cheap — torch is loaded only by the names that need it):

=========================  ===================================================================
``ReluNetwork``            a float64 ReLU MLP (``from_arrays(weights, biases)``); it *is* the
                           classifier that every engine, bound and exact check is about.
``load_network(path)``     a ``ReluNetwork`` from a ``.pt`` of this package or a Gemm/MatMul/
                           Relu ONNX MLP; anything else is a ``PaperReproError``.
``Norm``                   the distance: ``linf`` or ``l1`` (``[0,1]`` pixel units).
``Query``                  ``(network, x ∈ [0,1]^n, label, target or None, norm)``: the least
                           ``‖x′ − x‖`` over ``x′ ∈ [0,1]^n`` reaching the target (ties count).
``Backend``                the engine: ``bab`` (default), ``milp``, ``smt``, ``marabou``
                           (the last two decide fixed-δ questions: ``binary_search`` only).
``Protocol``               ``exact`` (minimise δ to ``tolerance``) or ``binary_search``
                           (Carlini et al.'s bisection to ``precision``).
``SolveOptions``           tolerance, precision, protocol, timeout, seed, SMT solver; invalid
                           values are a ``PaperReproError`` at construction.
``minimal_adversarial``    ``(query, backend, options, initial) → MinAdvResult``: ``lower`` is
                           proven (no example lies closer); a witness is checked in exact
                           rationals (and in float32, else ``extra["float32_valid"]`` is false).
``MinAdvResult``           the bracket ``lower ≤ δ* ≤ upper``, its ``status``, the witness at
                           ``upper`` (``None`` if none was found) and its exact margin.
``Status``                 ``optimal`` (``upper − lower ≤ tolerance``), ``timeout`` or
                           ``unknown`` (the bracket is still certified), ``error``.
``certified_radius``       ``(network, x, label) → CertifiedRadius``: every ε ≤ ``radius`` is
                           proven robust (dual/CROWN bounds), so ``radius ≤`` untargeted δ*.
``parse_vnnlib(path)``     a VNN-LIB 1.0 property, its bounds kept as exact rationals.
``verify``                 ``(network, property, options) → VerifyResult``: ``sat`` only with a
                           counterexample checked in exact rationals, ``unsat`` only from safe
                           bounds, else ``timeout`` / ``unknown``.
=========================  ===================================================================
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# name -> (module, attribute): imported on first access (PEP 562), not at package import
_EXPORTS: dict[str, tuple[str, str]] = {
    "ReluNetwork": ("paper_repro.network", "ReluNetwork"),
    "load_network": ("paper_repro.network", "load_network"),
    "Norm": ("paper_repro.query", "Norm"),
    "Query": ("paper_repro.query", "Query"),
    "Backend": ("paper_repro.exact.backends", "Backend"),
    "Protocol": ("paper_repro.exact.search", "Protocol"),
    "SolveOptions": ("paper_repro.exact.search", "SolveOptions"),
    "minimal_adversarial": ("paper_repro.exact.search", "minimal_adversarial"),
    "MinAdvResult": ("paper_repro.query", "MinAdvResult"),
    "Status": ("paper_repro.query", "Status"),
    "certified_radius": ("paper_repro.bounds.radius", "certified_radius"),
    "parse_vnnlib": ("paper_repro.vnnlib", "parse_vnnlib"),
    "verify": ("paper_repro.exact.frontends.verify", "verify_property"),
}

__all__ = [
    "Backend",
    "MinAdvResult",
    "Norm",
    "Protocol",
    "Query",
    "ReluNetwork",
    "SolveOptions",
    "Status",
    "certified_radius",
    "load_network",
    "minimal_adversarial",
    "parse_vnnlib",
    "verify",
]

if TYPE_CHECKING:
    from paper_repro.bounds.radius import certified_radius
    from paper_repro.exact.backends import Backend
    from paper_repro.exact.frontends.verify import verify_property as verify
    from paper_repro.exact.search import Protocol, SolveOptions, minimal_adversarial
    from paper_repro.network import ReluNetwork, load_network
    from paper_repro.query import MinAdvResult, Norm, Query, Status
    from paper_repro.vnnlib import parse_vnnlib


def __getattr__(name: str):
    try:
        module, attr = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'paper_repro' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
