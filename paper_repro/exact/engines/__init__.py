"""The complete engines, one module per backend of :mod:`paper_repro.exact.backends`.

``bab`` (branch and bound, the default), ``milp`` (the big-M MILP baseline), ``smt`` (the exact
PySMT specification, solved by z3 or cvc5), ``marabou_backend`` (maraboupy); plus two exact
references used by the tests: ``smt_optimize`` (z3's optimisation modulo theories) and
``reference`` (brute force over activation patterns, tiny networks only).
"""
