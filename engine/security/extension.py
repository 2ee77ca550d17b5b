"""Wires the security package into a Loom: the role policy, role expansion, install checks and
the database triggers that make the audit log append-only.

``attach(loom)`` is called for every new Loom (see ``engine.runtime.loom.EXTENSIONS``).
"""
from __future__ import annotations

import logging

import sqlalchemy as sa

from engine.errors import Problem
from engine.security.policy import RolePolicy, entities_of, qualify, role_defs

log = logging.getLogger(__name__)


def load_roles(conn: sa.Connection):
    from engine.meta import store
    return role_defs(store.current(conn, kind="role"))


def policy_factory(loom, model):
    """A :class:`RolePolicy` over the roles published now, for the model just adopted."""
    try:
        with loom.db.connect() as conn:
            defs = load_roles(conn)
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):
        defs = {}
    return RolePolicy(defs, model)


def check_roles(bundle, model) -> list[Problem]:
    """Install check: every role names known entities, inherited roles and valid scopes and
    field rules. Problems carry the file and line of the offending entry."""
    from engine.security.scopes import ScopeError, compile_scope
    if model is None:
        return []
    problems: list[Problem] = []
    app = bundle.key
    keys = {qualify(app, d.body.get("key", "")) for d in bundle.of_kind("role")}
    for d in bundle.of_kind("role"):
        for i, parent in enumerate(d.body.get("inherits") or []):
            if "." not in parent and qualify(app, parent) not in keys:
                problems.append(d.problem(f"role `{d.key}` inherits unknown role `{parent}`", ("inherits", i)))
        for i, perm in enumerate(d.body.get("permissions") or []):
            ents = entities_of(perm, app, model)
            if not ents:
                problems.append(d.problem(f"role `{d.key}`: no entity `{perm.get('entity')}` in `{app}`",
                                          ("permissions", i, "entity")))
                continue
            for ent in ents:
                try:
                    compile_scope(perm.get("scope"), ent)
                except ScopeError as exc:
                    problems.append(d.problem(f"role `{d.key}`, entity `{ent.key}`: {exc}",
                                              ("permissions", i, "scope"), code="scope"))
                    break
                if perm.get("entity") == "*":
                    continue
                for fk in perm.get("fields") or {}:
                    if not _field_exists(ent, fk):
                        problems.append(d.problem(f"role `{d.key}`: `{ent.key}` has no field `{fk}`",
                                                  ("permissions", i, "fields", fk)))
    return problems


def _field_exists(ent, dotted: str) -> bool:
    parts = dotted.split(".")
    for n, part in enumerate(parts):
        f = ent.fields.get(part)
        if f is None:
            return False
        if n < len(parts) - 1:
            if f.children is None:
                return False
            ent = f.children
    return True


class SecurityExtension:
    """``init_db`` creates the audit log's append-only triggers (``loom init`` and tests)."""

    def __init__(self, loom):
        self.loom = loom

    def init_db(self, engine: sa.Engine) -> list[str]:
        from engine.audit.triggers import install_triggers
        return install_triggers(engine)


def attach(loom) -> None:
    loom.policy_factory = policy_factory
    loom.expand_roles = lambda roles: (loom.policy.expand(roles) if hasattr(loom.policy, "expand") else set(roles))
    loom.install_checks.append(check_roles)
    loom.extend("security", SecurityExtension(loom))
