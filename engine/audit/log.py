"""The tamper-evident audit log.

Every entry carries the SHA-256 of the entry before it, so changing, removing or inserting a row
anywhere breaks the chain from that point on, and :func:`verify` names the first broken entry.
Entries are written in the same transaction as the change they record. Appends are serialized:
on PostgreSQL by the row lock of the one-row head table (see :data:`audit_head`), on SQLite by its
single writer lock (every write transaction begins IMMEDIATE), so two writers can never chain onto
the same predecessor.
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

GENESIS = "0" * 64
ADVISORY_LOCK_ID = 0x4C6F6F6D  # "Loom"

audit_log = sa.Table(
    "loom_audit", SYSTEM,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("actor_id", sa.BigInteger),
    sa.Column("actor", sa.String(80)),
    sa.Column("address", sa.String(64)),
    sa.Column("action", sa.String(40), nullable=False),     # create | update | delete | login | login_failed | publish | ...
    sa.Column("app", sa.String(40)),
    sa.Column("entity", sa.String(80)),
    sa.Column("record_id", sa.String(64)),
    sa.Column("before", JSONType),
    sa.Column("after", JSONType),
    sa.Column("detail", JSONType),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index("ix_loom_audit_record", "entity", "record_id"),
    sa.Index("ix_loom_audit_at", "at"),
)

#: PostgreSQL only: the chain's newest hash, one row. Appending updates it in the same statement
#: that inserts the entry, so the row lock serializes appenders and the update (re-evaluated on
#: the newest row version after a wait, as READ COMMITTED does) always chains onto the latest
#: entry -- one round trip per entry instead of lock, read and insert. A database from before the
#: table existed is seeded from the log on its first append.
audit_head = sa.Table(
    "loom_audit_head", SYSTEM,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

# built once: constructing these per append cost a third of the append itself
_HEAD = sa.select(audit_log.c.hash).order_by(audit_log.c.id.desc()).limit(1)
_INSERT = audit_log.insert()
_LOCK = sa.text("SELECT pg_advisory_xact_lock(:k)").bindparams(k=ADVISORY_LOCK_ID)

_HASHED = ("at", "actor_id", "actor", "address", "action", "app", "entity", "record_id", "before", "after", "detail")


def _canonical(values: dict[str, Any]) -> bytes:
    body = {k: values.get(k) for k in _HASHED}
    at = body["at"]
    if isinstance(at, datetime):
        if at.tzinfo is None:           # SQLite returns naive datetimes; they were stored as UTC
            at = at.replace(tzinfo=timezone.utc)
        body["at"] = at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=json_default).encode()


def entry_hash(prev_hash: str, values: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + _canonical(values)).hexdigest()


_NATIVE = (str, int, float, bool, type(None))


def _is_native(value: Any) -> bool:
    if isinstance(value, _NATIVE):
        return True
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_native(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_is_native(v) for v in value)
    return False


def _jsonable(value: Any) -> Any:
    """Plain JSON data as stored (and hashed); already-plain data (the usual case: record views)
    is taken as it is instead of being encoded and decoded again."""
    if value is None or _is_native(value):
        return value
    return json.loads(json.dumps(value, ensure_ascii=False, default=json_default))


def append(conn: sa.Connection, action: str, *, actor_id: int | None = None, actor: str | None = None,
           address: str | None = None, app: str | None = None, entity: str | None = None,
           record_id: Any = None, before: Any = None, after: Any = None, detail: Any = None) -> int:
    """Append one entry inside the caller's transaction; returns its id."""
    values = dict(at=datetime.now(timezone.utc), actor_id=actor_id, actor=actor,
                  address=address, action=action, app=app, entity=entity,
                  record_id=None if record_id is None else str(record_id),
                  before=_jsonable(before), after=_jsonable(after), detail=_jsonable(detail))
    if conn.dialect.name == "postgresql":
        return _append_postgresql(conn, values)
    prev = conn.execute(_HEAD).scalar() or GENESIS      # SQLite: the writer lock is already ours
    values["prev_hash"] = prev
    values["hash"] = entry_hash(prev, values)
    return conn.execute(_INSERT, values).inserted_primary_key[0]


