"""Turning a user row into an :class:`Actor`, and checking a login (no HTTP here).

``load_actor`` is what the web layer, the CLI, Celery tasks and tests use, so an actor built in
a test is the same as one built for a request. ``check_login`` applies the lockout rule: after
``attempts`` failed logins in a row the account is locked for ``minutes``; every attempt, good or
bad, is audited in the same transaction.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

import sqlalchemy as sa

from engine import audit
from engine.security.actor import Actor
from engine.security.users import check_password, org_units, user_roles, users


def _aware(dt: datetime | None) -> datetime | None:
    return dt if dt is None or dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def load_actor(conn: sa.Connection, user_id: int, *, limit_roles: list[str] | None = None,
               address: str | None = None, locale: str | None = None,
               expand: Callable[[set], set] | None = None) -> Actor | None:
    """The actor for an active user (None if missing or inactive). ``limit_roles`` (an API
    token's roles) narrows the grants and drops administrator rights."""
    row = conn.execute(sa.select(users).where(users.c.id == user_id)).mappings().first()
    if row is None or not row["is_active"]:
        return None
    roles = {r[0] for r in conn.execute(sa.select(user_roles.c.role).where(user_roles.c.user_id == user_id))}
    if limit_roles is not None:
        roles &= set(limit_roles)
    branch = team = None
    if row["org_unit_id"]:
        unit = conn.execute(sa.select(org_units).where(org_units.c.id == row["org_unit_id"])).mappings().first()
        if unit:
            path = [int(p) for p in unit["path"].strip("/").split("/") if p]
            kinds = {u["id"]: u["kind"] for u in conn.execute(
                sa.select(org_units.c.id, org_units.c.kind).where(org_units.c.id.in_(path))).mappings()}
            for uid in path:
                if kinds.get(uid) == "branch":
                    branch = uid
                elif kinds.get(uid) == "team":
                    team = uid
    expanded = expand(roles) if expand else roles
    return Actor(user_id=row["id"], username=row["username"], roles=frozenset(expanded),
                 locale=locale or row["locale"] or "zh-CN", org_unit=row["org_unit_id"],
                 branch=branch, team=team, address=address, is_admin=bool(row["is_admin"]) and limit_roles is None,
                 attributes={"display_name": row["display_name"]})


@dataclass(frozen=True)
class LockoutRule:
    attempts: int = 5
    minutes: int = 15

    @classmethod
    def from_env(cls, env=None) -> "LockoutRule":
        env = os.environ if env is None else env
        return cls(int(env.get("LOOM_LOCKOUT_ATTEMPTS", "5")), int(env.get("LOOM_LOCKOUT_MINUTES", "15")))


@dataclass(frozen=True)
class LoginResult:
    user_id: int | None
    reason: str = ""                     # "" | "wrong" | "locked" | "inactive"
    locked_until: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.user_id is not None


def check_login(conn: sa.Connection, username: str, password: str, *, address: str | None = None,
                rule: LockoutRule = LockoutRule()) -> LoginResult:
    """Verify a password with lockout; audits ``login`` / ``login_failed`` / ``login_locked``.

    A locked account is refused even with the right password (and the password is still hashed,
    so timing does not tell whether it was right). The failure reason given to the caller for a
    wrong password and an unknown user is the same.
    """
    now = datetime.now(timezone.utc)
    row = conn.execute(sa.select(users).where(users.c.username == username)).mappings().first()
    if row is None:
        check_password(None, password)
        audit.append(conn, "login_failed", actor=username[:80], address=address, detail={"reason": "unknown user"})
        return LoginResult(None, "wrong")
    locked_until = _aware(row["locked_until"])
    good = check_password(row["password_hash"], password)
    if locked_until is not None and locked_until > now:
        audit.append(conn, "login_locked", actor_id=row["id"], actor=username, address=address,
                     detail={"locked_until": locked_until.isoformat()})
        return LoginResult(None, "locked", locked_until)
    if good and row["is_active"]:
        conn.execute(users.update().where(users.c.id == row["id"]).values(
            last_login_at=now, failed_logins=0, locked_until=None))
        audit.append(conn, "login", actor_id=row["id"], actor=username, address=address)
        return LoginResult(row["id"])
    failures = (row["failed_logins"] or 0) + 1
    values = {"failed_logins": failures}
    detail = {"reason": "inactive" if good else "wrong password", "failures": failures}
    if failures >= rule.attempts:
        values["locked_until"] = now + timedelta(minutes=rule.minutes)
        values["failed_logins"] = 0
        detail["locked_until"] = values["locked_until"].isoformat()
    conn.execute(users.update().where(users.c.id == row["id"]).values(**values))
    audit.append(conn, "login_failed", actor_id=row["id"], actor=username, address=address, detail=detail)
    return LoginResult(None, "inactive" if good else "wrong", values.get("locked_until"))


def unlock(conn: sa.Connection, user_id: int) -> None:
    conn.execute(users.update().where(users.c.id == user_id).values(failed_logins=0, locked_until=None))


class ActorCache:
    """Who a token or session is, remembered for a moment.

    Resolving an actor costs a few queries (user, roles, org units); an API client making many
    calls a second would pay them on every request. Entries live ``ttl`` seconds; any change to
    users, roles or tokens made in this process (:func:`invalidate_actors`) drops them all at once,
    and other processes see a change within ``ttl`` (2 s by default, ``LOOM_AUTH_CACHE_SECONDS``).
    """

    def __init__(self, ttl: float = 2.0, size: int = 4096):
        import threading
        self.ttl, self.size = ttl, size
        self._data: dict = {}
        self._lock = threading.Lock()

    def get(self, key):
        hit = self._data.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, key, value) -> None:
        with self._lock:
            if len(self._data) >= self.size:
                self._data.clear()
            self._data[key] = (time.monotonic() + self.ttl, value)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


ACTORS = ActorCache(float(os.environ.get("LOOM_AUTH_CACHE_SECONDS", "2")))


def invalidate_actors() -> None:
    """Call after changing users, grants or tokens: the next request resolves afresh."""
    ACTORS.clear()
