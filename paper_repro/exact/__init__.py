"""Complete (exact) search for provably minimal adversarial examples.

Fixed-δ deciders (:mod:`paper_repro.exact.decide`) answer "is there an adversarial example within
δ?"; the minimal-distance engines bracket ``δ*`` (see :class:`paper_repro.query.MinAdvResult`).
"""
