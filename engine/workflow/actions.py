"""Engine actions a service task may call, and the idempotency that makes retries safe.

A service task names an action (``spiffworkflow:serviceTaskOperator id="record.create"``) and
passes parameters (sandbox expressions over the task data). :func:`run_action` runs it inside a
SAVEPOINT of the step's transaction and stores its result under the task attempt's idempotency
key (instance id + SpiffWorkflow task id): when an admin retries a failed task, an action whose
effect is already recorded returns the stored result instead of sending the mail or calling the
webhook again. Record actions go through the record service in the same unit of work, so the
business data, the effect row and the instance state commit together. The key also travels with
the effect (``Idempotency-Key`` header, mail ``Message-ID``) so receivers can deduplicate too.

Plugins add actions with :func:`register_action`.
"""
from __future__ import annotations

import smtplib
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage
from typing import Any, Callable
from urllib.parse import urlparse

import sqlalchemy as sa

from engine.errors import InvalidInput, LoomError, Problem
from engine.workflow.tables import notifications, outbox, process_effects


@dataclass
class ActionContext:
    loom: Any
    uow: Any                 # the step's UnitOfWork
    instance_id: int
    app: str
    bpmn_id: str
    key: str                 # idempotency key of this task attempt
    actor: Any               # the engine's own actor for automated steps

    @property
    def conn(self):
        return self.uow.conn


ACTIONS: dict[str, Callable[..., Any]] = {}


def register_action(name: str, fn: Callable[..., Any]) -> None:
    """Make ``fn(ctx: ActionContext, **params) -> JSON-able`` callable from service tasks."""
    ACTIONS[name] = fn


def _now():
    return datetime.now(timezone.utc)


def run_action(name: str, params: dict, ctx: ActionContext):
    fn = ACTIONS.get(name)
    if fn is None:
        raise InvalidInput(f"no service action `{name}`")
    t = process_effects
    done = ctx.conn.execute(sa.select(t.c.result).where(t.c.key == ctx.key)).first()
    if done is not None:
        return done.result
    with ctx.conn.begin_nested():
        result = fn(ctx, **params)
        ctx.conn.execute(t.insert().values(key=ctx.key, instance_id=ctx.instance_id, bpmn_id=ctx.bpmn_id,
                                           action=name, result=result, created_at=_now()))
    return result


def _entity(ctx: ActionContext, entity: str) -> str:
    return entity if "." in entity else f"{ctx.app}.{entity}"


def record_create(ctx: ActionContext, entity: str, data: dict | None = None):
    rec = ctx.loom.records.create(_entity(ctx, entity), dict(data or {}), ctx.actor, uow=ctx.uow)
    return {"id": rec["id"], "version": rec["version"]}


def record_update(ctx: ActionContext, entity: str, id: int, data: dict | None = None):  # noqa: A002
    rec = ctx.loom.records.update(_entity(ctx, entity), int(id), dict(data or {}), ctx.actor, uow=ctx.uow)
    return {"id": rec["id"], "version": rec["version"]}


def notify_email(ctx: ActionContext, to, subject: str, body: str = ""):
    recipients = [to] if isinstance(to, str) else list(to or [])
    if not recipients:
        raise InvalidInput("notify.email: `to` names no recipient", problems=[Problem("no recipient", field="to")])
    url = ctx.loom.settings.smtp_url
    if not url:
        return notify_channel(ctx, "email", {"to": recipients, "subject": subject, "body": body})
    parsed = urlparse(url)
    msg = EmailMessage()
    msg["From"] = parsed.username or "loom@localhost"
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{ctx.key.replace(':', '.')}@loom>"
    msg.set_content(body)
    with smtplib.SMTP(parsed.hostname or "127.0.0.1", parsed.port or 25, timeout=10) as smtp:
        smtp.send_message(msg)
    return {"sent": len(recipients), "message_id": msg["Message-ID"]}


def notify_inapp(ctx: ActionContext, title: str, body: str = "", user: str | None = None, role: str | None = None,
                 link: str | None = None):
    if not user and not role:
        raise InvalidInput("notify.inapp: give `user` or `role`")
    rid = ctx.conn.execute(notifications.insert().values(
        username=user, role=role if not role or "." in role else f"{ctx.app}.{role}", title=title, body=body,
        link=link, idempotency_key=ctx.key, created_at=_now())).inserted_primary_key[0]
    return {"notification": rid}


def notify_channel(ctx: ActionContext, channel: str, payload: dict | None = None):
    rid = ctx.conn.execute(outbox.insert().values(channel=channel, payload=payload or {}, idempotency_key=ctx.key,
                                                  created_at=_now(), attempts=0)).inserted_primary_key[0]
    return {"outbox": rid}


def webhook_call(ctx: ActionContext, url: str, payload: Any = None, method: str = "POST"):
    import requests
    resp = requests.request(method.upper(), url, json=payload, timeout=10,
                            headers={"Idempotency-Key": ctx.key, "User-Agent": "loom-workflow"})
    if resp.status_code >= 400:
        raise RuntimeError(f"webhook {url} answered {resp.status_code}")
    try:
        body = resp.json()
    except ValueError:
        body = resp.text[:2000]
    return {"status": resp.status_code, "body": body}


