"""Entry points on top of the engines: ``verify`` (VNN-LIB properties, VNN-COMP answers) with its
PGD ``falsify``-er, and the ``paper-repro minadv`` / ``paper-repro verify`` subcommands
(``cli_minadv``, ``cli_verify``).
"""
