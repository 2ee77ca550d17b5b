"""What the scheduler tick runs for plugins: cron jobs and outbox channels.

Both are claimed with a conditional UPDATE before they run, so two processes ticking at the same
moment (embedded scheduler + Celery beat) run a job once and deliver a message once. A channel
hook receives one outbox message at a time; returning anything but ``False`` marks it sent, a
failure leaves it for the next tick (``attempts`` counts tries; after :data:`MAX_ATTEMPTS` it is
left alone for an operator to look at).
"""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa

from engine.sandbox import SandboxError
from plugins.tables import plugin_jobs

MAX_ATTEMPTS = 8
BATCH = 100


def _aware(dt: datetime | None) -> datetime | None:
    if dt is not None and dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt


def next_run(cron: str, after: datetime) -> datetime:
    from croniter import croniter
    return _aware(croniter(cron, after).get_next(datetime))


def run_schedules(ext, snap, now: datetime) -> list[str]:
    """Run due cron hooks; returns the keys run."""
    ran = []
    for plugin, hook in snap.schedules:
        key = f"{plugin.name}:{hook.get('name') or hook['function']}"
        with ext.loom.db.begin() as conn:
            row = conn.execute(sa.select(plugin_jobs).where(plugin_jobs.c.key == key)).mappings().first()
            if row is None:
                conn.execute(plugin_jobs.insert().values(key=key, next_run_at=next_run(hook["cron"], now)))
                continue
            due = _aware(row["next_run_at"])
            if due is None or due > now:
                continue
            claimed = conn.execute(plugin_jobs.update().where(plugin_jobs.c.key == key,
                                                              plugin_jobs.c.next_run_at == row["next_run_at"])
                                   .values(next_run_at=next_run(hook["cron"], now), last_run_at=now)).rowcount
        if claimed != 1:
            continue
        error = None
        try:
            actor = ext.plugin_actor(plugin)
            plugin.run(hook["function"], ({"now": now, "job": key},), api=ext.plugin_api(plugin, actor),
                       budget=ext.budget(plugin, hook), path=hook["script"])
        except SandboxError as exc:
            error = exc.message
            ext.report_error(key, exc)
        with ext.loom.db.begin() as conn:
            conn.execute(plugin_jobs.update().where(plugin_jobs.c.key == key).values(last_error=error))
        ran.append(key)
    return ran


def drain_channels(ext, snap, now: datetime) -> dict[str, int]:
    """Deliver pending outbox messages of each channel a plugin serves; returns sent counts."""
    try:
        from engine.workflow.tables import outbox
    except ImportError:
        return {}
    sent: dict[str, int] = {}
    for plugin, hook in snap.channels:
        channel = hook["channel"]
        t = outbox
        with ext.loom.db.connect() as conn:
            rows = conn.execute(sa.select(t).where(t.c.channel == channel, t.c.sent_at.is_(None),
                                                   t.c.attempts < MAX_ATTEMPTS).order_by(t.c.id).limit(BATCH)
                                ).mappings().all()
        actor = ext.plugin_actor(plugin)
        for r in rows:
            with ext.loom.db.begin() as conn:      # claim: one deliverer per message and attempt
                claimed = conn.execute(t.update().where(t.c.id == r["id"], t.c.attempts == r["attempts"],
                                                        t.c.sent_at.is_(None))
                                       .values(attempts=r["attempts"] + 1)).rowcount
            if claimed != 1:
                continue
            message = {"id": r["id"], "channel": channel, "payload": r["payload"], "attempt": r["attempts"] + 1,
                       "idempotency_key": r["idempotency_key"] or f"outbox:{r['id']}"}
            try:
                result = plugin.run(hook["function"], (message,), api=ext.plugin_api(plugin, actor),
                                    budget=ext.budget(plugin, hook), path=hook["script"])
            except SandboxError as exc:
                ext.report_error(f"{plugin.name}:{channel}#{r['id']}", exc)
                continue
            if result is False:
                continue
            with ext.loom.db.begin() as conn:
                conn.execute(t.update().where(t.c.id == r["id"]).values(sent_at=now))
            sent[channel] = sent.get(channel, 0) + 1
    return sent
