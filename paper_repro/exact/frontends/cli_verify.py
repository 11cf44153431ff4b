"""``paper-repro verify --onnx NET --vnnlib PROP [--timeout S] [--result FILE]`` (VNN-COMP style).

The first line of the output (stdout, and ``--result`` if given) is ``sat``, ``unsat``,
``timeout`` or ``unknown``; after ``sat`` comes the exactly checked counterexample
``((X_0 v) … (Y_0 v) …)``. Notes (time, how it was found, margins, the reason for ``unknown``)
go to stderr, and so do progress lines (``# 31.2 s: …``, every :data:`PROGRESS_SECONDS`;
``--quiet``: none). Malformed input ends with one ``error: …`` line and exit status 2.

``--timeout`` bounds the whole command as VNN-COMP times it, from the process's start to its
exit: the search gets what is left after start-up, less :data:`EXIT_MARGIN` for the engine's
last step, the answer and the exit; if nothing is left the answer is ``timeout`` at once.
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import math
import os
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from paper_repro.errors import PaperReproError

if TYPE_CHECKING:
    from paper_repro.exact.frontends.verify import VerifyResult


class CaseEngine(enum.StrEnum):
    """``--engine``: what decides each case after the falsifier."""

    SPLIT_BAB = "split-bab"  # α/β-CROWN BaB (input bisection on few inputs), then the LP engine
    LP = "lp"  # the LP branch and bound only


EXIT_MARGIN = 1.5
"""Seconds of ``--timeout`` kept for the engine's last step, the answer and the exit."""

PROGRESS_SECONDS = 10.0
"""Seconds between progress lines on stderr (``--quiet``: none)."""

STARTUP_CAP = 10.0
"""Most seconds of the process's past counted against ``--timeout`` (a long-lived process that
calls ``main()`` again is not charged its whole life)."""


