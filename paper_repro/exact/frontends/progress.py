"""Progress lines on stderr for long runs (``paper-repro verify``): rate limited, never on stdout,
where a VNN-COMP harness reads the answer."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field


@dataclass
class Progress:
    """Prints ``# <seconds since start> s: <text>`` on stderr, at most one line every ``every``
    seconds (``0``: none) unless a line is forced.

    Args:
        every: seconds between lines (``time.monotonic()`` clock); ``≤ 0`` silences all lines.
        start: the ``time.monotonic()`` value the printed seconds count from.
    """

    every: float
    start: float = field(default_factory=time.monotonic)
    _next: float = -float("inf")

    def say(self, text: str, force: bool = False) -> bool:
        """Print ``text`` if a line is due (or ``force``); returns whether it was printed."""
        if self.every <= 0:
            return False
        now = time.monotonic()
        if not force and now < self._next:
            return False
        self._next = now + self.every
        print(f"# {now - self.start:.1f} s: {text}", file=sys.stderr, flush=True)
        return True
