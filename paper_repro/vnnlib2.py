"""A VNN-LIB 2.0 query parser for the single-network subset the engine decides, exact to the digit.

A 2.0 query opens with ``(vnnlib-version <2.0>)``, declares networks with typed tensors, then
asserts formulas over tensor elements::

    (vnnlib-version <2.0>)
    (declare-network N (declare-input X float32 [1,2]) (declare-output Y float32 [1,3]))
    (assert (and (>= X[0,0] 0.0) (<= X[0,0] 1.0)))        ; … every input element bounded
    (assert (or (>= Y[0,1] Y[0,0]) (>= (- Y[0,2] Y[0,0]) 0.5)))

Supported (logic ``NH-SNET-SIO-SNC``, ``LIN`` on outputs): one ``declare-network`` with one
``declare-input`` and one ``declare-output`` of a real or floating-point type (``real``,
``float32``, …) and any shape (``[]``: a scalar, used without index); ``and``/``or`` of ``<= >= <
> == !=`` between linear terms (numbers, elements ``X[i,j]``, ``+``, ``-``, ``*`` by a constant;
``!=`` is ``<`` or ``>``). As in 1.0 (:mod:`paper_repro.vnnlib`) the assertions go to disjunctive
normal form; every disjunct must bound each input element (a box) and constrain the outputs
linearly. ``X[i,j]`` becomes ``X_k``, ``k`` its row-major (ONNX) position: the result is the 1.0
parser's :class:`~paper_repro.vnnlib.Property`. Numbers are exact rationals; integer literals for
float variables and exponents (``1e-3``) are accepted (the reference grammar rejects both).

Anything else is one :class:`PaperReproError` naming it: syntax, an unknown or ill-indexed
variable, a non-linear term, ``=`` (2.0 writes ``==``), hidden nodes, several networks or
inputs/outputs, ``equal-to``/``isomorphic-to``, integer/bool/string types, a version other than
2.0, a constraint mixing inputs and outputs, an unbounded or empty box.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

from paper_repro.errors import PaperReproError
from paper_repro.vnnlib import _MAX_CASES, Property, _case, _sum, parse_file

VERSION = "2.0"
REAL_TYPES = frozenset({"real", "Real"})
_FLOAT_TYPE = re.compile(r"^(float(16|32|64)|bfloat16|float8e[45]m[23]\w*|float4e2m1)$")
_OTHER_TYPE = re.compile(r"^(u?int(8|16|32|64)|complex(64|128)|bool|string)$")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_TOKEN = re.compile(
    r"(?P<space>[ \t\r\f\v]+)|(?P<newline>\n)|(?P<comment>;[^\n]*)|(?P<version><\d+\.\d+>)"
    r'|(?P<string>"[^"\n]*")|(?P<punct>[()\[\],])|(?P<word>[^\s()\[\],";]+)'
)
_DETECT = re.compile(r"\(\s*(vnnlib-version|declare-network)\b")
_COMPARE = ("<=", ">=", "<", ">", "==", "!=")


@dataclass(frozen=True)
class TensorDecl:
    """A declared tensor: ``name``, element ``dtype`` as written, ``shape`` (``()``: a scalar),
    and the ONNX node name when the declaration gives one."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    onnx_name: str | None = None

    @property
    def size(self) -> int:  # the number of elements
        return math.prod(self.shape)

    def element(self, flat: int) -> str:
        """The VNN-LIB 2.0 name of the element at row-major position ``flat`` (``X[0,1]``)."""
        idx: list[str] = []
        for d in reversed(self.shape):
            flat, i = divmod(flat, d)
            idx.insert(0, str(i))
        return f"{self.name}[{','.join(idx)}]" if idx else self.name


@dataclass(frozen=True)
class Query2:
    """A parsed query of the supported subset: the network's name, its input and output
    declarations, and the :class:`~paper_repro.vnnlib.Property` over the flattened elements."""

    network: str
    input: TensorDecl
    output: TensorDecl
    property: Property


class _Atom(NamedTuple):
    text: str
    line: int


class _Index(NamedTuple):
    values: tuple[int, ...]
    line: int


class _List(NamedTuple):
    items: tuple
    line: int


class _Ref(NamedTuple):
    """A variable reference ``NAME`` or ``NAME[i,j]`` (``index`` ``None`` without brackets)."""

    atom: _Atom
    index: _Index | None