def process_age() -> float:
    """Seconds since this process started (Linux ``/proc``; 0 where unavailable)."""
    try:
        ticks = float(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def command_start() -> float:
    """The ``time.monotonic()`` value at which this command started (process start, at most
    :data:`STARTUP_CAP` ago)."""
    return time.monotonic() - min(process_age(), STARTUP_CAP)


def search_seconds(timeout: float, start: float) -> float:
    """What a ``timeout`` counted from ``start`` (:func:`command_start`) leaves for the search
    now, less :data:`EXIT_MARGIN` (≤ 0: nothing is left)."""
    return timeout - (time.monotonic() - start) - EXIT_MARGIN


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``verify`` options on ``parser``."""
    parser.add_argument("--onnx", required=True, help="the network (.onnx; .pt also read)")
    parser.add_argument("--vnnlib", required=True, help="the property (VNN-LIB 1.0 or 2.0)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument("--result", help="also write the answer to this file")
    parser.add_argument("--seed", type=int, default=0, help="falsifier/engine seed (default 0)")
    parser.add_argument("--no-falsify", action="store_true", help="skip the PGD falsifier")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for the bounds (default 1; numpy's BLAS keeps OMP_NUM_THREADS)",
    )
    parser.add_argument(
        "--engine",
        choices=[e.value for e in CaseEngine],
        default=CaseEngine.SPLIT_BAB.value,
        help="per case: 'split-bab' (default) the batched α/β-CROWN branch and bound (input "
        "bisection instead on boxes with at most 12 inputs of non-zero width), then the LP "
        "engine if it gives up before the time limit; 'lp' the LP engine only (docs/verify.md)",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help=f"no progress lines on stderr (default: every {PROGRESS_SECONDS:g} s)",
    )
    parser.add_argument(  # the opt-in flag of earlier versions; now the default
        "--split-bab", action="store_true", help=argparse.SUPPRESS
    )


def run(args: argparse.Namespace) -> int:
    """Verify and print the answer; returns the exit status (0 for every answer).

    Raises:
        PaperReproError: unreadable or unsupported network or property, or mismatched sizes.
    """
    import torch

    from paper_repro.exact.engines.input_split import InputSplitOptions
    from paper_repro.exact.engines.split_bab import SplitBabOptions
    from paper_repro.exact.frontends.verify import VerifyOptions, VerifyStatus, verify_property
    from paper_repro.network import load_network
    from paper_repro.vnnlib import parse_vnnlib

    start = command_start()
    if not (args.timeout > 0 and math.isfinite(args.timeout)):
        raise PaperReproError(f"--timeout must be finite and > 0 seconds, got {args.timeout}")
    if args.threads < 1:
        raise PaperReproError(f"--threads must be at least 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    network = load_network(args.onnx, output_relu=True)  # a property's outputs: any values
    prop = parse_vnnlib(args.vnnlib)
    left = search_seconds(args.timeout, start)
    if left <= 0:
        _answer("timeout\n", args.result)
        print("# timeout before the search began (start-up used the time)", file=sys.stderr)
        return 0
    lp_only = CaseEngine(args.engine) == CaseEngine.LP
    every = 0.0 if args.quiet else PROGRESS_SECONDS
    opts = VerifyOptions(
        timeout=left,
        seed=args.seed,
        pgd=None if args.no_falsify else VerifyOptions().pgd,
        split_bab=None if lp_only else SplitBabOptions(progress=every),
        input_split=None if lp_only else InputSplitOptions(),
        progress=every,
    )
    with _stdout_to_stderr():  # solver banners (HiGHS prints from C) must not precede the answer
        res = verify_property(network, prop, opts)
    text = str(res.status) + "\n"
    if res.status == VerifyStatus.SAT:
        text += format_counterexample(res) + "\n"
    _answer(text, args.result)
    note = f"# {res.status} in {res.seconds:.2f} s"
    if res.status == VerifyStatus.SAT:
        note += (
            f" (case {res.case}, found by {res.found_by}; exact slack {res.exact_slack}, "
            f"float32 slack {res.float32_slack})"
        )
    if res.message:
        note += f": {res.message}"
    print(note, file=sys.stderr)
    return 0


def _answer(text: str, result: str | None) -> None:
    """Write the answer to ``result`` (if given) and stdout."""
    if result:
        try:
            Path(result).parent.mkdir(parents=True, exist_ok=True)
            Path(result).write_text(text)
        except OSError as exc:
            raise PaperReproError(f"cannot write result file {result}: {exc}") from None
    sys.stdout.write(text)


@contextlib.contextmanager
def _stdout_to_stderr():
    """Send file descriptor 1 (also C-level writes) to stderr for the duration."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def format_counterexample(result: VerifyResult) -> str:
    """VNN-COMP's counterexample ``((X_0 v) … (Y_0 v) …)``. ``X`` values are the checked
    float64 inputs (``repr``: they read back exactly), or the exact decimal where the checked
    point is not a float64; ``Y`` values are the exact outputs rounded to float64."""
    if result.x is None or result.y is None or result.point is None:
        raise PaperReproError("no counterexample to format")
    xs = [
        repr(float(v)) if Fraction(float(v)) == p else _decimal(p)
        for v, p in zip(result.x, result.point, strict=True)
    ]
    parts = [f"(X_{i} {v})" for i, v in enumerate(xs)]
    parts += [f"(Y_{j} {float(v)!r})" for j, v in enumerate(result.y)]
    return "(" + "\n ".join(parts) + ")"


def _decimal(v: Fraction) -> str:
    """``v`` as an exact decimal string if it has one (VNN-LIB bounds do), else its float."""
    d, twos, fives = v.denominator, 0, 0
    while d % 2 == 0:
        d, twos = d // 2, twos + 1
    while d % 5 == 0:
        d, fives = d // 5, fives + 1
    if d != 1:
        return repr(float(v))
    digits = max(twos, fives)
    scaled = abs(v.numerator) * 10**digits // v.denominator
    sign = "-" if v < 0 else ""
    whole, frac_part = divmod(scaled, 10**digits)
    return f"{sign}{whole}" + (f".{frac_part:0{digits}d}" if digits else "")