def plugin_call(ctx: ActionContext, name: str, payload: Any = None):
    plugins = ctx.loom.extensions.get("plugins")
    call = getattr(plugins, "call", None)
    if call is None:
        return notify_channel(ctx, f"plugin:{name}", {"payload": payload})
    return call(name, payload, actor=ctx.actor)


# -- batches: one service task writing many rows in the step's transaction ----------------------------
#
# A script task cannot write (its records API would open a second transaction beside the step's), and
# one service task per row would make a process with thousands of tasks. These actions take the rows a
# script task prepared and write them in the step's unit of work: all or nothing, each row through the
# record service (validation, audit, events), each error naming the row.

MAX_BATCH = 10000


def _rows(name: str, rows, field: str = "rows") -> list:
    if rows is None:
        return []
    if not isinstance(rows, (list, tuple)):
        raise InvalidInput(f"{name}: `{field}` must be a list",
                           problems=[Problem(f"`{field}` must be a list, not {type(rows).__name__}", field=field)])
    if len(rows) > MAX_BATCH:
        raise InvalidInput(f"{name}: at most {MAX_BATCH} rows per call",
                           problems=[Problem(f"{len(rows)} rows; at most {MAX_BATCH} per call", field=field)])
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InvalidInput(f"{name}: row {i} is not an object",
                               problems=[Problem("each row must be an object", path=f"{field}/{i}", field=field)])
    return list(rows)


def _row_error(name: str, i: int, exc: LoomError, field: str = "rows"):
    problems = [Problem(f"row {i}: {p.message}", path=f"{field}/{i}", field=p.field, code=p.code)
                for p in exc.problems] or [Problem(f"row {i}: {exc}", path=f"{field}/{i}")]
    return type(exc)(f"{name}: row {i}: {exc}", problems=problems)


def record_create_many(ctx: ActionContext, entity: str, rows=None):
    """Create each row of ``rows``; returns ``{"count", "ids"}`` (ids in row order)."""
    full, ids = _entity(ctx, entity), []
    for i, data in enumerate(_rows("record.create_many", rows)):
        try:
            ids.append(ctx.loom.records.create(full, dict(data), ctx.actor, uow=ctx.uow)["id"])
        except LoomError as exc:
            raise _row_error("record.create_many", i, exc) from exc
    return {"count": len(ids), "ids": ids}


def record_update_many(ctx: ActionContext, entity: str, rows=None):
    """Update records: ``rows`` is ``[{"id": 7, "data": {...}, "version": 3?}, ...]``; returns ``{"count"}``."""
    full, n = _entity(ctx, entity), 0
    for i, row in enumerate(_rows("record.update_many", rows)):
        if row.get("id") is None:
            raise InvalidInput(f"record.update_many: row {i} has no `id`",
                               problems=[Problem("an update needs the record `id`", path=f"rows/{i}", field="id")])
        try:
            ctx.loom.records.update(full, int(row["id"]), dict(row.get("data") or {}), ctx.actor, uow=ctx.uow,
                                    expected_version=row.get("version"))
        except LoomError as exc:
            raise _row_error("record.update_many", i, exc) from exc
        n += 1
    return {"count": n}


def notify_channel_many(ctx: ActionContext, messages=None):
    """Queue outbox messages ``[{"channel", "payload", "key"}]``; ``key`` (required, stable per message,
    e.g. ``campaign:7:customer:12:sms``) is the idempotency key: a message whose key is already in the
    outbox is skipped, so running the same send again queues nothing twice."""
    rows = _rows("notify.channel_many", messages, "messages")
    keys = []
    for i, m in enumerate(rows):
        if not m.get("channel") or not m.get("key"):
            raise InvalidInput(f"notify.channel_many: message {i} needs `channel` and `key`",
                               problems=[Problem("a message needs `channel` and `key`", path=f"messages/{i}",
                                                 field="key" if m.get("channel") else "channel")])
        keys.append(str(m["key"])[:200])
    existing: set = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        existing.update(k for (k,) in ctx.conn.execute(sa.select(outbox.c.idempotency_key)
                                                       .where(outbox.c.idempotency_key.in_(chunk))))
    queued, skipped, now = [], 0, _now()
    for m, key in zip(rows, keys):
        if key in existing:
            skipped += 1
            continue
        existing.add(key)
        queued.append({"channel": str(m["channel"])[:40], "payload": dict(m.get("payload") or {}),
                       "idempotency_key": key, "created_at": now, "attempts": 0})
    if queued:
        ctx.conn.execute(outbox.insert(), queued)
    return {"queued": len(queued), "skipped": skipped}


for _name, _fn in {"record.create": record_create, "record.update": record_update, "notify.email": notify_email,
                   "notify.inapp": notify_inapp, "notify.channel": notify_channel, "webhook.call": webhook_call,
                   "plugin.call": plugin_call, "record.create_many": record_create_many,
                   "record.update_many": record_update_many, "notify.channel_many": notify_channel_many}.items():
    register_action(_name, _fn)
