"""The compile-time half of the sandbox: RestrictedPython's transformer plus Loom's rules.

RestrictedPython's ``RestrictingNodeTransformer`` already refuses private names, ``exec``/``eval``,
``try/except*``, async code, ``nonlocal`` and frame attributes, and routes attribute, item, write,
iteration and unpacking operations through guard hooks. :class:`LoomPolicy` adds:

* clear refusals for what scripts never need: ``import``, ``class``, ``print``-as-stream
  (``print`` becomes ``log``), ``str.format``;
* plain attribute reads for the names in ``guards.NATIVE_OK`` (fast), guards for the rest;
* ``+ * ** << %`` through size-checking guards, f-strings through ``_fstring_``;
* a budget tick at the top of every ``while`` body, every ``def``/``lambda`` wrapped by
  ``_fguard_`` (ticks, recursion depth), every ``except`` block starting with ``_reraise_``;
* ``d[k] += v`` for simple targets (RestrictedPython refuses all item augmented assignment).

Finally :func:`bind_guards` turns every reference to a guard hook into a code constant. A global
named ``_getattr_`` in the data could otherwise shadow the guard -- and constants are also the
fastest thing the interpreter can load.
"""
from __future__ import annotations

import ast
import secrets
import types

from RestrictedPython.transformer import RestrictingNodeTransformer, copy_locations

from engine.errors import Problem
from engine.sandbox.guards import GUARDS, NATIVE_OK, TICKING_GUARDS, denied_reason

#: unguessable marker for guard constants (a script cannot write a string equal to it)
_MARK = f"\x00loom-guard-{secrets.token_hex(8)}:"

_GUARDED_BINOPS = {ast.Add: "_op_add_", ast.Mult: "_op_mul_", ast.Pow: "_op_pow_", ast.LShift: "_op_lshift_",
                   ast.Mod: "_op_mod_"}

_AUG_OPS = {ast.Add: "+=", ast.Sub: "-=", ast.Mult: "*=", ast.Div: "/=", ast.FloorDiv: "//=", ast.Mod: "%=",
            ast.Pow: "**=", ast.LShift: "<<=", ast.RShift: ">>=", ast.BitOr: "|=", ast.BitXor: "^=",
            ast.BitAnd: "&=", ast.MatMult: "@="}


def _is_number(node) -> bool:
    return (isinstance(node, ast.Constant) and type(node.value) in (int, float, complex)) or (
        isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) and _is_number(node.operand))


