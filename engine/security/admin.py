"""Audited administration of users, role grants and API tokens (shared by CLI and admin API).

Every change is written to the audit log in the same transaction, with the acting administrator,
so "who gave this advisor the compliance role, and when" always has an answer. Passwords and
token secrets never reach the log.
"""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa

from engine import audit
from engine.errors import Conflict, InvalidInput, NotFound, Problem
from engine.security.actor import Actor
from engine.security import users as u

MIN_PASSWORD = 10


def _log(conn, actor: Actor, action: str, user_id=None, detail=None) -> None:
    # every change to users, grants and tokens passes here: forget remembered actors at once
    from engine.security.identity import invalidate_actors
    invalidate_actors()
    audit.append(conn, action, actor_id=actor.user_id, actor=actor.username, address=actor.address,
                 entity="loom.user" if user_id is not None else None, record_id=user_id, detail=detail)


def check_password_strength(password: str) -> None:
    problems = []
    if len(password or "") < MIN_PASSWORD:
        problems.append(Problem(f"the password must have at least {MIN_PASSWORD} characters", field="password",
                                code="weak_password"))
    elif password.isdigit() or password.isalpha():
        problems.append(Problem("the password must mix letters with digits or symbols", field="password",
                                code="weak_password"))
    if problems:
        raise InvalidInput(problems=problems)


def known_roles(conn) -> set[str]:
    from engine.meta import store
    from engine.security.policy import qualify
    return {qualify(d.app, d.body["key"]) for d in store.current(conn, kind="role")}


def _check_roles(conn, roles) -> None:
    known = known_roles(conn)
    bad = [r for r in roles if r not in known]
    if bad:
        raise InvalidInput(problems=[Problem(f"unknown role `{r}`; roles are written app.role, one of: "
                                             f"{', '.join(sorted(known)) or '(none installed)'}", field="roles",
                                             code="unknown_role") for r in bad])


def user_row(conn, user: int | str) -> dict:
    col = u.users.c.id if isinstance(user, int) else u.users.c.username
    row = conn.execute(sa.select(u.users).where(col == user)).mappings().first()
    if row is None:
        raise NotFound(f"no user `{user}`")
    return dict(row)


def org_unit_id(conn, code: str | None) -> int | None:
    if not code:
        return None
    uid = conn.execute(sa.select(u.org_units.c.id).where(u.org_units.c.code == code)).scalar()
    if uid is None:
        raise InvalidInput(problems=[Problem(f"no org unit `{code}`", field="org_unit", code="unknown_org_unit")])
    return uid


def add_user(conn, actor: Actor, username: str, password: str | None, *, roles=(), is_admin: bool = False,
             org_unit: str | None = None, display_name: str | None = None, locale: str = "zh-CN",
             email: str | None = None, mobile: str | None = None) -> int:
    if not username or len(username) > 80:
        raise InvalidInput(problems=[Problem("a username of 1 to 80 characters is required", field="username",
                                             code="required")])
    if conn.execute(sa.select(u.users.c.id).where(u.users.c.username == username)).first():
        raise Conflict(f"user `{username}` already exists")
    if password is not None:
        check_password_strength(password)
    _check_roles(conn, roles)
    uid = u.create_user(conn, username, password, display_name=display_name, roles=list(roles), is_admin=is_admin,
                        locale=locale, org_unit_id=org_unit_id(conn, org_unit), email=email, mobile=mobile)
    _log(conn, actor, "user_create", uid, {"username": username, "roles": sorted(roles), "is_admin": is_admin,
                                           "org_unit": org_unit})
    return uid


def set_password(conn, actor: Actor, user_id: int, password: str) -> None:
    check_password_strength(password)
    user_row(conn, user_id)
    u.set_password(conn, user_id, password)
    conn.execute(u.users.update().where(u.users.c.id == user_id).values(failed_logins=0, locked_until=None))
    _log(conn, actor, "password_set", user_id)


def set_active(conn, actor: Actor, user_id: int, active: bool) -> None:
    user_row(conn, user_id)
    conn.execute(u.users.update().where(u.users.c.id == user_id).values(is_active=active))
    _log(conn, actor, "user_activate" if active else "user_deactivate", user_id)


def set_admin(conn, actor: Actor, user_id: int, is_admin: bool) -> None:
    user_row(conn, user_id)
    conn.execute(u.users.update().where(u.users.c.id == user_id).values(is_admin=is_admin))
    _log(conn, actor, "admin_grant" if is_admin else "admin_revoke", user_id)


def unlock(conn, actor: Actor, user_id: int) -> None:
    from engine.security.identity import unlock as _unlock
    user_row(conn, user_id)
    _unlock(conn, user_id)
    _log(conn, actor, "user_unlock", user_id)


def roles_of(conn, user_id: int) -> list[str]:
    return sorted(r[0] for r in conn.execute(sa.select(u.user_roles.c.role).where(u.user_roles.c.user_id == user_id)))


