"""Celery glue: one task per (rule set, partition, batch of events) -- never one task per event.

Imported by the dispatcher when a broker is configured and by workers (``celery ... worker -I
engine.rules.tasks``, or the Celery app's ``include``). It is the one module of the package that
knows the runtime's Celery app, and nothing else in ``engine.rules`` imports it.
"""
from __future__ import annotations

from engine.runtime.celery_app import celery, worker_loom

TASK_TIMEOUT = 600


@celery.task(name="loom.rules.apply_partition", acks_late=True)
def apply_partition(ruleset: str, partition: int, batch: list) -> dict:
    from engine.rules import service
    return service(worker_loom()).apply_partition(ruleset, partition, [tuple(e) for e in batch])


def dispatch(loom, ruleset: str, work: list) -> list[dict]:
    """Send each partition's batch as one task and wait for all of them (the dispatcher holds the
    rule set's lease meanwhile, so batches of one partition never overtake each other). Inside a
    task (the scheduler tick on a worker) waiting on other tasks is not allowed: run in-process."""
    from celery import current_task, group
    from engine.rules import service
    svc = service(loom)
    if current_task and current_task.request and current_task.request.id:
        return [svc.apply_partition(ruleset, p, evs) for p, evs in work]
    job = group(apply_partition.s(ruleset, p, [list(e) for e in evs]) for p, evs in work).apply_async()
    return job.get(timeout=TASK_TIMEOUT, disable_sync_subtasks=False)
