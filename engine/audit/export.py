"""Searching the audit log and exporting it for regulators.

An export carries every hashed column plus ``prev_hash`` and ``hash``, with the time written
exactly as it was hashed, so a regulator can recompute each entry's hash with nothing but
SHA-256 (see :func:`verify_entries` and docs): ``sha256(prev_hash + "\\n" + canonical JSON)``.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from typing import Iterable, Iterator

import sqlalchemy as sa

from engine.audit.log import _HASHED, GENESIS, _canonical, audit_log, entry_hash
from engine.errors import InvalidInput, Problem

COLUMNS = ("id",) + _HASHED + ("prev_hash", "hash")


@dataclass
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    entity: str | None = None
    record_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def from_params(cls, params) -> "AuditFilter":
        """From query parameters ``actor, action, entity, record, since, until`` (ISO dates)."""
        f = cls(actor=params.get("actor") or None, action=params.get("action") or None,
                entity=params.get("entity") or None, record_id=params.get("record") or params.get("record_id") or None)
        for name in ("since", "until"):
            raw = params.get(name)
            if raw:
                f.__setattr__(name, _parse_when(raw, name, end=(name == "until")))
        return f

    def where(self) -> list:
        t = audit_log
        conds = []
        if self.actor:
            conds.append(t.c.actor == self.actor)
        if self.action:
            conds.append(t.c.action == self.action)
        if self.entity:
            conds.append(t.c.entity == self.entity)
        if self.record_id:
            conds.append(t.c.record_id == str(self.record_id))
        if self.since:
            conds.append(t.c.at >= self.since)
        if self.until:
            conds.append(t.c.at <= self.until)
        return conds


def _parse_when(raw: str, name: str, end: bool) -> datetime:
    try:
        if len(raw) == 10:
            d = date.fromisoformat(raw)
            return datetime.combine(d, time.max if end else time.min, tzinfo=timezone.utc)
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
    except ValueError:
        raise InvalidInput(problems=[Problem(f"`{raw}` is not a date (YYYY-MM-DD) or ISO time", field=name,
                                             code="parameter")]) from None


def search(conn: sa.Connection, flt: AuditFilter, *, limit: int = 100, offset: int = 0) -> tuple[list[dict], int]:
    """(entries newest first, total) matching the filter."""
    q = sa.select(audit_log).where(*flt.where())
    total = conn.execute(sa.select(sa.func.count()).select_from(q.subquery())).scalar() or 0
    rows = conn.execute(q.order_by(audit_log.c.id.desc()).limit(limit).offset(offset)).mappings().all()
    return [entry_json(r) for r in rows], total


def entry_json(row) -> dict:
    """One entry as JSON-ready data, with the time exactly as it was hashed."""
    canon = json.loads(_canonical(dict(row)))
    return {"id": row["id"], **canon, "prev_hash": row["prev_hash"], "hash": row["hash"]}


def iter_entries(conn: sa.Connection, flt: AuditFilter, batch: int = 2000) -> Iterator[dict]:
    last = 0
    while True:
        rows = conn.execute(sa.select(audit_log).where(audit_log.c.id > last, *flt.where())
                            .order_by(audit_log.c.id).limit(batch)).mappings().all()
        if not rows:
            return
        for r in rows:
            yield entry_json(r)
        last = rows[-1]["id"]


def to_jsonl(entries: Iterable[dict]) -> Iterator[str]:
    for e in entries:
        yield json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n"


def to_csv(entries: Iterable[dict]) -> Iterator[str]:
    """CSV with JSON-encoded before/after/detail cells (UTF-8 BOM so spreadsheet programs read Chinese)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(COLUMNS)
    yield "\ufeff" + buf.getvalue()
    for e in entries:
        buf.seek(0)
        buf.truncate()
        w.writerow([json.dumps(e[c], ensure_ascii=False, sort_keys=True) if c in ("before", "after", "detail")
                    and e[c] is not None else ("" if e[c] is None else e[c]) for c in COLUMNS])
        yield buf.getvalue()


def read_csv(text: str) -> list[dict]:
    """Entries back from :func:`to_csv` (for re-verification)."""
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    out = []
    for r in rows:
        e = {}
        for c in COLUMNS:
            v = r.get(c, "")
            if c in ("before", "after", "detail"):
                e[c] = json.loads(v) if v else None
            elif c in ("id", "actor_id"):
                e[c] = int(v) if v else None
            else:
                e[c] = v if v != "" else None
        out.append(e)
    return out


def verify_entries(entries: Iterable[dict], *, from_genesis: bool = True) -> tuple[bool, int | None, str]:
    """Recompute the hashes of exported entries: (ok, first bad id, reason).

    A full export must start at the genesis hash and each entry must link to the one before. A
    filtered export can only prove each entry's own hash (``from_genesis=False``).
    """
    prev = GENESIS if from_genesis else None
    for e in entries:
        if prev is not None and e["prev_hash"] != prev:
            return False, e["id"], "previous-hash link does not match"
        values = {k: e.get(k) for k in _HASHED}
        if isinstance(values["at"], str):
            values["at"] = datetime.strptime(values["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
        if entry_hash(e["prev_hash"], values) != e["hash"]:
            return False, e["id"], "content does not match its hash"
        prev = e["hash"] if from_genesis else None
    return True, None, ""
