"""VNN-LIB 1.0 parser: exact numbers, DNF of output constraints, and one clear error per defect."""

from __future__ import annotations

from fractions import Fraction

import pytest

from paper_repro.errors import PaperReproError
from paper_repro.vnnlib import parse_vnnlib, parse_vnnlib_text

HEAD = """; two inputs, three outputs
(declare-const X_0 Real)
(declare-const X_1 Real)
(declare-const Y_0 Real)
(declare-const Y_1 Real)
(declare-const Y_2 Real)
"""
BOX = (
    "(assert (<= X_0 0.5))\n(assert (>= X_0 -0.1))\n(assert (and (<= X_1 1e-1) (>= X_1 (- 0.2))))\n"
)


def test_box_and_general_linear_disjunction():
    prop = parse_vnnlib_text(
        HEAD + BOX + "(assert (or (and (<= Y_0 Y_1)) "
        "(and (>= (+ Y_0 (* -1.0 Y_2)) 0.5) (< Y_1 3) (= (- Y_2 Y_0) (* 2 (/ 1 4))))))"
    )
    assert (prop.n_inputs, prop.n_outputs, len(prop.cases)) == (2, 3, 2)
    box = prop.cases[0].box
    assert box.lower == (Fraction(-1, 10), Fraction(-1, 5))  # exact decimals, not floats
    assert box.upper == (Fraction(1, 2), Fraction(1, 10))
    (c,) = prop.cases[0].constraints  # Y_0 − Y_1 ≤ 0
    assert c.coeffs == (1, -1, 0) and c.rhs == 0 and not c.strict
    a, b, e1, e2 = prop.cases[1].constraints
    assert a.coeffs == (-1, 0, 1) and a.rhs == Fraction(-1, 2) and not a.strict
    assert b.coeffs == (0, 1, 0) and b.rhs == 3 and b.strict
    assert e1.coeffs == (-1, 0, 1) and e1.rhs == Fraction(1, 2)  # Y_2 − Y_0 = 1/2, both ways
    assert e2.coeffs == (1, 0, -1) and e2.rhs == Fraction(-1, 2)
    assert c.holds([0, 0, 5]) and not b.holds([0, 3, 0]) and b.holds([0, Fraction(2999, 1000), 0])


def test_conjunction_of_disjunctions_expands_and_bounds_intersect():
    prop = parse_vnnlib_text(
        HEAD + BOX + "(assert (<= X_0 0.25))(assert (or (<= Y_0 0) (<= Y_1 0)))"
        "(assert (or (<= Y_2 0) (>= Y_2 1)))"
    )
    assert len(prop.cases) == 4 and prop.cases[0].box.upper[0] == Fraction(1, 4)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (HEAD + BOX + "(assert (<= Y_0 1)", "unbalanced"),
        (HEAD + BOX + "(assert (<= Y_0 1)))", "unexpected"),
        (HEAD + BOX + "(assert (<= Y_7 1))", "not declared"),
        (HEAD + BOX + "(assert (<= foo 1))", "unknown symbol"),
        (HEAD + BOX + "(assert (<= (* Y_0 Y_1) 1))", "non-linear"),
        (HEAD + BOX + "(assert (<= (exp Y_0) 1))", "unsupported"),
        (HEAD + BOX + "(assert (>= X_0 0.6))", "empty input box"),
        (HEAD + "(assert (<= X_0 1))(assert (>= X_0 0))(assert (<= X_1 1))", "no lower bound"),
        (HEAD + BOX + "(assert (<= (+ X_0 Y_0) 1))", "mixes inputs"),
        (HEAD + BOX + "(assert (<= (+ X_0 X_1) 1))", "single X_i"),
        (HEAD + BOX + "(declare-fun f (Real) Real)", "unsupported command"),
        (HEAD.replace("Y_2", "Y_3") + BOX, "Y_0"),
        (HEAD + BOX + "(assert (ite Y_0 1 2))", "unsupported formula"),
    ],
)
def test_malformed_properties_raise_one_clear_error(text, match):
    with pytest.raises(PaperReproError, match=match):
        parse_vnnlib_text(text)


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(PaperReproError, match="not found"):
        parse_vnnlib(tmp_path / "missing.vnnlib")
    bad = tmp_path / "bad.vnnlib"
    bad.write_text(HEAD + "(assert (<= X_0")
    with pytest.raises(PaperReproError, match=r"bad\.vnnlib"):
        parse_vnnlib(bad)
