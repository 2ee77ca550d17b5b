"""Restricted report expressions -> SQLAlchemy clauses, by walking the Python AST.

Filters (``amount >= params.min_amount and customer.risk_level != 'C1'``) and derived measures
(``net_commission / turnover``) are written in the same restricted Python syntax as the rest of
Loom, but they must run *in the database*, so they are never evaluated: :func:`translate` parses
the text with :mod:`ast` and builds SQLAlchemy expressions node by node from a small whitelist --
arithmetic, comparisons, ``and``/``or``/``not``, ``in`` lists, ``is None``, field paths,
``params.<name>`` and the functions ``coalesce`` and ``abs``. Anything else is refused with a
problem naming the expression. Values travel as bound parameters; no SQL text is concatenated.
Division is always safe (``a / NULLIF(b, 0)``).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.sql.expression import ClauseElement

from engine.errors import InvalidInput, Problem
from engine.reports.sqlfuncs import number_literal, safe_div

FUNCTIONS = {"coalesce": sa.func.coalesce, "abs": sa.func.abs}


class ExpressionError(InvalidInput):
    pass


@dataclass
class Parsed:
    text: str
    tree: ast.Expression
    names: set[str] = field(default_factory=set)      # dotted field paths / measure keys
    params: set[str] = field(default_factory=set)     # params.<name> used


def _dotted(node) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def parse(text: str, where: str = "expression") -> Parsed:
    """Parse and check the node whitelist; collect names and parameters (no database needed)."""
    try:
        tree = ast.parse(str(text).strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(problems=[Problem(f"{where}: `{text}` is not a valid expression ({exc.msg})",
                                                field=where, code="expression")]) from None
    parsed = Parsed(text, tree)
    allowed = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
               ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Mod, ast.Compare, ast.Eq, ast.NotEq,
               ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Is, ast.IsNot, ast.Constant,
               ast.List, ast.Tuple, ast.Load, ast.Call, ast.Name, ast.Attribute)
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            raise ExpressionError(problems=[Problem(
                f"{where}: `{type(node).__name__}` is not allowed in report expressions (`{text}`)",
                field=where, code="expression")])
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or node.keywords:
                raise ExpressionError(problems=[Problem(
                    f"{where}: only {', '.join(FUNCTIONS)} may be called (`{text}`)", field=where, code="expression")])
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, str, bool, type(None))):
            raise ExpressionError(problems=[Problem(f"{where}: unsupported constant in `{text}`", field=where,
                                                    code="expression")])
    _collect(tree.body, parsed, where)
    return parsed


def _collect(node, parsed: Parsed, where: str) -> None:
    if isinstance(node, (ast.Attribute, ast.Name)):
        path = _dotted(node)
        if path is None:
            raise ExpressionError(problems=[Problem(f"{where}: unsupported reference in `{parsed.text}`", field=where,
                                                    code="expression")])
        if any(part.startswith("_") for part in path.split(".")):
            raise ExpressionError(problems=[Problem(f"{where}: `{path}` is not a field (names may not start with _)",
                                                    field=where, code="expression")])
        if path.startswith("params."):
            parsed.params.add(path.split(".", 1)[1])
        elif path == "params":
            raise ExpressionError(problems=[Problem(f"{where}: write params.<name>", field=where, code="expression")])
        else:
            parsed.names.add(path)
        return
    if isinstance(node, ast.Call):
        for a in node.args:
            _collect(a, parsed, where)
        return
    for child in ast.iter_child_nodes(node):
        _collect(child, parsed, where)


def _is_number(v) -> bool:
    return isinstance(v, (int, float, Decimal)) and not isinstance(v, bool)


def _sql(v):
    """A Python value used as an operand of arithmetic: numbers as exact bound literals."""
    if isinstance(v, ClauseElement):
        return v
    if _is_number(v):
        return number_literal(v)
    return sa.literal(v)


def _cmp_operand(v, other):
    if isinstance(v, ClauseElement):
        return v
    if _is_number(v):
        return number_literal(v)
    if isinstance(v, (date, datetime, str, bool)) and isinstance(other, ClauseElement):
        return v          # SQLAlchemy binds it with the column's own type
    return sa.literal(v)


def translate(parsed: Parsed, resolve: Callable[[str], Any], params: dict[str, Any], where: str = "expression"):
    """Build the SQL expression; ``resolve(path)`` returns a column (or aggregate) for a name."""

    def fail(msg):
        raise ExpressionError(problems=[Problem(f"{where}: {msg} (`{parsed.text}`)", field=where, code="expression")])

    def go(node):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            return [go(e) for e in node.elts]
        if isinstance(node, (ast.Name, ast.Attribute)):
            path = _dotted(node)
            if path.startswith("params."):
                name = path.split(".", 1)[1]
                if name not in params:
                    fail(f"no parameter `{name}`")
                return params[name]
            return resolve(path)
        if isinstance(node, ast.BoolOp):
            parts = [go(v) for v in node.values]
            return sa.and_(*parts) if isinstance(node.op, ast.And) else sa.or_(*parts)
        if isinstance(node, ast.UnaryOp):
            v = go(node.operand)
            if isinstance(node.op, ast.Not):
                return sa.not_(v)
            if isinstance(node.op, ast.USub):
                return -v if not isinstance(v, ClauseElement) else sa.literal(0) - v
            return v
        if isinstance(node, ast.BinOp):
            a, b = go(node.left), go(node.right)
            if isinstance(node.op, ast.Div):
                return safe_div(_sql(a), _sql(b))
            a, b = _sql(a), _sql(b)
            if isinstance(node.op, ast.Add):
                return a + b
            if isinstance(node.op, ast.Sub):
                return a - b
            if isinstance(node.op, ast.Mult):
                return a * b
            return a % b
        if isinstance(node, ast.Compare):
            left = go(node.left)
            out = []
            for op, comp in zip(node.ops, node.comparators):
                right = go(comp)
                out.append(_compare(op, left, right, fail))
                left = right
            return out[0] if len(out) == 1 else sa.and_(*out)
        if isinstance(node, ast.Call):
            return FUNCTIONS[node.func.id](*[_sql(go(a)) for a in node.args])
        fail(f"unsupported `{type(node).__name__}`")

    return go(parsed.tree.body)


def _compare(op, left, right, fail):
    if isinstance(op, (ast.In, ast.NotIn)):
        if not isinstance(right, list) or not isinstance(left, ClauseElement):
            fail("`in` needs a field on the left and a list of values on the right")
        clause = left.in_([_cmp_operand(v, left) if _is_number(v) else v for v in right])
        return sa.not_(clause) if isinstance(op, ast.NotIn) else clause
    if isinstance(op, (ast.Is, ast.IsNot)) or right is None or left is None:
        if right is not None and left is not None:
            fail("`is` compares with None only")
        col = left if right is None else right
        col = _cmp_operand(col, None)
        positive = isinstance(op, (ast.Is, ast.Eq))
        if not isinstance(op, (ast.Is, ast.IsNot, ast.Eq, ast.NotEq)):
            fail("None can only be compared with ==, !=, is, is not")
        return col.is_(None) if positive else col.isnot(None)
    a, b = _cmp_operand(left, right), _cmp_operand(right, left)
    if not isinstance(a, ClauseElement):
        a = sa.literal(a)
    return _apply(type(op), a, b)


def _apply(op, a, b):
    if op is ast.Eq:
        return a == b
    if op is ast.NotEq:
        return a != b
    if op is ast.Lt:
        return a < b
    if op is ast.LtE:
        return a <= b
    if op is ast.Gt:
        return a > b
    return a >= b