def is_vnnlib2(text: str) -> bool:
    """Whether ``text`` is a VNN-LIB 2.0 query: outside comments it has ``(vnnlib-version …)``
    or ``(declare-network …)``, which VNN-LIB 1.0 does not have."""
    return _DETECT.search(re.sub(r";[^\n]*", "", text)) is not None


# ------------------------------------------------------------------------------ tokens and trees
def _tree(text: str) -> list:
    """The top-level items: :class:`_List` ``(…)``, :class:`_Index` ``[…]``, :class:`_Atom`."""
    stack: list[list] = [[]]
    opened = [0]
    bracket: list[str] | None = None
    pos, line = 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise PaperReproError(f"line {line}: unterminated string or stray {text[pos]!r}")
        pos, kind, tok = m.end(), m.lastgroup, m.group()
        if kind == "newline":
            line += 1
        if kind in ("space", "newline", "comment"):
            continue
        if bracket is not None:
            if tok == "]":
                stack[-1].append(_index(bracket, line))
                bracket = None
            else:
                bracket.append(tok)
        elif tok == "[":
            bracket = []
        elif tok == "(":
            stack.append([])
            opened.append(line)
        elif tok == ")":
            if len(stack) == 1:
                raise PaperReproError(f"line {line}: unexpected ')'")
            done = _List(tuple(stack.pop()), opened.pop())
            stack[-1].append(done)
        elif tok in ("]", ","):
            raise PaperReproError(f"line {line}: unexpected {tok!r}")
        else:
            stack[-1].append(_Atom(tok, line))
    if bracket is not None:
        raise PaperReproError(f"line {line}: '[' never closed")
    if len(stack) != 1:
        raise PaperReproError(f"unbalanced parentheses: {len(stack) - 1} '(' never closed")
    return stack[0]


def _index(toks: list[str], line: int) -> _Index:
    """``[i, j, …]`` (``[]`` for a scalar): non-negative integers separated by commas."""
    if toks and (len(toks) % 2 == 0 or any(t != "," for t in toks[1::2])):
        raise PaperReproError(f"line {line}: malformed index list [{' '.join(toks)}]")
    values = toks[::2]
    if not all(v.isascii() and v.isdigit() for v in values):
        raise PaperReproError(f"line {line}: indices and dimensions must be integers: {values}")
    return _Index(tuple(int(v) for v in values), line)


def _head(item, what: str = "command") -> tuple[str, list]:
    """``(op args…)`` → ``(op, args)``."""
    if not isinstance(item, _List) or not item.items or not isinstance(item.items[0], _Atom):
        got = item.text if isinstance(item, _Atom) else "[…]" if isinstance(item, _Index) else "()"
        raise PaperReproError(f"line {item.line}: expected a {what} '(keyword …)', got {got!r}")
    return item.items[0].text, list(item.items[1:])


# ------------------------------------------------------------------------------ declarations
def _decl(item: _List, kind: str) -> TensorDecl:
    """``(declare-input NAME TYPE [dims] ["onnx-name"])`` (also ``-output``)."""
    _, args = _head(item)
    ok = len(args) in (3, 4) and isinstance(args[0], _Atom) and isinstance(args[1], _Atom)
    ok = ok and isinstance(args[2], _Index)
    ok = ok and (len(args) == 3 or (isinstance(args[3], _Atom) and args[3].text[0] == '"'))
    if not ok:
        raise PaperReproError(f"line {item.line}: expected (declare-{kind} NAME TYPE [dims])")
    name, dtype, shape = args[0].text, args[1].text, args[2].values
    if not _NAME.match(name):
        raise PaperReproError(f"line {item.line}: invalid variable name {name!r}")
    if _OTHER_TYPE.match(dtype):
        raise PaperReproError(f"line {item.line}: element type {dtype} of {name} is not supported")
    if dtype not in REAL_TYPES and not _FLOAT_TYPE.match(dtype):
        raise PaperReproError(f"line {item.line}: unknown element type {dtype!r} of {name}")
    if any(d == 0 for d in shape):
        raise PaperReproError(f"line {item.line}: {name} has an empty dimension in {list(shape)}")
    onnx_name = args[3].text[1:-1] if len(args) == 4 else None
    return TensorDecl(name, dtype, shape, onnx_name)


