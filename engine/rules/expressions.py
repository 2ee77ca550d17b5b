"""The rule expression language: a checked subset of Python expressions, inlined into fast code.

Rule conditions, filters, scores and band inputs are restricted Python expressions (the one
expression language of Loom). They run once per event, so calling a sandboxed function for each
of them would cost more than the rule itself. Instead each expression is

1. compiled through the sandbox (``engine.sandbox.compile_expression`` when present, else
   RestrictedPython's ``compile_restricted_eval``), so anything the sandbox refuses is refused here
   with the same message;
2. checked against a much smaller whitelist: names, constants, arithmetic, comparisons, boolean
   logic, ``x if c else y`` and calls of a few pure built-ins. No attribute access, subscripts,
   lambdas, comprehensions or loops -- so the expression cannot reach any object, cannot loop and
   cannot run for long;
3. rewritten: every name becomes a generated local (a feature value, an event field) or a
   constant (a rule parameter), so the expression can name nothing of the engine.

Only the rewritten text is inlined into the generated function (:mod:`engine.rules.codegen`).
The same checked tree is also evaluated column-wise over numpy arrays by the vectorised backtest.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Callable

from engine.errors import Problem

#: pure built-ins an expression may call, and their numpy counterparts for the vectorised path
FUNCTIONS = {"abs": "abs", "min": "min", "max": "max", "round": "round", "len": "len"}

_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
_CMPOPS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Is, ast.IsNot)
_UNARY = (ast.Not, ast.USub, ast.UAdd)


class ExpressionError(Exception):
    """An expression outside the rule language; ``message`` names what is not allowed."""


@dataclass
class Checked:
    source: str
    tree: ast.Expression
    names: set[str] = field(default_factory=set)


def _sandbox_check(source: str, name: str) -> str | None:
    """The sandbox's own verdict (None = accepted)."""
    try:
        from engine.sandbox import SandboxCompileError, compile_expression  # type: ignore
    except Exception:  # the sandbox package is not complete yet: use RestrictedPython directly
        from RestrictedPython import compile_restricted_eval
        result = compile_restricted_eval(source, filename=name)
        if result.errors:
            return "; ".join(result.errors)
        return None
    try:
        compile_expression(source, name)
    except SandboxCompileError as exc:
        return str(exc)
    return None


def check(source: str, name: str = "<rule>") -> Checked:
    """Parse and check one expression; raise :class:`ExpressionError` naming the problem."""
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("empty expression")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"syntax error at column {exc.offset}: {exc.msg}") from None
    verdict = _sandbox_check(source.strip(), name)
    if verdict:
        raise ExpressionError(f"refused by the sandbox: {verdict}")
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Expression, ast.Load, ast.And, ast.Or, ast.BoolOp, ast.IfExp,
                             ast.Tuple, ast.List)) or isinstance(node, _BINOPS + _CMPOPS + _UNARY):
            continue
        if isinstance(node, ast.BinOp):
            if not isinstance(node.op, _BINOPS):
                raise ExpressionError(f"operator `{type(node.op).__name__}` is not allowed")
            if isinstance(node.op, ast.Pow) and not (isinstance(node.right, ast.Constant)
                                                    and isinstance(node.right.value, (int, float))
                                                    and abs(node.right.value) <= 8):
                raise ExpressionError("`**` needs a small constant exponent (at most 8)")
            continue
        if isinstance(node, ast.Compare):
            for op, right in zip(node.ops, node.comparators):
                if isinstance(op, (ast.Is, ast.IsNot)) and not (isinstance(right, ast.Constant) and right.value is None):
                    raise ExpressionError("`is` / `is not` only compare with None")
            continue
        if isinstance(node, ast.UnaryOp):
            continue
        if isinstance(node, ast.Name):
            if node.id.startswith("_"):
                raise ExpressionError(f"name `{node.id}`: names may not start with `_`")
            if node.id not in FUNCTIONS:
                names.add(node.id)
            continue
        if isinstance(node, ast.Constant):
            if not isinstance(node.value, (int, float, str, bool, type(None))):
                raise ExpressionError(f"constant `{node.value!r}` is not allowed")
            continue
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or node.keywords:
                fn = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
                raise ExpressionError(f"call of `{fn}` is not allowed (allowed: {', '.join(FUNCTIONS)})")
            continue
        if isinstance(node, ast.Attribute):
            raise ExpressionError(f"attribute access `.{node.attr}` is not allowed; name fields directly")
        if isinstance(node, ast.Subscript):
            raise ExpressionError("subscripts `[...]` are not allowed; name fields directly")
        raise ExpressionError(f"`{type(node).__name__}` is not allowed in a rule expression")
    return Checked(source.strip(), tree, names)


class _Rename(ast.NodeTransformer):
    def __init__(self, resolve: Callable[[str], ast.expr]):
        self.resolve = resolve

    def visit_Call(self, node: ast.Call):
        node.args = [self.visit(a) for a in node.args]
        return node

    def visit_Name(self, node: ast.Name):
        if node.id in FUNCTIONS:
            return node
        return ast.copy_location(self.resolve(node.id), node)


def rewrite(checked: Checked, resolve: Callable[[str], ast.expr]) -> str:
    """The expression's text with every name replaced by ``resolve(name)`` (an AST node)."""
    import copy
    tree = _Rename(resolve).visit(copy.deepcopy(checked.tree))
    ast.fix_missing_locations(tree)
    return "(" + ast.unparse(tree.body) + ")"


def problem(definition_file: str | None, path: str, exc: ExpressionError) -> Problem:
    return Problem(str(exc), file=definition_file, path=path, code="expression")
