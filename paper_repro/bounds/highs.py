"""HiGHS instances with the project's settings, and a ``run`` that cannot fail silently.

Every HiGHS model in the package (node LPs, the MILP baseline, the brute-force reference) is
made by :func:`new_highs` and solved by :func:`run_highs`.

**Why (HiGHS's thread scheduler).** HiGHS solves on a task scheduler that belongs to the calling
thread. The first ``run()`` in a thread creates it with the ``threads`` option of the instance
that ran; ``threads = 0`` (HiGHS's default) means "the scheduler's count". A later instance in
that thread whose ``threads`` is set to another count is refused: ``run()`` returns
``HighsStatus.kError`` before solving and the model status stays ``kNotset``. HiGHS ≤ 1.15 gave
a default scheduler half the hardware threads (1 on a 2-core machine, which happened to match
the engine's ``threads = 1``); HiGHS 1.16 gives it all of them (2). So on 1.16, once any
default instance had run in a thread (the reference, a test, a user's own highspy code), every
engine LP there was refused, and a search that ignored the refusal ended without bounds.

The fix has two parts: every instance here sets ``threads = 1`` (one core per worker; the dual
simplex is serial anyway), and :func:`run_highs` retries a refused run with ``threads = 0``
(whatever scheduler the thread already has) and raises if HiGHS still refuses, so a refusal can
never pass for "no bound" again.

HiGHS 1.16 also prints a two-line banner on standard output when a process makes its first
instance, before any option can silence it; the package's stdout is data (``minadv``'s JSON, a
verifier's first line), so :func:`new_highs` makes that first instance with file descriptor 1
pointed at ``/dev/null``.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys
from collections.abc import Iterator, Mapping

import highspy

from paper_repro.errors import PaperReproError

SOLVER_THREADS = 1
"""HiGHS ``threads`` for every instance: one core per worker process."""

OptionValue = bool | int | float | str


class SolverError(PaperReproError):
    """HiGHS rejected an option or refused to run (a configuration error, not an LP outcome)."""


def new_highs(options: Mapping[str, OptionValue] | None = None) -> highspy.Highs:
    """A silent HiGHS instance with ``threads = SOLVER_THREADS`` and ``options`` applied.

    Raises :class:`SolverError` for an option this HiGHS does not know or a value it rejects
    (an option renamed by a release is caught here, not ignored).
    """
    _first_instance_made_quietly()
    h = highspy.Highs()
    settings = {"output_flag": False, "threads": SOLVER_THREADS, **dict(options or {})}
    for name, value in settings.items():
        if h.setOptionValue(name, value) != highspy.HighsStatus.kOk:
            raise SolverError(f"HiGHS {h.version()} rejected option {name} = {value!r}")
    return h


def run_highs(h: highspy.Highs) -> highspy.HighsModelStatus:
    """``h.run()``, then its model status; a run refused before solving is retried once with
    ``threads = 0`` (the calling thread's existing scheduler; see the module docstring).

    Raises :class:`SolverError` if HiGHS refuses again. Any other outcome, including solver
    errors and time limits, is returned as the model status for the caller to judge.
    """
    if _refused(h, h.run()):
        h.setOptionValue("threads", 0)
        if _refused(h, h.run()):
            raise SolverError(
                f"HiGHS {h.version()} refused to run (status kError, model status kNotset) "
                "even on this thread's existing scheduler"
            )
    return h.getModelStatus()


def _refused(h: highspy.Highs, status: highspy.HighsStatus) -> bool:
    return status == highspy.HighsStatus.kError and (
        h.getModelStatus() == highspy.HighsModelStatus.kNotset
    )


@functools.cache
def _first_instance_made_quietly() -> None:
    """Make (and drop) the process's first HiGHS instance with its banner discarded."""
    with _stdout_discarded():
        highspy.Highs()


@contextlib.contextmanager
def _stdout_discarded() -> Iterator[None]:
    """File descriptor 1 points at ``/dev/null`` inside (C and C++ writes included)."""
    sys.stdout.flush()
    try:
        saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    except OSError:  # no usable stdout: nothing to protect
        yield
        return
    os.dup2(devnull, 1)
    try:
        yield
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).fflush(None)  # C stdio's buffer goes to /dev/null too
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