def _network(item: _List) -> tuple[str, TensorDecl, TensorDecl]:
    """``(declare-network NAME (declare-input …) (declare-output …))`` of the supported subset."""
    _, args = _head(item)
    if not args or not isinstance(args[0], _Atom) or not _NAME.match(args[0].text):
        raise PaperReproError(f"line {item.line}: expected (declare-network NAME …)")
    name, decls, order = args[0].text, {"input": [], "output": []}, []
    for sub in args[1:]:
        op, _ = _head(sub, "declaration")
        if op in ("equal-to", "isomorphic-to"):
            raise PaperReproError(f"line {sub.line}: ({op} …) is not supported (theory SNET)")
        if op == "declare-hidden":
            raise PaperReproError(f"line {sub.line}: hidden nodes are not supported (theory NH)")
        if op not in ("declare-input", "declare-output"):
            raise PaperReproError(f"line {sub.line}: unsupported declaration ({op} …) in {name}")
        kind = op.split("-")[1]
        if order and order[-1] == "output" and kind == "input":
            raise PaperReproError(f"line {sub.line}: inputs must be declared before outputs")
        order.append(kind)
        decls[kind].append(_decl(sub, kind))
    for kind, found in decls.items():
        if len(found) != 1:
            raise PaperReproError(
                f"line {item.line}: network {name} declares {len(found)} {kind}s: exactly one "
                "input and one output are supported (theory SIO)"
            )
    x, y = decls["input"][0], decls["output"][0]
    if x.name == y.name:
        raise PaperReproError(f"line {item.line}: variable {x.name} declared twice")
    return name, x, y


# ------------------------------------------------------------------------------ terms and formulas
_Linear = tuple[dict[tuple[str, int], Fraction], Fraction]  # {(kind, flat index): coeff}, constant


class _Parser:
    def __init__(self, x: TensorDecl, y: TensorDecl) -> None:
        self.vars = {x.name: ("X", x), y.name: ("Y", y)}

    def operands(self, items: list) -> list:
        """The operands of a term or formula: ``NAME [i,j]`` grouped into one :class:`_Ref`."""
        out: list = []
        for it in items:
            if isinstance(it, _Index):
                if not out or not isinstance(out[-1], _Atom) or not _NAME.match(out[-1].text):
                    raise PaperReproError(f"line {it.line}: an index [...] must follow a variable")
                out[-1] = _Ref(out[-1], it)
            else:
                out.append(it)
        return out

    def variable(self, ref: _Ref) -> _Linear:
        atom, index = ref
        if atom.text not in self.vars:
            raise PaperReproError(f"line {atom.line}: unknown variable {atom.text!r}")
        kind, decl = self.vars[atom.text]
        idx = index.values if index is not None else ()
        if len(idx) != len(decl.shape):
            raise PaperReproError(
                f"line {atom.line}: {atom.text} has shape {list(decl.shape)} but is indexed "
                f"with {len(idx)} indices"
            )
        flat = 0
        for i, d in zip(idx, decl.shape, strict=True):
            if i >= d:
                raise PaperReproError(
                    f"line {atom.line}: index {i} out of range in {atom.text}{list(idx)} "
                    f"(shape {list(decl.shape)})"
                )
            flat = flat * d + i
        return {(kind, flat): Fraction(1)}, Fraction(0)

    def term(self, expr) -> _Linear:
        if isinstance(expr, _Ref):
            return self.variable(expr)
        if isinstance(expr, _Atom):
            if expr.text in self.vars:
                return self.variable(_Ref(expr, None))
            if _NUMBER.match(expr.text):
                return {}, Fraction(expr.text)
            what = "variable" if _NAME.match(expr.text) else "symbol"
            raise PaperReproError(f"line {expr.line}: unknown {what} {expr.text!r}")
        op, args = _head(expr, "term")
        parts = [self.term(a) for a in self.operands(args)]
        if not parts:
            raise PaperReproError(f"line {expr.line}: ({op}) needs at least one term")
        if op == "+":
            return _sum(parts, [1] * len(parts))
        if op == "-":
            return _sum(parts, [-1] if len(parts) == 1 else [1] + [-1] * (len(parts) - 1))
        if op == "*":
            variable = [p for p in parts if p[0]]
            if len(variable) > 1:
                raise PaperReproError(f"line {expr.line}: non-linear term (product of variables)")
            k = math.prod((c for v, c in parts if not v), start=Fraction(1))
            coeffs, const = variable[0] if variable else ({}, Fraction(1))
            return {v: k * a for v, a in coeffs.items() if k * a != 0}, k * const
        raise PaperReproError(f"line {expr.line}: unsupported arithmetic operator ({op} …)")

    def formula(self, expr) -> list[list[tuple[_Linear, bool]]]:
        """DNF: a list of conjunctions of atoms ``(lhs − rhs ≤ 0, or < 0 if strict)``."""
        op, args = _head(expr, "formula")
        line = expr.line
        if op in ("and", "or"):
            if not args:
                raise PaperReproError(f"line {line}: ({op}) needs at least one formula")
            if op == "or":
                return [c for a in args for c in self.formula(a)]
            return _conjoin([self.formula(a) for a in args], f"line {line}: ")
        if op == "=":
            raise PaperReproError(f"line {line}: '=' is VNN-LIB 1.0 syntax; 2.0 writes '=='")
        if op not in _COMPARE:
            raise PaperReproError(f"line {line}: unsupported formula ({op} …)")
        terms = self.operands(args)
        if len(terms) != 2:
            raise PaperReproError(f"line {line}: ({op} …) compares exactly two terms")
        a, b = self.term(terms[0]), self.term(terms[1])
        a_le_b, b_le_a = _sum([a, b], [1, -1]), _sum([b, a], [1, -1])
        return {
            "<=": [[(a_le_b, False)]],
            "<": [[(a_le_b, True)]],
            ">=": [[(b_le_a, False)]],
            ">": [[(b_le_a, True)]],
            "==": [[(a_le_b, False), (b_le_a, False)]],
            "!=": [[(a_le_b, True)], [(b_le_a, True)]],
        }[op]


