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

from engine.errors import InvalidInput, Problem
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


for _name, _fn in {"record.create": record_create, "record.update": record_update, "notify.email": notify_email,
                   "notify.inapp": notify_inapp, "notify.channel": notify_channel, "webhook.call": webhook_call,
                   "plugin.call": plugin_call}.items():
    register_action(_name, _fn)
