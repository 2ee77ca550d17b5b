"""Scheduled report e-mails: a schedules table and ``tick()`` (Celery beat or the embedded
scheduler) that renders each due report *as its owner* (same scopes and field rules as on
screen) and queues an e-mail with the export attached in the outbox table. Sending is the
notification sender's job; a queued outbox row with the attachment is the contract.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from engine.errors import InvalidInput, Problem
from engine.reports.tables import outbox, schedules

EVERY = {"day": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=30)}


def _now():
    return datetime.now(timezone.utc)


def create_schedule(loom, reports, app: str, key: str, actor, body: dict) -> int:
    rep = reports.definition(app, key)
    problems = []
    recipients = body.get("recipients")
    if not isinstance(recipients, list) or not recipients or not all(isinstance(r, str) and "@" in r for r in recipients):
        problems.append(Problem("`recipients` must be a list of e-mail addresses", field="recipients", code="parameter"))
    every = body.get("every", "day")
    if every not in EVERY:
        problems.append(Problem("`every` must be day, week or month", field="every", code="parameter"))
    fmt = body.get("format", "xlsx")
    if fmt not in {"csv", "xlsx"}:
        problems.append(Problem("`format` must be csv or xlsx", field="format", code="parameter"))
    if actor.user_id is None:
        problems.append(Problem("a schedule runs as a signed-in user", code="parameter"))
    if problems:
        raise InvalidInput(problems=problems)
    reports.compile(rep, actor, body.get("params") or {}, action="export")   # validates params + permission now
    with loom.db.begin() as conn:
        return conn.execute(schedules.insert().values(
            app=app, report=key, user_id=actor.user_id, params=body.get("params") or {}, format=fmt,
            recipients=recipients, every=every, next_run_at=_now(), active=True,
            created_at=_now())).inserted_primary_key[0]


def actor_of(loom, user_id: int):
    """The schedule owner as an Actor (roles and org unit), without a web request."""
    from engine.security import Actor
    from engine.security.users import user_roles, users
    with loom.db.connect() as conn:
        u = conn.execute(sa.select(users).where(users.c.id == user_id)).mappings().first()
        if u is None or not u["is_active"]:
            return None
        roles = {r[0] for r in conn.execute(sa.select(user_roles.c.role).where(user_roles.c.user_id == user_id))}
    expand = getattr(loom, "expand_roles", None)
    return Actor(user_id=u["id"], username=u["username"], roles=frozenset(expand(roles) if expand else roles),
                 locale=u["locale"] or "zh-CN", org_unit=u["org_unit_id"], is_admin=bool(u["is_admin"]))


def run_due(loom, reports, now: datetime | None = None) -> int:
    from engine.reports.export import export_csv, export_xlsx
    now = now or _now()
    with loom.db.connect() as conn:
        due = conn.execute(sa.select(schedules).where(schedules.c.active.is_(True),
                                                      schedules.c.next_run_at <= now)).mappings().all()
    queued = 0
    for s in due:
        actor = actor_of(loom, s["user_id"])
        status, error, data, name = "queued", None, None, None
        try:
            if actor is None:
                raise InvalidInput("the schedule's owner no longer exists or is inactive")
            rep = reports.definition(s["app"], s["report"])
            result = reports.run(rep, actor, s["params"] or {}, action="export")
            data = export_xlsx(result, actor.locale) if s["format"] == "xlsx" else export_csv(result, actor.locale)
            name = f"{s['app']}-{s['report']}-{now:%Y%m%d}.{s['format']}"
            subject = f"{rep.title(actor.locale)} {now:%Y-%m-%d}"
        except Exception as exc:  # noqa: BLE001 -- one broken schedule must not stop the others
            status, error, subject = "failed", str(exc), f"{s['report']} {now:%Y-%m-%d}"
        with loom.db.begin() as conn:
            conn.execute(outbox.insert().values(
                schedule_id=s["id"], recipients=s["recipients"], subject=subject,
                body=subject if status == "queued" else f"report failed: {error}", attachment_name=name,
                attachment=data, status=status, error=error, created_at=now,
                content_type=("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                              if s["format"] == "xlsx" else "text/csv")))
            conn.execute(schedules.update().where(schedules.c.id == s["id"]).values(
                last_run_at=now, next_run_at=now + EVERY[s["every"]]))
        queued += status == "queued"
    return queued
