"""Complete (exact) search for provably minimal adversarial examples.

Fixed-δ deciders (:mod:`paper_repro.exact.decide`) answer "is there an adversarial example within
δ?"; the minimal-distance engines bracket ``δ*`` (see :class:`paper_repro.query.MinAdvResult`).

* ``search`` — :func:`~paper_repro.exact.search.minimal_adversarial` (both protocols);
* ``decide`` — the fixed-δ question every backend answers;
* ``backends`` — the registry of the backends (``bab``, ``milp``, ``smt``, ``marabou``);
* ``engines/`` — one module per backend, plus the exact references the tests use;
* ``engine_parts/`` — the branch and bound's building blocks (bounds, incumbents, heuristics);
* ``witnesses/`` — exact-rational checks of witnesses, and results as JSON lines;
* ``frontends/`` — the VNN-LIB ``verify`` and the ``minadv`` / ``verify`` subcommands.
"""
