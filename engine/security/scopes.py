"""Row scopes: a role's ``scope`` text compiled once into a function actor -> SQL clause.

Scopes are ``all``, ``own``, ``team``, ``branch``, ``linked:<link field>`` or an expression over
the record and ``user`` such as ``advisor == user.id or branch == user.branch``. Expressions are
parsed with :mod:`ast` and translated node by node into SQLAlchemy -- they are never evaluated
as Python, so only comparisons, ``and``/``or``/``not``, ``in``, field names, ``user.<attr>`` and
literals can appear; anything else is rejected when the bundle is installed, with its location.

A comparison with a user attribute the actor does not have (no branch, no team) matches nothing:
an advisor without a branch must not see every record whose branch is empty.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any, Callable

import sqlalchemy as sa

STANDARD = ("id", "created_at", "created_by", "updated_at", "updated_by", "version")
USER_ATTRS = ("id", "username", "branch", "team", "org_unit", "locale")
KEYWORDS = ("all", "own", "team", "branch")


class ScopeError(ValueError):
    """A scope that cannot be compiled; the message names what is wrong."""


@dataclass(frozen=True)
class Scope:
    """A compiled scope: ``clause(actor, entity, resolve_linked)`` returns a clause or None (all rows)."""
    text: str
    kind: str                 # all | own | team | branch | linked | expr
    build: Callable[..., Any]

    def clause(self, actor, entity, linked: Callable):
        return self.build(actor, entity, linked)


def owner_column(entity):
    """The column holding the owning user's id: the entity's ``owner_field`` or ``created_by``."""
    name = entity.owner_field or "created_by"
    return entity.table.c[name]


def _org_members(unit_id: int):
    """SELECT of the ids of users whose org unit is ``unit_id`` or below it."""
    from engine.security.users import org_units, users
    mine = org_units.alias("scope_unit")
    theirs = org_units.alias("member_unit")
    prefix = sa.select(mine.c.path).where(mine.c.id == unit_id).scalar_subquery()
    return (sa.select(users.c.id).select_from(users.join(theirs, users.c.org_unit_id == theirs.c.id))
            .where(theirs.c.path.startswith(prefix)))


def _subtree(attr: str):
    def build(actor, entity, linked):
        col = owner_column(entity)
        unit = getattr(actor, attr, None)
        if unit is None:                                     # no team/branch: own records only
            return col == actor.user_id if actor.user_id is not None else sa.false()
        return sa.or_(col == actor.user_id, col.in_(_org_members(unit)))
    return build


def _own(actor, entity, linked):
    return owner_column(entity) == actor.user_id if actor.user_id is not None else sa.false()


def compile_scope(text: str | None, entity=None) -> Scope:
    """Compile a scope; with ``entity`` (an EntityModel) field names are checked too."""
    text = (text or "all").strip()
    if text == "all":
        return Scope(text, "all", lambda actor, entity, linked: None)
    if text == "own":
        _check_owner(entity)
        return Scope(text, "own", _own)
    if text in ("team", "branch"):
        _check_owner(entity)
        return Scope(text, text, _subtree(text))
    if text.startswith("linked:"):
        name = text[len("linked:"):].strip()
        if entity is not None:
            f = entity.fields.get(name)
            if f is None or f.type != "link":
                raise ScopeError(f"`linked:{name}`: `{name}` is not a link field of `{entity.key}`")

        def build(actor, ent, linked):
            f = ent.fields[name]
            return linked(ent.table.c[name], f.target)
        return Scope(text, "linked", build)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ScopeError(f"scope `{text}` is not a valid expression: {exc.msg} (column {exc.offset})") from None
    node = _Checker(entity).check(tree.body)
    return Scope(text, "expr", lambda actor, ent, linked: _translate(node, actor, ent))


def _check_owner(entity) -> None:
    if entity is None:
        return
    name = entity.owner_field or "created_by"
    if name in STANDARD:
        return
    f = entity.fields.get(name)
    if f is None or f.type not in {"integer", "link"}:
        raise ScopeError(f"owner_field `{name}` of `{entity.key}` must be an integer or link field holding a user id")


_CMP = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Is, ast.IsNot)


class _Checker:
    """Refuses every node that is not part of the small scope language."""

    def __init__(self, entity):
        self.entity = entity

    def check(self, node):
        if isinstance(node, ast.BoolOp):
            for v in node.values:
                self.check(v)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            self.check(node.operand)
        elif isinstance(node, ast.Compare):
            for op in node.ops:
                if not isinstance(op, _CMP):
                    raise ScopeError(f"operator `{type(op).__name__}` is not allowed in a scope")
            for operand in [node.left, *node.comparators]:
                self.operand(operand)
            for op, right in zip(node.ops, node.comparators):
                if isinstance(op, (ast.Is, ast.IsNot)) and not (isinstance(right, ast.Constant) and right.value is None):
                    raise ScopeError("`is` / `is not` may only compare with None")
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            pass
        else:
            raise ScopeError(f"`{ast.unparse(node)}` is not allowed in a scope: use comparisons joined by and/or/not")
        return node

    def operand(self, node):
        if isinstance(node, ast.Name):
            if node.id == "user":
                raise ScopeError("use an attribute of `user`, e.g. user.id")
            self.field(node.id)
        elif isinstance(node, ast.Attribute):
            if not (isinstance(node.value, ast.Name) and node.value.id == "user"):
                raise ScopeError(f"`{ast.unparse(node)}`: only attributes of `user` may be used")
            if node.attr not in USER_ATTRS:
                raise ScopeError(f"`user.{node.attr}` is unknown; use one of {', '.join('user.' + a for a in USER_ATTRS)}")
        elif isinstance(node, ast.Constant):
            if not isinstance(node.value, (str, int, float, bool, type(None))):
                raise ScopeError(f"literal `{ast.unparse(node)}` is not allowed")
        elif isinstance(node, (ast.List, ast.Tuple)):
            for elt in node.elts:
                if not isinstance(elt, ast.Constant):
                    raise ScopeError("lists in a scope may only hold literals")
                self.operand(elt)
        else:
            raise ScopeError(f"`{ast.unparse(node)}` is not allowed in a scope")

    def field(self, name: str) -> None:
        if self.entity is None or name in STANDARD:
            return
        f = self.entity.fields.get(name)
        if f is None:
            raise ScopeError(f"`{name}` is not a field of `{self.entity.key}`")
        if f.type == "table":
            raise ScopeError(f"`{name}` is a child table and cannot be used in a scope")
        if f.sensitive:
            raise ScopeError(f"`{name}` is encrypted (sensitive) and cannot be used in a scope")


_MISSING = object()


def _value(node, actor, entity):
    """(is_column, value) for an operand; a user attribute the actor lacks is ``_MISSING``."""
    if isinstance(node, ast.Name):
        return True, entity.table.c[node.id]
    if isinstance(node, ast.Attribute):
        value = actor.user_id if node.attr == "id" else getattr(actor, node.attr, None)
        return False, _MISSING if value is None else value
    if isinstance(node, (ast.List, ast.Tuple)):
        return False, [e.value for e in node.elts]
    return False, node.value


def _compare(op, left, right):
    if isinstance(op, ast.Eq):
        return left == right
    if isinstance(op, ast.NotEq):
        return left != right
    if isinstance(op, ast.Lt):
        return left < right
    if isinstance(op, ast.LtE):
        return left <= right
    if isinstance(op, ast.Gt):
        return left > right
    if isinstance(op, ast.GtE):
        return left >= right
    if isinstance(op, ast.Is):
        return left.is_(None)
    if isinstance(op, ast.IsNot):
        return left.isnot(None)
    if isinstance(op, ast.In):
        return left.in_(right)
    return left.not_in(right)


def _translate(node, actor, entity):
    if isinstance(node, ast.BoolOp):
        parts = [_translate(v, actor, entity) for v in node.values]
        return sa.and_(*parts) if isinstance(node.op, ast.And) else sa.or_(*parts)
    if isinstance(node, ast.UnaryOp):
        return sa.not_(_translate(node.operand, actor, entity))
    if isinstance(node, ast.Constant):
        return sa.true() if node.value else sa.false()
    parts = []
    left = node.left
    for op, right in zip(node.ops, node.comparators):
        lcol, lval = _value(left, actor, entity)
        rcol, rval = _value(right, actor, entity)
        if lval is _MISSING or rval is _MISSING:
            parts.append(sa.false())
        elif not lcol and not rcol:            # two constants / user values: decide now
            parts.append(sa.true() if _py_compare(op, lval, rval) else sa.false())
        elif not lcol:                         # literal on the left: flip
            if isinstance(op, (ast.In, ast.NotIn)):
                parts.append(_contains(op, rval, lval))
            else:
                parts.append(_compare(_flip(op), rval, sa.literal(lval)) if not isinstance(op, (ast.Is, ast.IsNot))
                             else sa.false())
        else:
            if isinstance(op, (ast.Is, ast.IsNot)):
                parts.append(_compare(op, lval, None))
            elif rcol:
                parts.append(_compare(op, lval, rval))
            elif isinstance(op, (ast.In, ast.NotIn)):
                parts.append(_compare(op, lval, list(rval) if isinstance(rval, (list, tuple)) else [rval]))
            elif rval is None:
                parts.append(lval.is_(None) if isinstance(op, ast.Eq) else lval.isnot(None))
            else:
                parts.append(_compare(op, lval, rval))
        left = right
    return parts[0] if len(parts) == 1 else sa.and_(*parts)


def _contains(op, column, value):
    """``'vip' in tags`` style: a literal inside a column is not supported beyond equality."""
    cond = column == value
    return cond if isinstance(op, ast.In) else sa.not_(cond)


def _flip(op):
    return {ast.Lt: ast.Gt(), ast.Gt: ast.Lt(), ast.LtE: ast.GtE(), ast.GtE: ast.LtE()}.get(type(op), op)


def _py_compare(op, a, b) -> bool:
    """A comparison between two known values (literals or user attributes), decided in Python."""
    checks = {ast.Eq: lambda: a == b, ast.NotEq: lambda: a != b, ast.Lt: lambda: a < b, ast.LtE: lambda: a <= b,
              ast.Gt: lambda: a > b, ast.GtE: lambda: a >= b, ast.In: lambda: a in b, ast.NotIn: lambda: a not in b,
              ast.Is: lambda: a is None, ast.IsNot: lambda: a is not None}
    try:
        return bool(checks[type(op)]())
    except TypeError:
        return False