def _pg_append_statement() -> sa.Insert:
    """``WITH head AS (UPDATE loom_audit_head ... RETURNING) INSERT INTO loom_audit SELECT ...``:
    the hash is computed by PostgreSQL's ``sha256`` over the same bytes as :func:`entry_hash`
    (previous hash, a newline, the canonical JSON sent as a parameter)."""
    h = audit_head
    new_hash = sa.func.encode(sa.func.sha256(sa.func.convert_to(h.c.hash + "\n", "UTF8").op("||")(
        sa.bindparam("canonical", type_=sa.LargeBinary))), "hex")
    head = (sa.update(h).where(h.c.id == 1).values(prev_hash=h.c.hash, hash=new_hash)
            .returning(h.c.prev_hash, h.c.hash).cte("head"))
    cols = [c for c in _HASHED]
    binds = [sa.bindparam(c, type_=audit_log.c[c].type) for c in cols]
    return (audit_log.insert()
            .from_select(cols + ["prev_hash", "hash"], sa.select(*binds, head.c.prev_hash, head.c.hash))
            .returning(audit_log.c.id))


_PG_APPEND = _pg_append_statement()


def _append_postgresql(conn: sa.Connection, values: dict) -> int:
    params = {**values, "canonical": _canonical(values)}
    new_id = conn.execute(_PG_APPEND, params).scalar()
    if new_id is None:
        # no head row yet: seed it from the log under the advisory lock (two first appenders
        # queue there; the second finds the row), then append as usual
        conn.execute(_LOCK)
        prev = conn.execute(_HEAD).scalar() or GENESIS
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        conn.execute(pg_insert(audit_head).values(id=1, prev_hash=prev, hash=prev).on_conflict_do_nothing())
        new_id = conn.execute(_PG_APPEND, params).scalar()
    return new_id


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    first_bad_id: int | None = None
    reason: str = ""
    head_id: int | None = None          # the last entry checked and its hash: record them somewhere
    head_hash: str | None = None        # else (a regulator's export) to detect a truncated tail

    def __str__(self) -> str:
        if self.ok:
            return f"audit chain intact: {self.checked} entries, head {self.head_id} {self.head_hash}"
        return f"audit chain broken at entry {self.first_bad_id}: {self.reason} ({self.checked} entries checked)"


def verify(conn: sa.Connection, batch: int = 5000, anchor: tuple[int, str] | None = None) -> VerifyResult:
    """Walk the whole chain in id order and name the first entry that does not fit.

    * content changed -> that entry ("its content was altered");
    * an entry removed -> the entry after the gap ("entries a..b are missing");
    * an entry inserted (even with a correctly computed hash) -> the inserted entry, because the
      genuine entry after it still links to the one before it;
    * ``anchor=(id, hash)`` -- a head recorded earlier (a previous verify, a regulator's export):
      that entry must still exist with that hash, which catches a removed or rewritten tail.
    """
    prev_hash, prev_id, checked = GENESIS, 0, 0
    before_prev: tuple[int, str] | None = None      # (id, hash) of the entry before the previous one
    last_id = 0
    anchor_seen = anchor is None
    while True:
        rows = conn.execute(sa.select(audit_log).where(audit_log.c.id > last_id)
                            .order_by(audit_log.c.id).limit(batch)).mappings().all()
        if not rows:
            if not anchor_seen:
                return VerifyResult(False, checked, anchor[0], "the anchored entry is missing: the end of the "
                                    "log was removed", prev_id or None, prev_hash)
            return VerifyResult(True, checked, head_id=prev_id or None, head_hash=prev_hash)
        for row in rows:
            checked += 1
            if row["prev_hash"] != prev_hash:
                if before_prev is not None and row["prev_hash"] == before_prev[1]:
                    return VerifyResult(False, checked, prev_id,
                                        f"it was inserted: entry {row['id']} links to entry {before_prev[0]}")
                if row["id"] > prev_id + 1:
                    reason = f"entries {prev_id + 1}..{row['id'] - 1} are missing or an entry before it was altered"
                elif checked == 1:
                    reason = "it does not start the chain (earlier entries were removed)"
                else:   # consecutive ids: the entry before was changed and its hash recomputed
                    return VerifyResult(False, checked, prev_id, f"it was altered and re-hashed: entry {row['id']} "
                                        "still links to its original hash")
                return VerifyResult(False, checked, row["id"], f"previous-hash link does not match: {reason}")
            expected = entry_hash(prev_hash, dict(row))
            if row["hash"] != expected:
                return VerifyResult(False, checked, row["id"], "its content was altered after it was written")
            if anchor is not None and row["id"] == anchor[0]:
                if row["hash"] != anchor[1]:
                    return VerifyResult(False, checked, row["id"], "it differs from the anchored hash")
                anchor_seen = True
            before_prev = (prev_id, prev_hash) if prev_id else (0, GENESIS)
            prev_hash, prev_id, last_id = row["hash"], row["id"], row["id"]
