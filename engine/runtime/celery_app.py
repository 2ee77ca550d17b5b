"""The Celery application.

With ``LOOM_BROKER_URL`` unset, tasks run in-process (``task_always_eager``) so one machine needs
no broker; with Redis set, ``loom worker`` and ``loom beat`` scale out. Work is always handed over
in batches (a list of ids, a chunk of events), never one task per row or per trade.
"""
from __future__ import annotations

import os

from celery import Celery

from engine.settings import Settings

_settings = Settings.from_env()

#: modules whose tasks every worker must know (an engine package adds its own here)
TASK_MODULES = ["engine.rules.tasks"]

celery = Celery("loom", include=TASK_MODULES)
celery.conf.update(
    broker_url=_settings.broker_url or "memory://",
    result_backend=_settings.broker_url or "cache+memory://",
    task_always_eager=not _settings.broker_url,
    task_eager_propagates=True,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    timezone="Asia/Shanghai",
    enable_utc=True,
    worker_prefetch_multiplier=1,
    task_acks_late=True,
    broker_connection_retry_on_startup=True,
    beat_schedule={
        "loom-tick": {"task": "loom.tick", "schedule": float(os.environ.get("LOOM_TICK_SECONDS", "5"))},
    },
)

_loom = None


def worker_loom():
    """The Loom of this worker process, created on first use."""
    global _loom
    if _loom is None:
        from engine.runtime.loom import Loom
        _loom = Loom(Settings.from_env())
        _loom.reload(force=True)
    return _loom


@celery.task(name="loom.ping")
def ping(value=None):
    return {"pong": value, "pid": os.getpid()}


@celery.task(name="loom.tick")
def tick():
    """Periodic work (timers, scheduled reports): each extension with a ``tick`` runs it."""
    loom = worker_loom()
    done = {}
    for name, ext in loom.extensions.items():
        fn = getattr(ext, "tick", None)
        if fn:
            done[name] = fn()
    return done