class LoomPolicy(RestrictingNodeTransformer):
    """One instance per compilation; collects :class:`Problem` objects with line and column."""

    #: set per compilation by :func:`make_policy`
    definition_name = "<script>"
    sink: list
    info: dict

    def __init__(self, errors=None, warnings=None, used_names=None):
        super().__init__(errors, warnings, used_names)
        self.guards_used: set[str] = set()

    # -- reporting -------------------------------------------------------------------------------

    def error(self, node, info):
        super().error(node, info)
        line = getattr(node, "lineno", None)
        col = getattr(node, "col_offset", None)
        self.sink.append(Problem(info, file=self.definition_name, line=line,
                                 column=None if col is None else col + 1, code="restricted"))

    def call(self, guard: str, args: list, node) -> ast.Call:
        self.guards_used.add(guard)
        call = ast.Call(func=ast.Name(guard, ast.Load()), args=args, keywords=[])
        copy_locations(call, node)
        return call

    # -- the tree as a whole ---------------------------------------------------------------------

    def visit_Module(self, node):
        node = super().visit_Module(node)
        return self._finish(node)

    def visit_Expression(self, node):
        node = super().visit_Expression(node)
        return self._finish(node)

    def _finish(self, node):
        mark_guards(node)
        self.info["guards"] = set(self.guards_used)
        return node

    # -- things scripts never need -----------------------------------------------------------------

    def visit_Import(self, node):
        self.error(node, "`import` is not available in scripts: the standard functions (math, json, Decimal, "
                         "date, statistics, re_search, ...) are already there, without importing")
        return node

    visit_ImportFrom = visit_Import

    def visit_ClassDef(self, node):
        self.error(node, "class definitions are not supported in scripts; use functions and dicts")
        return node

    def visit_Name(self, node):
        if node.id == "print":
            node.id = "log"
        elif node.id == "printed":
            self.error(node, "`printed` is not supported; log(...) collects messages")
            return node
        if isinstance(node.ctx, ast.Load):
            self.used_names[node.id] = True
        self.check_name(node, node.id)
        return node

    # -- attributes: native where always harmless, guarded otherwise -------------------------------

    def visit_Attribute(self, node):
        reason = denied_reason(node.attr)
        if reason and not node.attr.startswith("_"):
            node = self.node_contents_visit(node)     # report problems inside first, then this one
            self.error(node, reason)
            return node
        if isinstance(node.ctx, ast.Load) and node.attr in NATIVE_OK:
            return self.node_contents_visit(node)
        new = super().visit_Attribute(node)
        if isinstance(new, ast.Call):
            self.guards_used.add("_getattr_")
        return new

    # -- operators ---------------------------------------------------------------------------------

    def visit_BinOp(self, node):
        node = self.node_contents_visit(node)
        guard = _GUARDED_BINOPS.get(type(node.op))
        if guard is None:
            return node
        left, right = node.left, node.right
        if isinstance(node.op, ast.Add) and (_is_number(left) or _is_number(right)):
            return node         # number + x is a number or a TypeError, never a big sequence
        if isinstance(node.op, ast.Mult) and any(
                isinstance(x, ast.Constant) and type(x.value) is float for x in (left, right)):
            return node         # float * x likewise
        if isinstance(node.op, ast.Mod) and _is_number(left):
            return node         # not string formatting
        return self.call(guard, [left, right], node)

    def visit_AugAssign(self, node):
        target = node.target
        if not isinstance(target, ast.Subscript):
            new = super().visit_AugAssign(node)
            if isinstance(target, ast.Name):
                self.guards_used.add("_inplacevar_")
            return new
        # d[k] += v  ->  _write_(d)[k] = _inplacevar_('+=', _getitem_(d, k), v), for simple d and k
        simple = (ast.Name, ast.Constant)
        if not (isinstance(target.value, simple) and (isinstance(target.slice, simple) or _is_number(target.slice))):
            self.error(node, "augmented assignment to a computed item is not supported: "
                             "assign the container and the key to names first")
            return node
        container = self.visit(target.value)
        key = self.visit(target.slice)
        value = self.visit(node.value)
        load = self.call("_getitem_", [container, key], node)
        combined = self.call("_inplacevar_", [ast.Constant(_AUG_OPS[type(node.op)]), load, value], node)
        store = ast.Subscript(value=self.call("_write_", [ast.Name(container.id, ast.Load())
                                                          if isinstance(container, ast.Name) else container], node),
                              slice=key, ctx=ast.Store())
        new = ast.Assign(targets=[store], value=combined)
        copy_locations(new, node)
        return new

    # -- f-strings: sizes checked as a whole ---------------------------------------------------------

    def visit_JoinedStr(self, node):
        node = self.node_contents_visit(node)
        parts = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                spec = value.format_spec if value.format_spec is not None else ast.Constant(None)
                parts.append(self.call("_fmt_", [value.value, ast.Constant(value.conversion), spec], value))
            else:
                parts.append(value)
        if len(parts) == 1 and isinstance(parts[0], ast.Constant):
            return parts[0]
        tup = ast.Tuple(elts=parts, ctx=ast.Load())
        copy_locations(tup, node)
        return self.call("_fstring_", [tup], node)

    # -- loops, functions, handlers: budget ticks ---------------------------------------------------

    def visit_While(self, node):
        node = self.node_contents_visit(node)
        tick = ast.Expr(self.call("_tick_", [], node))
        copy_locations(tick, node)
        node.body.insert(0, tick)
        return node

    def guard_iter(self, node):
        node = super().guard_iter(node)
        self.guards_used.add("_iter_unpack_sequence_" if isinstance(node.target, ast.Tuple) else "_getiter_")
        return node

    def visit_Assign(self, node):
        new = super().visit_Assign(node)
        if isinstance(new, list):
            self.guards_used.add("_unpack_sequence_")
        return new

    def visit_YieldFrom(self, node):
        node = self.node_contents_visit(node)
        node.value = self.call("_getiter_", [node.value], node)
        return node

    def _star_displays(self, node):
        node = self.node_contents_visit(node)
        if isinstance(getattr(node, "ctx", ast.Load()), ast.Load):
            for elt in node.elts:
                if isinstance(elt, ast.Starred):
                    elt.value = self.call("_getiter_", [elt.value], elt)
        return node

    visit_List = visit_Tuple = visit_Set = _star_displays

    def visit_FunctionDef(self, node):
        node = super().visit_FunctionDef(node)
        guard = ast.Name("_fguard_", ast.Load())
        copy_locations(guard, node)
        node.decorator_list.append(guard)       # innermost: the script's own decorators wrap the guarded function
        self.guards_used.add("_fguard_")
        return node

    def visit_Lambda(self, node):
        node = super().visit_Lambda(node)
        return self.call("_fguard_", [node], node)

    def visit_ExceptHandler(self, node):
        node = super().visit_ExceptHandler(node)
        stmt = ast.Expr(self.call("_reraise_", [], node))
        copy_locations(stmt, node)
        node.body.insert(0, stmt)
        return node

    def visit_Subscript(self, node):
        new = super().visit_Subscript(node)
        self.guards_used.add("_getitem_" if isinstance(new, ast.Call) else "_write_")
        return new

    def visit_Call(self, node):
        new = super().visit_Call(node)
        if isinstance(new.func, ast.Name) and new.func.id == "_apply_":
            self.guards_used.add("_apply_")
        return new


def make_policy(name: str, sink: list, info: dict) -> type[LoomPolicy]:
    """A policy class bound to one compilation (RestrictedPython instantiates it itself)."""
    return type("LoomPolicy", (LoomPolicy,), {"definition_name": name, "sink": sink, "info": info})


class _GuardsToConstants(ast.NodeTransformer):
    """``_getattr_`` (a name) -> ``(0 or "<mark>_getattr_")``: folded to one constant by CPython."""

    def visit_Name(self, node):
        if node.id in GUARDS and isinstance(node.ctx, ast.Load):
            new = ast.BoolOp(op=ast.Or(), values=[ast.Constant(0), ast.Constant(_MARK + node.id)])
            copy_locations(new, node)
            for v in new.values:
                copy_locations(v, node)
            return new
        return node


def mark_guards(tree: ast.AST) -> None:
    """In place (RestrictedPython compiles the tree object it parsed)."""
    _GuardsToConstants().visit(tree)


def bind_guards(code: types.CodeType) -> types.CodeType:
    """Replace the marker constants by the guard functions, in ``code`` and every nested code."""
    consts = []
    changed = False
    for c in code.co_consts:
        if type(c) is str and c.startswith(_MARK):
            c = GUARDS[c[len(_MARK):]]
            changed = True
        elif isinstance(c, types.CodeType):
            new = bind_guards(c)
            changed = changed or new is not c
            c = new
        consts.append(c)
    return code.replace(co_consts=tuple(consts)) if changed else code


def uses_ticking_guards(guards_used: set[str]) -> bool:
    return bool(guards_used & TICKING_GUARDS)
