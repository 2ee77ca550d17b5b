"""The definition store: every definition, versioned, in the database.

A definition is identified by (app, kind, key). Publishing writes a new immutable version row and
marks the previous one superseded; nothing ever updates a published body. Drafts (the designer's
work in progress) live in their own table with a lock version, so two analysts editing the same
definition cannot overwrite each other. Every publish bumps a global revision number that running
processes poll cheaply to reload their compiled model without a restart.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from engine.types import UTCDateTime
from engine.db import SYSTEM, JSONType, json_default
from engine.errors import Conflict, NotFound

apps = sa.Table(
    "loom_app", SYSTEM,
    sa.Column("key", sa.String(40), primary_key=True),
    sa.Column("version", sa.String(40), nullable=False),
    sa.Column("title", JSONType),
    sa.Column("manifest", JSONType, nullable=False),
    sa.Column("prefix", sa.String(12), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, default="installed"),
    sa.Column("checksum", sa.String(64)),
    sa.Column("installed_at", UTCDateTime()),
    sa.Column("updated_at", UTCDateTime()),
)

definitions = sa.Table(
    "loom_definition", SYSTEM,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("app", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("key", sa.String(80), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("status", sa.String(12), nullable=False),       # published | superseded | retired
    sa.Column("body", JSONType, nullable=False),
    sa.Column("checksum", sa.String(64), nullable=False),
    sa.Column("file", sa.String(255)),
    sa.Column("origin", sa.String(12), nullable=False, default="bundle"),   # bundle | merged | designer
    # the partner's body this version is based on: for a firm's change it is carried forward, so an
    # upgrade can merge three ways (shipped -> live, shipped -> new) instead of overwriting
    sa.Column("shipped", JSONType),
    sa.Column("author", sa.String(80)),
    sa.Column("comment", sa.Text),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("app", "kind", "key", "version", name="uq_loom_definition_version"),
    sa.Index("ix_loom_definition_current", "app", "kind", "status"),
)

drafts = sa.Table(
    "loom_draft", SYSTEM,
    sa.Column("app", sa.String(40), primary_key=True),
    sa.Column("kind", sa.String(20), primary_key=True),
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("body", JSONType, nullable=False),
    sa.Column("base_version", sa.Integer),
    sa.Column("lock_version", sa.Integer, nullable=False, default=1),
    sa.Column("author", sa.String(80)),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

revision_table = sa.Table(
    "loom_meta_revision", SYSTEM,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("revision", sa.Integer, nullable=False),
)


def now() -> datetime:
    return datetime.now(timezone.utc)


def checksum(body: Any) -> str:
    canon = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=json_default)
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Stored:
    id: int
    app: str
    kind: str
    key: str
    version: int
    status: str
    body: dict
    checksum: str
    file: str | None
    origin: str
    author: str | None
    created_at: datetime
    shipped: dict | None = None

    @property
    def is_local_only(self) -> bool:
        """Created in the designer, never shipped by the bundle: an upgrade leaves it alone."""
        return self.shipped is None and self.origin == "designer"

    @property
    def base(self) -> dict:
        return self.shipped if self.shipped is not None else self.body

    @classmethod
    def from_row(cls, row) -> "Stored":
        m = row._mapping
        return cls(**{f: m[f] for f in cls.__dataclass_fields__})


def revision(conn: sa.Connection) -> int:
    value = conn.execute(sa.select(revision_table.c.revision).where(revision_table.c.id == 1)).scalar()
    return value or 0


def bump_revision(conn: sa.Connection) -> int:
    updated = conn.execute(revision_table.update().where(revision_table.c.id == 1)
                           .values(revision=revision_table.c.revision + 1)).rowcount
    if not updated:
        conn.execute(revision_table.insert().values(id=1, revision=1))
    return revision(conn)


def current(conn: sa.Connection, app: str | None = None, kind: str | None = None) -> list[Stored]:
    """The published version of every live definition (optionally of one app / kind)."""
    q = sa.select(definitions).where(definitions.c.status == "published")
    if app:
        q = q.where(definitions.c.app == app)
    if kind:
        q = q.where(definitions.c.kind == kind)
    return [Stored.from_row(r) for r in conn.execute(q.order_by(definitions.c.id))]


def get(conn: sa.Connection, app: str, kind: str, key: str, version: int | None = None) -> Stored | None:
    q = sa.select(definitions).where(definitions.c.app == app, definitions.c.kind == kind, definitions.c.key == key)
    q = q.where(definitions.c.version == version) if version else q.where(definitions.c.status == "published")
    row = conn.execute(q).first()
    return Stored.from_row(row) if row else None


def history(conn: sa.Connection, app: str, kind: str, key: str) -> list[Stored]:
    q = (sa.select(definitions).where(definitions.c.app == app, definitions.c.kind == kind, definitions.c.key == key)
         .order_by(definitions.c.version.desc()))
    return [Stored.from_row(r) for r in conn.execute(q)]


_KEEP = object()


def publish(conn: sa.Connection, app: str, kind: str, key: str, body: dict, author: str | None = None,
            file: str | None = None, origin: str = "bundle", comment: str | None = None,
            shipped=_KEEP) -> tuple[Stored, bool]:
    """Publish ``body`` as the new version; returns (stored, changed).

    ``shipped`` is the partner's body the version rests on: a bundle install passes the bundle's
    body; a designer publish leaves it out and the current version's is carried forward.
    Publishing a body identical to the current version changes nothing, which is what makes
    installing the same bundle twice a no-op.
    """
    digest = checksum(body)
    cur = get(conn, app, kind, key)
    if shipped is _KEEP:
        shipped = body if origin == "bundle" and cur is None else (cur.shipped if cur is not None else None)
    if cur is not None and cur.checksum == digest and cur.file == (file or cur.file) and cur.shipped == shipped:
        return cur, False
    last = conn.execute(sa.select(sa.func.max(definitions.c.version)).where(
        definitions.c.app == app, definitions.c.kind == kind, definitions.c.key == key)).scalar() or 0
    if cur is not None:
        conn.execute(definitions.update().where(definitions.c.id == cur.id).values(status="superseded"))
    values = dict(app=app, kind=kind, key=key, version=last + 1, status="published", body=body,
                  checksum=digest, file=file or (cur.file if cur else None), origin=origin, author=author,
                  comment=comment, created_at=now(), shipped=shipped)
    new_id = conn.execute(definitions.insert().values(**values)).inserted_primary_key[0]
    bump_revision(conn)
    return Stored(id=new_id, **{k: v for k, v in values.items() if k != "comment"}), True


def retire(conn: sa.Connection, app: str, kind: str, key: str) -> bool:
    """Take a definition out of service (removed from its bundle). Its versions stay in history."""
    n = conn.execute(definitions.update().where(
        definitions.c.app == app, definitions.c.kind == kind, definitions.c.key == key,
        definitions.c.status == "published").values(status="retired")).rowcount
    if n:
        bump_revision(conn)
    return bool(n)


def rollback(conn: sa.Connection, app: str, kind: str, key: str, to_version: int, author: str | None) -> Stored:
    """Publish an earlier version's body again as a new version (history is never rewritten)."""
    old = get(conn, app, kind, key, to_version)
    if old is None:
        raise NotFound(f"{kind} `{key}` has no version {to_version}")
    stored, _ = publish(conn, app, kind, key, old.body, author, old.file, origin="designer",
                        comment=f"rollback to version {to_version}", shipped=old.shipped)
    return stored