def _conjoin(dnfs: list[list[list]], where: str = "") -> list[list]:
    """The DNF of the conjunction of formulas in DNF."""
    dnf: list[list] = [[]]
    for d in dnfs:
        dnf = [a + b for a in dnf for b in d]
        if len(dnf) > _MAX_CASES:
            raise PaperReproError(f"{where}more than {_MAX_CASES} disjuncts in DNF")
    return dnf


# ------------------------------------------------------------------------------ the query
def parse_vnnlib2_query(text: str) -> Query2:
    """Parse VNN-LIB 2.0 source text into a :class:`Query2` (see the module docstring).

    Raises:
        PaperReproError: a syntax error, an unsupported version or construct (named), an unknown
            or ill-indexed variable, a non-linear term, missing or contradictory input bounds.
    """
    items = _tree(text)
    op, args = _head(items[0]) if items else ("", [])
    ver = args[0].text if len(args) == 1 and isinstance(args[0], _Atom) else ""
    if op != "vnnlib-version" or not ver.startswith("<"):
        raise PaperReproError("a VNN-LIB 2.0 query must start with (vnnlib-version <2.0>)")
    if ver != f"<{VERSION}>":
        raise PaperReproError(f"VNN-LIB version {ver[1:-1]} is not supported (only {VERSION})")
    networks, asserts = [], []
    for item in items[1:]:
        op, args = _head(item)
        if op == "declare-network":
            if asserts:
                raise PaperReproError(f"line {item.line}: networks must be declared before asserts")
            networks.append(item)
        elif op == "assert":
            if len(args) != 1:
                raise PaperReproError(f"line {item.line}: (assert …) takes one formula")
            asserts.append(args[0])
        else:
            raise PaperReproError(f"line {item.line}: unsupported command ({op} …)")
    if len(networks) != 1:
        raise PaperReproError(
            f"{len(networks)} networks declared: exactly one is supported (theory SNET)"
        )
    if not asserts:
        raise PaperReproError("no (assert …): the input box must be bounded")
    name, x, y = _network(networks[0])
    parser = _Parser(x, y)
    dnf = _conjoin([parser.formula(a) for a in asserts])
    try:
        cases = tuple(c for c in (_case(conj, x.size, y.size) for conj in dnf) if c is not None)
    except PaperReproError as exc:  # name the elements as the query does
        msg = str(exc).replace("single X_i", f"single elements of {x.name}")
        msg = re.sub(r"\bX_(\d+)\b", lambda m: x.element(int(m.group(1))), msg)
        raise PaperReproError(msg) from None
    return Query2(name, x, y, Property(x.size, y.size, cases))


def parse_vnnlib2_text(text: str) -> Property:
    """The :class:`~paper_repro.vnnlib.Property` of 2.0 text (:func:`parse_vnnlib2_query`)."""
    return parse_vnnlib2_query(text).property


def read_vnnlib2(path: str | Path) -> Query2:
    """Read and parse the VNN-LIB 2.0 file at ``path``; errors name the file."""
    return parse_file(path, parse_vnnlib2_query)
