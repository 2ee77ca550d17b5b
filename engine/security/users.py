"""Users, the org hierarchy (HQ > branch > team), role grants and API tokens.

Passwords are hashed with Argon2id (argon2-cffi). API tokens are random secrets shown once; only
their SHA-256 is stored, with an expiry, a revocation time and the roles they are limited to.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from engine.types import UTCDateTime
from engine.db import SYSTEM, JSONType

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_hasher = PasswordHasher()

org_units = sa.Table(
    "loom_org_unit", SYSTEM,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("parent_id", ID, sa.ForeignKey("loom_org_unit.id")),
    sa.Column("kind", sa.String(16), nullable=False),        # hq | branch | team
    sa.Column("code", sa.String(40), nullable=False, unique=True),
    sa.Column("name", JSONType, nullable=False),
    sa.Column("path", sa.String(255), nullable=False),       # "/1/4/9/": ancestors, for subtree scopes
)

users = sa.Table(
    "loom_user", SYSTEM,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(80), nullable=False, unique=True),
    sa.Column("display_name", sa.String(120)),
    sa.Column("email", sa.String(254)),
    sa.Column("mobile", sa.String(32)),
    sa.Column("password_hash", sa.String(255)),
    sa.Column("locale", sa.String(8), nullable=False, default="zh-CN"),
    sa.Column("is_active", sa.Boolean, nullable=False, default=True),
    sa.Column("is_admin", sa.Boolean, nullable=False, default=False),
    sa.Column("org_unit_id", ID, sa.ForeignKey("loom_org_unit.id")),
    sa.Column("failed_logins", sa.Integer, nullable=False, default=0),
    sa.Column("locked_until", UTCDateTime()),
    sa.Column("last_login_at", UTCDateTime()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

user_roles = sa.Table(
    "loom_user_role", SYSTEM,
    sa.Column("user_id", ID, sa.ForeignKey("loom_user.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("role", sa.String(80), primary_key=True),          # "app.role" key
)

tokens = sa.Table(
    "loom_api_token", SYSTEM,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("user_id", ID, sa.ForeignKey("loom_user.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(80), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(12), nullable=False),
    sa.Column("roles", JSONType),                                # None = all of the user's roles
    sa.Column("expires_at", UTCDateTime()),
    sa.Column("revoked_at", UTCDateTime()),
    sa.Column("last_used_at", UTCDateTime()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)


def now() -> datetime:
    return datetime.now(timezone.utc)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(stored_hash: str | None, password: str) -> bool:
    if not stored_hash:
        _hasher.hash(password)  # same cost as a real check: no timing hint that the user has no password
        return False
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def create_user(conn: sa.Connection, username: str, password: str | None, *, display_name: str | None = None,
                roles: list[str] = (), is_admin: bool = False, locale: str = "zh-CN", org_unit_id: int | None = None,
                email: str | None = None, mobile: str | None = None) -> int:
    uid = conn.execute(users.insert().values(
        username=username, display_name=display_name or username, password_hash=hash_password(password) if password else None,
        is_admin=is_admin, locale=locale, org_unit_id=org_unit_id, email=email, mobile=mobile,
        is_active=True, failed_logins=0, created_at=now())).inserted_primary_key[0]
    for role in roles:
        conn.execute(user_roles.insert().values(user_id=uid, role=role))
    return uid


def set_password(conn: sa.Connection, user_id: int, password: str) -> None:
    conn.execute(users.update().where(users.c.id == user_id).values(password_hash=hash_password(password)))


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(conn: sa.Connection, user_id: int, name: str, *, roles: list[str] | None = None,
                days: int = 90) -> str:
    """Create an API token and return the secret (shown once; only its hash is kept)."""
    secret = "loom_" + secrets.token_urlsafe(32)
    conn.execute(tokens.insert().values(user_id=user_id, name=name, token_hash=token_hash(secret), prefix=secret[:12],
                                        roles=roles, expires_at=now() + timedelta(days=days), created_at=now()))
    return secret


def add_org_unit(conn: sa.Connection, code: str, name, kind: str, parent_id: int | None = None) -> int:
    parent_path = "/"
    if parent_id is not None:
        parent_path = conn.execute(sa.select(org_units.c.path).where(org_units.c.id == parent_id)).scalar()
    uid = conn.execute(org_units.insert().values(code=code, name=name, kind=kind, parent_id=parent_id,
                                                 path="pending")).inserted_primary_key[0]
    conn.execute(org_units.update().where(org_units.c.id == uid).values(path=f"{parent_path}{uid}/"))
    return uid
