"""The permission policy interface the record service and the query layer call.

One object answers three questions for an actor and an entity: may they do this action, which
rows may they see (a SQL clause), and what happens to each field for them (hidden, masked,
read-only). Every read and write path asks the same object, which is what keeps reports, exports
and API expansions from leaking what the screens hide.
"""
from __future__ import annotations

from typing import Protocol

ACTIONS = ("read", "create", "update", "delete", "import", "export", "print", "design", "administer")


class Policy(Protocol):
    def can(self, actor, entity, action: str) -> bool: ...

    def row_filter(self, actor, entity, action: str = "read"):
        """A SQLAlchemy clause over ``entity.table`` limiting the rows, or None for all rows."""

    def field_rules(self, actor, entity) -> dict[str, str]:
        """field key -> "hidden" | "masked" | "readonly" (fields not named are plain)."""


class AllowAll:
    """Every actor may do everything: used before roles are installed, and by system actors."""

    def can(self, actor, entity, action: str) -> bool:
        return True

    def row_filter(self, actor, entity, action: str = "read"):
        return None

    def field_rules(self, actor, entity) -> dict[str, str]:
        return {}


# -- the real policy: compiled from the published role definitions ------------------------------

import logging  # noqa: E402
from dataclasses import dataclass, field as dc_field  # noqa: E402

import sqlalchemy as sa  # noqa: E402

log = logging.getLogger(__name__)

#: most to least restrictive; across roles the least restrictive rule wins
RULE_RANK = {"hidden": 3, "masked": 2, "readonly": 1, None: 0}


@dataclass
class Grant:
    """One permission entry of one role, bound to one entity."""
    role: str
    actions: frozenset
    scope: object                     # engine.security.scopes.Scope, or None when it did not compile
    fields: dict = dc_field(default_factory=dict)


@dataclass
class RoleDef:
    key: str                          # "app.role"
    app: str
    label: object
    inherits: list[str]
    permissions: list[dict]


def qualify(app: str, key: str) -> str:
    return key if "." in key else f"{app}.{key}"


def role_defs(stored) -> dict[str, RoleDef]:
    """Role definitions (``engine.meta.store.Stored`` rows or (app, body) pairs) by qualified key."""
    out = {}
    for d in stored:
        app, body = (d.app, d.body) if hasattr(d, "body") else d
        key = qualify(app, body["key"])
        out[key] = RoleDef(key, app, body.get("label"), [qualify(app, r) for r in body.get("inherits") or []],
                           list(body.get("permissions") or []))
    return out


def expand(roles, defs: dict[str, RoleDef]) -> set[str]:
    """The roles plus everything they inherit, transitively (cycles are harmless)."""
    seen: set[str] = set()
    todo = list(roles)
    while todo:
        r = todo.pop()
        if r in seen:
            continue
        seen.add(r)
        d = defs.get(r)
        if d is not None:
            todo.extend(d.inherits)
    return seen


def entities_of(perm: dict, app: str, model) -> list:
    """The entities a permission entry names: one entity, or ``*`` = every entity of the role's app."""
    name = perm.get("entity", "")
    if name == "*":
        return [e for e in model.entities.values() if e.app == app and not e.is_child]
    ent = model.entities.get(qualify(app, name))
    return [ent] if ent is not None else []