def grant(conn, actor: Actor, user_id: int, role: str) -> bool:
    """Grant a role; False if the user had it already (nothing is written)."""
    user_row(conn, user_id)
    _check_roles(conn, [role])
    if role in roles_of(conn, user_id):
        return False
    conn.execute(u.user_roles.insert().values(user_id=user_id, role=role))
    _log(conn, actor, "role_grant", user_id, {"role": role})
    return True


def revoke(conn, actor: Actor, user_id: int, role: str) -> bool:
    user_row(conn, user_id)
    n = conn.execute(u.user_roles.delete().where(u.user_roles.c.user_id == user_id, u.user_roles.c.role == role)).rowcount
    if n:
        _log(conn, actor, "role_revoke", user_id, {"role": role})
    return bool(n)


def list_users(conn) -> list[dict]:
    rows = conn.execute(sa.select(u.users.c.id, u.users.c.username, u.users.c.display_name, u.users.c.is_active,
                                  u.users.c.is_admin, u.users.c.org_unit_id, u.users.c.locked_until,
                                  u.users.c.last_login_at).order_by(u.users.c.username)).mappings().all()
    roles: dict[int, list[str]] = {}
    for uid, role in conn.execute(sa.select(u.user_roles.c.user_id, u.user_roles.c.role)):
        roles.setdefault(uid, []).append(role)
    return [{**dict(r), "roles": sorted(roles.get(r["id"], []))} for r in rows]


def issue_token(conn, actor: Actor, user_id: int, name: str, *, roles: list[str] | None = None,
                days: int = 90) -> tuple[int, str]:
    """(token id, secret). ``roles`` must be roles the user holds; the secret is shown once."""
    user_row(conn, user_id)
    if not 1 <= int(days) <= 366:
        raise InvalidInput(problems=[Problem("a token lives 1 to 366 days", field="days", code="parameter")])
    if roles is not None:
        held = set(roles_of(conn, user_id))
        extra = [r for r in roles if r not in held]
        if extra:
            raise InvalidInput(problems=[Problem(f"the user does not hold role `{r}`", field="roles", code="unknown_role")
                                         for r in extra])
    secret = u.issue_token(conn, user_id, name, roles=roles, days=int(days))
    tid = conn.execute(sa.select(u.tokens.c.id).where(u.tokens.c.token_hash == u.token_hash(secret))).scalar()
    _log(conn, actor, "token_issue", user_id, {"token": tid, "name": name, "prefix": secret[:12], "roles": roles,
                                               "days": int(days)})
    return tid, secret


def revoke_token(conn, actor: Actor, token_id: int) -> None:
    row = conn.execute(sa.select(u.tokens).where(u.tokens.c.id == token_id)).mappings().first()
    if row is None:
        raise NotFound(f"no API token {token_id}")
    if row["revoked_at"] is None:
        conn.execute(u.tokens.update().where(u.tokens.c.id == token_id).values(revoked_at=datetime.now(timezone.utc)))
        _log(conn, actor, "token_revoke", row["user_id"], {"token": token_id, "name": row["name"]})


def list_tokens(conn, user_id: int | None = None) -> list[dict]:
    q = sa.select(u.tokens.c.id, u.tokens.c.user_id, u.users.c.username, u.tokens.c.name, u.tokens.c.prefix,
                  u.tokens.c.roles, u.tokens.c.expires_at, u.tokens.c.revoked_at, u.tokens.c.last_used_at,
                  u.tokens.c.created_at).select_from(u.tokens.join(u.users, u.users.c.id == u.tokens.c.user_id))
    if user_id is not None:
        q = q.where(u.tokens.c.user_id == user_id)
    now = datetime.now(timezone.utc)
    out = []
    for r in conn.execute(q.order_by(u.tokens.c.id)).mappings():
        d = dict(r)
        exp = d["expires_at"]
        exp = exp.replace(tzinfo=timezone.utc) if exp is not None and exp.tzinfo is None else exp
        d["status"] = "revoked" if d["revoked_at"] else ("expired" if exp is not None and exp < now else "active")
        out.append(d)
    return out


def add_org_unit(conn, actor: Actor, code: str, name, kind: str, parent: str | None = None) -> int:
    if kind not in {"hq", "branch", "team"}:
        raise InvalidInput(problems=[Problem("kind is hq, branch or team", field="kind", code="parameter")])
    uid = u.add_org_unit(conn, code, name, kind, org_unit_id(conn, parent))
    _log(conn, actor, "org_unit_create", None, {"code": code, "kind": kind, "parent": parent})
    return uid


__all__ = ["add_user", "set_password", "set_active", "set_admin", "unlock", "grant", "revoke", "roles_of",
           "list_users", "issue_token", "revoke_token", "list_tokens", "add_org_unit", "user_row", "known_roles"]
