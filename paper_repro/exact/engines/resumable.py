"""The resumable-search contract shared by the batched engines (``split_bab``, ``input_split``).

A search keeps its open nodes (or boxes) between calls: :meth:`ResumableSearch.run` stops at its
deadline with them kept, and a later call continues from them. An exception in the middle of a
step loses the nodes popped for it, so such a search is closed for good (``unknown``): resuming
it could prove what it never looked at.
"""

from __future__ import annotations

import time

from paper_repro.exact.decide import Decision, Verdict


class ResumableSearch:
    """Base of a search answered by :meth:`run`; subclasses implement :meth:`_run`.

    Attributes:
        seconds: spent in :meth:`run` so far, all calls together.
        final: the answer once there is one (anything but a ``timeout: …``).
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self.final: Decision | None = None

    def run(self, deadline: float) -> Decision:
        """Search until ``deadline`` (a ``time.monotonic()`` value).

        Returns:
            ``robust`` (proved: no point, from outward-rounded bounds only), ``adversarial``
            with a float64 candidate ``x`` (``max_k (C f(x))_k ≤ 0`` in float64: check it
            exactly), or ``unknown`` with the reason (``timeout: …``, or why it gave up); only
            after ``timeout: …`` may ``run`` be called again. Seconds are those of all runs.
        """
        if self.final is not None:
            return self.final
        start = time.monotonic()
        try:
            decision = self._run(start, deadline)
        except BaseException:  # the popped nodes are lost: never resume (it could prove wrongly)
            self.final = Decision(Verdict.UNKNOWN, None, 0.0, "the search was interrupted")
            raise
        finally:
            self.seconds += time.monotonic() - start
        decision = Decision(decision.verdict, decision.witness, self.seconds, decision.message)
        if not decision.message.startswith("timeout"):
            self.final = decision
        return decision

    def _run(self, start: float, deadline: float) -> Decision:  # pragma: no cover - abstract
        raise NotImplementedError