class RolePolicy:
    """Permissions of the published roles. One instance per compiled model (rebuilt on publish).

    * ``can``: any of the actor's roles grants the action on the entity;
    * ``row_filter``: OR of the scopes of every grant of that action (``all`` wins outright);
    * ``field_rules``: per field, hidden/masked only if every role that can read hides/masks it;
      read-only if every role that can write (create/update/import) limits it -- so a read-only
      role that shows a field plainly never makes it writable.
    Admins and system actors are not limited.
    """

    def __init__(self, defs: dict[str, RoleDef], model):
        from engine.security.scopes import ScopeError, compile_scope
        self.defs = defs
        self.model = model
        self.grants: dict[tuple[str, str], list[Grant]] = {}
        for d in defs.values():
            for perm in d.permissions:
                for ent in entities_of(perm, d.app, model):
                    try:
                        scope = compile_scope(perm.get("scope"), ent)
                    except ScopeError as exc:          # refused at install; a stale definition matches nothing
                        log.error("role %s on %s: %s", d.key, ent.full_key, exc)
                        scope = None
                    self.grants.setdefault((d.key, ent.full_key), []).append(
                        Grant(d.key, frozenset(perm.get("actions") or ()), scope, dict(perm.get("fields") or {})))

    # -- helpers ---------------------------------------------------------------------------------

    def expand(self, roles) -> set[str]:
        return expand(roles, self.defs)

    @staticmethod
    def _free(actor) -> bool:
        return actor is not None and (actor.is_system or actor.is_admin)

    @staticmethod
    def _root(entity):
        while entity.parent is not None:
            entity = entity.parent
        return entity

    def _grants(self, actor, entity, action: str | None = None) -> list[Grant]:
        entity = self._root(entity)
        out = []
        for role in self.expand(actor.roles):
            for g in self.grants.get((role, entity.full_key), ()):
                if action is None or action in g.actions:
                    out.append(g)
        return out

    # -- the Policy protocol ----------------------------------------------------------------------

    def can(self, actor, entity, action: str) -> bool:
        if self._free(actor):
            return True
        return bool(self._grants(actor, entity, action))

    def row_filter(self, actor, entity, action: str = "read", _depth: int = 0):
        if self._free(actor):
            return None
        if entity.parent is not None:
            return None          # child rows are reached only through their (scoped) parent
        grants = self._grants(actor, entity, action)
        if not grants:
            return sa.false()
        clauses = []
        for g in grants:
            if g.scope is None:
                continue
            if g.scope.kind == "all":
                return None
            clauses.append(g.scope.clause(actor, entity, lambda col, target, d=_depth: self._linked(actor, col, target, d)))
        return sa.or_(*clauses) if clauses else sa.false()

    def _linked(self, actor, column, target_key: str, depth: int):
        """``linked:field``: the link points at a record the actor may read."""
        target = self.model.entities.get(target_key)
        if target is None or depth > 4 or not self.can(actor, target, "read"):
            return sa.false()
        inner = self.row_filter(actor, target, "read", depth + 1)
        q = sa.select(target.table.c.id)
        if inner is not None:
            q = q.where(inner)
        return column.in_(q)

    def field_rules(self, actor, entity) -> dict[str, str]:
        if self._free(actor):
            return {}
        prefix = ""
        if entity.parent is not None:      # rules of a child table are written "table.field" on the root
            names = []
            e = entity
            while e.parent is not None:
                names.append(e.parent_field)
                e = e.parent
            prefix = ".".join(reversed(names)) + "."
        readers = self._rules_by_role(self._grants(actor, entity, "read") or self._grants(actor, entity), prefix)
        writers = self._rules_by_role([g for g in self._grants(actor, entity)
                                       if g.actions & {"create", "update", "import"}], prefix)
        out = {}
        for k in set().union(*(r.keys() for r in readers.values()), *(r.keys() for r in writers.values())):
            # what the actor sees: the most permissive of the roles that can read
            seen = min((RULE_RANK.get(r.get(k), 0) if r.get(k) != "readonly" else 0 for r in readers.values()),
                       default=0)
            if seen >= RULE_RANK["masked"]:
                out[k] = "hidden" if seen == RULE_RANK["hidden"] else "masked"
            # what the actor may write: read-only unless a role that writes leaves it writable
            elif writers and all(RULE_RANK.get(r.get(k), 0) >= RULE_RANK["readonly"] for r in writers.values()):
                out[k] = "readonly"
        return out

    @staticmethod
    def _rules_by_role(grants, prefix: str) -> dict[str, dict[str, str]]:
        by_role: dict[str, dict[str, str]] = {}
        for g in grants:
            mine = by_role.setdefault(g.role, {})
            for k, rule in g.fields.items():
                if k.startswith(prefix) and RULE_RANK.get(rule, 0) > RULE_RANK.get(mine.get(k[len(prefix):]), 0):
                    mine[k[len(prefix):]] = rule
        return by_role
