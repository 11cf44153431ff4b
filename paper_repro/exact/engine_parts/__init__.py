"""Building blocks of the engines (mostly of the branch and bound; some shared with the MILP and
the search): ``bab_options`` (the BaB's knobs), ``node_bound`` (certified lower bounds inside a
node), ``incumbent`` (first witnesses from an attack), ``primal_heuristics`` (improving the
incumbent), ``region`` (exact witnesses from one activation region) and ``certified_start`` (a
CROWN lower bound for an open bracket).
"""
