"""A VNN-LIB 1.0 property parser (the format of VNN-COMP 2021–2025), exact to the last digit.

A property declares inputs ``X_0 … X_{n−1}`` and outputs ``Y_0 … Y_{m−1}`` (``declare-const …
Real``) and asserts formulas over them; it *holds as a counterexample* (the verifier answers
``sat``) iff some input satisfies every assertion. Supported formulas: ``and``/``or`` of linear
(in)equalities ``<= >= < > =`` between linear terms (numbers, variables, ``+``, ``-``, ``*`` by a
constant). The assertions are brought to disjunctive normal form; each conjunction must consist of
single-variable bounds on inputs (the box) and linear constraints on outputs only.
:func:`parse_vnnlib` returns a :class:`Property`: a list of :class:`Case` (box, output polytope).
Numbers are kept as exact :class:`fractions.Fraction` (``0.1`` is one tenth, not a float).

Anything else (syntax errors, undeclared variables, non-linear terms, constraints mixing inputs and
outputs, an input without both bounds, an empty box) raises one :class:`PaperReproError`.
VNN-LIB 2.0 text is recognised and parsed by :mod:`paper_repro.vnnlib2` into the same property.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

from paper_repro.errors import PaperReproError

T = TypeVar("T")

_MAX_CASES = 100_000
_VAR = re.compile(r"^([XY])_(\d+)$")
_IGNORED = {"check-sat", "get-model", "set-info", "set-logic", "set-option", "exit"}


@dataclass(frozen=True)
class LinearConstraint:
    """``Σ_j coeffs[j]·Y_j ≤ rhs`` (``<`` when ``strict``), exact rationals; ``coeffs``: ``[m]``."""

    coeffs: tuple[Fraction, ...]
    rhs: Fraction
    strict: bool

    def holds(self, y: list[Fraction]) -> bool:
        """Whether exact outputs ``y`` (``[m]``) satisfy the constraint."""
        return self.slack(y) > 0 if self.strict else self.slack(y) >= 0

    def slack(self, y: list[Fraction]) -> Fraction:
        """``rhs − coeffs·y``: ``≥ 0`` (``> 0`` if strict) iff the constraint holds."""
        return self.rhs - sum((c * v for c, v in zip(self.coeffs, y, strict=True)), Fraction(0))


@dataclass(frozen=True)
class Box:
    """The input box ``lower ≤ X ≤ upper`` (exact rationals, ``[n]`` each); a strict flag per bound
    (``lower_strict[i]``: ``lower[i] < X_i``)."""

    lower: tuple[Fraction, ...]
    upper: tuple[Fraction, ...]
    lower_strict: tuple[bool, ...]
    upper_strict: tuple[bool, ...]

    def contains(self, x: list[Fraction]) -> bool:
        """Whether the exact point ``x`` (``[n]``) lies in the box (strict bounds respected)."""
        for v, lo, hi, sl, su in zip(
            x, self.lower, self.upper, self.lower_strict, self.upper_strict, strict=True
        ):
            if v < lo or v > hi or (sl and v == lo) or (su and v == hi):
                return False
        return True


@dataclass(frozen=True)
class Case:
    """One disjunct: inputs in ``box`` and every output constraint satisfied."""

    box: Box
    constraints: tuple[LinearConstraint, ...]


@dataclass(frozen=True)
class Property:
    """A parsed VNN-LIB property: ``sat`` iff some :class:`Case` has a point (``n_inputs`` X's,
    ``n_outputs`` Y's)."""

    n_inputs: int
    n_outputs: int
    cases: tuple[Case, ...]


# ------------------------------------------------------------------------------ tokens and s-exprs
def _tokens(text: str) -> list[tuple[str, int]]:
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split(";", 1)[0]
        for tok in line.replace("(", " ( ").replace(")", " ) ").split():
            out.append((tok, lineno))
    return out


def _sexprs(text: str) -> list:
    """Nested lists of ``(token, line)`` atoms; raises on unbalanced parentheses."""
    stack: list[list] = [[]]
    for tok, line in _tokens(text):
        if tok == "(":
            stack.append([])
            stack[-1].append(("(", line))  # the opening line, for messages
        elif tok == ")":
            if len(stack) == 1:
                raise PaperReproError(f"line {line}: unexpected ')'")
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append((tok, line))
    if len(stack) != 1:
        raise PaperReproError(f"unbalanced parentheses: {len(stack) - 1} '(' never closed")
    return stack[0]


def _line(expr) -> int:
    return expr[0][1] if isinstance(expr, list) else expr[1]


def _head(expr) -> tuple[str, list]:
    """``(op args…)`` → ``(op, args)``."""
    if not isinstance(expr, list):
        raise PaperReproError(f"line {expr[1]}: expected '(…)', got {expr[0]!r}")
    body = expr[1:]
    if not body or isinstance(body[0], list):
        raise PaperReproError(f"line {_line(expr)}: expected an operator after '('")
    return body[0][0], body[1:]


# ------------------------------------------------------------------------------ terms and formulas
_Linear = tuple[dict[tuple[str, int], Fraction], Fraction]  # {var: coeff}, constant


class _Parser:
    def __init__(self) -> None:
        self.declared: dict[str, tuple[str, int]] = {}

    def term(self, expr) -> _Linear:
        if not isinstance(expr, list):
            tok, line = expr
            if tok in self.declared:
                return {self.declared[tok]: Fraction(1)}, Fraction(0)
            if _VAR.match(tok):
                raise PaperReproError(f"line {line}: variable {tok} is used but not declared")
            try:
                return {}, Fraction(tok)
            except (ValueError, ZeroDivisionError):
                raise PaperReproError(f"line {line}: unknown symbol {tok!r}") from None
        op, args = _head(expr)
        line = _line(expr)
        parts = [self.term(a) for a in args]
        if op == "+" and parts:
            return _sum(parts, [1] * len(parts))
        if op == "-" and len(parts) == 1:
            return _sum(parts, [-1])
        if op == "-" and parts:
            return _sum(parts, [1] + [-1] * (len(parts) - 1))
        if op == "*" and parts:
            coeffs, const = {}, Fraction(1)
            for c, k in parts:
                if c and coeffs:
                    raise PaperReproError(f"line {line}: non-linear term (product of variables)")
                if c:
                    coeffs = c
                else:
                    const *= k
            if not coeffs:
                return {}, const
            k0 = next(k for c, k in parts if c)
            return {v: const * a for v, a in coeffs.items()}, const * k0
        if op == "/" and len(parts) == 2 and not parts[1][0] and parts[1][1] != 0:
            d = parts[1][1]
            return {v: a / d for v, a in parts[0][0].items()}, parts[0][1] / d
        raise PaperReproError(f"line {line}: unsupported or non-linear term ({op} …)")

    def formula(self, expr) -> list[list[tuple[_Linear, bool]]]:
        """DNF: a list of conjunctions of atoms ``(lhs − rhs ≤ 0 or < 0, strict)``."""
        op, args = _head(expr)
        line = _line(expr)
        if op == "and":
            dnf: list[list] = [[]]
            for a in args:
                dnf = [c + d for c in dnf for d in self.formula(a)]
                if len(dnf) > _MAX_CASES:
                    raise PaperReproError(f"line {line}: more than {_MAX_CASES} disjuncts in DNF")
            return dnf
        if op == "or":
            if not args:
                raise PaperReproError(f"line {line}: empty (or)")
            return [c for a in args for c in self.formula(a)]
        if op in ("<=", ">=", "<", ">", "="):
            if len(args) != 2:
                raise PaperReproError(f"line {line}: ({op} …) needs exactly two terms")
            a, b = self.term(args[0]), self.term(args[1])
            diff = _sum([a, b], [1, -1]) if op in ("<=", "<", "=") else _sum([b, a], [1, -1])
            atoms = [(diff, op in ("<", ">"))]
            if op == "=":
                atoms.append((_sum([b, a], [1, -1]), False))
            return [atoms]
        raise PaperReproError(f"line {line}: unsupported formula ({op} …)")


def _sum(parts: list[_Linear], signs: list[int]) -> _Linear:
    coeffs: dict = {}
    const = Fraction(0)
    for (c, k), s in zip(parts, signs, strict=True):
        for v, a in c.items():
            coeffs[v] = coeffs.get(v, Fraction(0)) + s * a
        const += s * k
    return {v: a for v, a in coeffs.items() if a != 0}, const


# ------------------------------------------------------------------------------ the property
def parse_vnnlib_text(text: str) -> Property:
    """Parse VNN-LIB 1.0 source text into a :class:`Property`; VNN-LIB 2.0 text (detected by
    its ``(vnnlib-version …)`` or ``(declare-network …)``) goes to :mod:`paper_repro.vnnlib2`.

    Raises:
        PaperReproError: any syntax error, undeclared or ill-named variable, non-linear term,
            unsupported construct, missing or contradictory input bounds.
    """
    from paper_repro import vnnlib2

    if vnnlib2.is_vnnlib2(text):
        return vnnlib2.parse_vnnlib2_text(text)
    parser = _Parser()
    asserts = []
    for cmd in _sexprs(text):
        op, args = _head(cmd)
        line = _line(cmd)
        if op == "declare-const":
            if len(args) != 2 or isinstance(args[0], list) or isinstance(args[1], list):
                raise PaperReproError(f"line {line}: expected (declare-const NAME Real)")
            name, sort = args[0][0], args[1][0]
            m = _VAR.match(name)
            if not m or sort != "Real":
                raise PaperReproError(
                    f"line {line}: only (declare-const X_i Real) / (declare-const Y_j Real) "
                    f"are supported, got {name} {sort}"
                )
            if name in parser.declared:
                raise PaperReproError(f"line {line}: {name} declared twice")
            parser.declared[name] = (m.group(1), int(m.group(2)))
        elif op == "assert":
            if len(args) != 1:
                raise PaperReproError(f"line {line}: (assert …) takes one formula")
            asserts.append(args[0])
        elif op not in _IGNORED:
            raise PaperReproError(f"line {line}: unsupported command ({op} …)")
    n_in, n_out = (_count(parser.declared.values(), k) for k in ("X", "Y"))
    dnf: list[list] = [[]]
    for a in asserts:
        dnf = [c + d for c in dnf for d in parser.formula(a)]
        if len(dnf) > _MAX_CASES:
            raise PaperReproError(f"more than {_MAX_CASES} disjuncts in DNF")
    cases = tuple(c for c in (_case(conj, n_in, n_out) for conj in dnf) if c is not None)
    return Property(n_in, n_out, cases)


def parse_vnnlib(path: str | Path) -> Property:
    """Read and parse the VNN-LIB file at ``path`` (see :func:`parse_vnnlib_text`)."""
    return parse_file(path, parse_vnnlib_text)


def parse_file(path: str | Path, parse: Callable[[str], T]) -> T:
    """``parse`` the text of the VNN-LIB file at ``path`` (either version); a missing or
    unreadable file, and every parse error, is one :class:`PaperReproError` naming the file."""
    p = Path(path)
    if not p.is_file():
        raise PaperReproError(f"VNN-LIB file not found: {p}")
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise PaperReproError(f"cannot read VNN-LIB file {p}: {exc}") from None
    try:
        return parse(text)
    except PaperReproError as exc:
        raise PaperReproError(f"{p}: {exc}") from None


def _count(declared, kind: str) -> int:
    idx = sorted(i for k, i in declared if k == kind)
    if idx != list(range(len(idx))):
        raise PaperReproError(f"{kind} variables must be {kind}_0 … {kind}_{{n−1}}, got {idx}")
    if not idx:
        raise PaperReproError(f"no {kind}_i variables declared")
    return len(idx)


def _case(conj: list[tuple[_Linear, bool]], n_in: int, n_out: int) -> Case | None:
    lo: list[Fraction | None] = [None] * n_in
    hi: list[Fraction | None] = [None] * n_in
    lo_s, hi_s = [False] * n_in, [False] * n_in
    outs = []
    for (coeffs, const), strict in conj:  # Σ a_v v + const ≤ 0 (< 0 if strict)
        kinds = {k for k, _ in coeffs}
        if not coeffs:
            if const > 0 or (strict and const == 0):
                return None  # a constant false atom: this disjunct has no point
            continue
        if kinds == {"X"} and len(coeffs) == 1:
            (_, i), a = next(iter(coeffs.items()))
            bound = -const / a
            if a > 0 and (hi[i] is None or bound < hi[i] or (bound == hi[i] and strict)):
                hi[i], hi_s[i] = bound, strict
            elif a < 0 and (lo[i] is None or bound > lo[i] or (bound == lo[i] and strict)):
                lo[i], lo_s[i] = bound, strict
        elif kinds == {"Y"}:
            row = [Fraction(0)] * n_out
            for (_, j), a in coeffs.items():
                row[j] = a
            outs.append(LinearConstraint(tuple(row), -const, strict))
        elif kinds == {"X"}:
            raise PaperReproError("input constraints must be bounds on single X_i (a box)")
        else:
            raise PaperReproError("a constraint mixes inputs X and outputs Y: not supported")
    for i in range(n_in):
        if lo[i] is None or hi[i] is None:
            side = "lower" if lo[i] is None else "upper"
            raise PaperReproError(f"X_{i} has no {side} bound: the input box must be bounded")
        if lo[i] > hi[i] or (lo[i] == hi[i] and (lo_s[i] or hi_s[i])):
            raise PaperReproError(f"empty input box: X_{i} ∈ [{float(lo[i])}, {float(hi[i])}]")
    box = Box(tuple(lo), tuple(hi), tuple(lo_s), tuple(hi_s))  # type: ignore[arg-type]
    return Case(box, tuple(outs))