# -- drafts ----------------------------------------------------------------------------------------

def get_draft(conn: sa.Connection, app: str, kind: str, key: str) -> dict | None:
    row = conn.execute(sa.select(drafts).where(drafts.c.app == app, drafts.c.kind == kind, drafts.c.key == key)).first()
    return dict(row._mapping) if row else None


def save_draft(conn: sa.Connection, app: str, kind: str, key: str, body: dict, author: str | None,
               lock_version: int | None) -> dict:
    """Save a draft. ``lock_version`` is the version the editor loaded (None for a new draft);
    a mismatch means someone else saved in between and raises :class:`Conflict`."""
    existing = get_draft(conn, app, kind, key)
    if existing is None:
        if lock_version not in (None, 0):
            raise Conflict(f"the draft of {kind} `{key}` was discarded or published by someone else; reload it",
                           current_version=0)
        cur = get(conn, app, kind, key)
        conn.execute(drafts.insert().values(app=app, kind=kind, key=key, body=body, author=author,
                                            base_version=cur.version if cur else None, lock_version=1, updated_at=now()))
    else:
        n = conn.execute(drafts.update().where(
            drafts.c.app == app, drafts.c.kind == kind, drafts.c.key == key,
            drafts.c.lock_version == lock_version).values(
            body=body, author=author, lock_version=drafts.c.lock_version + 1, updated_at=now())).rowcount
        if n == 0:
            raise Conflict(f"{existing['author'] or 'someone'} saved {kind} `{key}` after you opened it "
                           f"(draft version {existing['lock_version']}); reload to see their changes",
                           current_version=existing["lock_version"], author=existing["author"])
    return get_draft(conn, app, kind, key)


def discard_draft(conn: sa.Connection, app: str, kind: str, key: str) -> None:
    conn.execute(drafts.delete().where(drafts.c.app == app, drafts.c.kind == kind, drafts.c.key == key))
