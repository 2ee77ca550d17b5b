"""Events in: validation, normalisation and idempotent storage.

An event is a JSON object with ``id`` (the sender's external id), ``kind`` (trade, order, cancel,
transfer) and ``ts`` (ISO-8601 with a zone, or epoch seconds); every other key is a field. A batch
with any bad event is refused as a whole, each problem naming the line and the field, so a sender
can fix and resend it. Resending is safe: ids already stored are counted as duplicates and skipped
(a unique index backs this up when two senders race).
"""
from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone

import sqlalchemy as sa

from engine.errors import InvalidInput, Problem
from engine.rules.tables import events

INGEST_KINDS = ("trade", "order", "cancel", "transfer")
RESERVED = ("id", "kind", "ts")
MAX_BATCH = 100_000


def parse_ts(value, line: int, problems: list) -> float | None:
    if isinstance(value, bool) or value is None:
        problems.append(Problem("`ts`: required, an ISO-8601 time with a zone or epoch seconds",
                                line=line, field="ts", code="invalid"))
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            problems.append(Problem(f"`ts`: `{value}` is not an ISO-8601 time", line=line, field="ts", code="invalid"))
            return None
        if dt.tzinfo is None:
            problems.append(Problem(f"`ts`: `{value}` has no time zone (add +08:00 or Z)", line=line, field="ts",
                                    code="invalid"))
            return None
        return dt.timestamp()
    problems.append(Problem(f"`ts`: expected a time, got {type(value).__name__}", line=line, field="ts",
                            code="invalid"))
    return None


def parse_body(raw: bytes | str) -> list:
    """A JSON array, or JSON lines (one object per line)."""
    text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput("the body is not valid JSON", problems=[
                Problem(f"JSON syntax error: {exc.msg}", line=exc.lineno, column=exc.colno, code="json")]) from None
        return data
    items, problems = [], []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            items.append((i, json.loads(line)))
        except json.JSONDecodeError as exc:
            problems.append(Problem(f"JSON syntax error: {exc.msg}", line=i, column=exc.colno, code="json"))
    if problems:
        raise InvalidInput("some lines are not valid JSON; nothing was stored", problems=problems)
    return items


def normalize(items: list, kinds=INGEST_KINDS, file: str | None = None) -> list[dict]:
    """``[{ext_id, kind, ts, payload}]``; ``items`` are objects or ``(line, object)`` pairs; ``file``
    names the source in problems (bulk loads)."""
    out, problems, seen = [], [], {}
    if len(items) > MAX_BATCH:
        raise InvalidInput(f"at most {MAX_BATCH} events per batch", problems=[
            Problem(f"{len(items)} events sent; split the batch", code="too_large")])
    for n, item in enumerate(items, 1):
        line, obj = item if isinstance(item, tuple) else (n, item)
        if not isinstance(obj, dict):
            problems.append(Problem("expected a JSON object", line=line, code="invalid"))
            continue
        ext = obj.get("id")
        if not isinstance(ext, (str, int)) or isinstance(ext, bool) or str(ext) == "" or len(str(ext)) > 120:
            problems.append(Problem("`id`: required, the event's external id (text up to 120 characters)",
                                    line=line, field="id", code="invalid"))
            continue
        kind = obj.get("kind")
        if kind not in kinds:
            problems.append(Problem(f"`kind`: `{kind}` is not one of {', '.join(kinds)}", line=line, field="kind",
                                    code="invalid"))
            continue
        ts = parse_ts(obj.get("ts"), line, problems)
        if ts is None:
            continue
        ext = str(ext)
        if ext in seen:   # repeated inside the batch: the first one counts
            continue
        seen[ext] = True
        out.append({"ext_id": ext, "kind": kind, "ts": ts,
                    "payload": {k: v for k, v in obj.items() if k not in RESERVED}})
    if problems:
        if file:
            problems = [dataclasses.replace(p, file=file) for p in problems]
        raise InvalidInput(f"{len(problems)} bad event(s); nothing was stored", problems=problems)
    return out


def store(conn: sa.Connection, rows: list[dict]) -> tuple[int, int]:
    """Insert the rows not stored yet; returns (accepted, duplicates)."""
    if not rows:
        return 0, 0
    now = datetime.now(timezone.utc)
    existing: set[str] = set()
    ids = [r["ext_id"] for r in rows]
    for i in range(0, len(ids), 900):
        existing.update(conn.execute(sa.select(events.c.ext_id).where(events.c.ext_id.in_(ids[i:i + 900]))).scalars())
    new = [dict(r, received_at=now) for r in rows if r["ext_id"] not in existing]
    accepted = 0
    if new:
        try:
            with conn.begin_nested():
                conn.execute(events.insert(), new)
            accepted = len(new)
        except sa.exc.IntegrityError:
            # another sender stored some of them meanwhile: one by one, each in its own savepoint
            for r in new:
                try:
                    with conn.begin_nested():
                        conn.execute(events.insert().values(**r))
                    accepted += 1
                except sa.exc.IntegrityError:
                    pass
    return accepted, len(rows) - accepted
