"""Message correlation, concurrent schedulers (SKIP LOCKED on PostgreSQL), a real Celery worker."""
from __future__ import annotations

import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from freezegun import freeze_time as _freeze_time

from engine.security import Actor
from engine.workflow.tables import process_events, process_instances
from tests.conftest import ROOT

SYS = Actor.system("test")


def freeze_time(when):
    return _freeze_time(when, ignore=["engine.runtime.loom"])


def test_a_message_reaches_only_the_instance_with_its_correlation_key(flow):
    seven = flow.workflow.start("flow.complaint", SYS, {"complaint_id": 7})
    eight = flow.workflow.start("flow.complaint", SYS, {"complaint_id": 8})
    assert (seven["correlation_key"], eight["correlation_key"]) == ("7", "8")
    assert flow.workflow.message("resolved", "7", {"by": "desk"}, SYS) == [seven["id"]]
    done = flow.workflow.instance(seven["id"], detail=True)
    assert done["status"] == "completed"
    assert done["data"]["resolution"] == {"by": "desk"} and done["data"]["closed"] is True
    assert flow.workflow.instance(eight["id"])["status"] == "waiting"
    # a key nobody waits for, or a message no instance catches, is delivered nowhere
    assert flow.workflow.message("resolved", "99", {}, SYS) == []
    assert flow.workflow.message("reopened", "8", {}, SYS) == []
    assert flow.workflow.message("resolved", "8", {"by": "phone"}, SYS) == [eight["id"]]
    assert flow.workflow.instance(eight["id"], detail=True)["data"]["resolution"] == {"by": "phone"}


def test_two_schedulers_ticking_at_once_fire_each_instance_once(flow):
    """Two ticks race over the same due instances: each is locked by one of them (FOR UPDATE SKIP
    LOCKED on PostgreSQL, the write lock on SQLite) and its timer fires exactly once."""
    t0 = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=1)
    with freeze_time(t0):
        ids = [flow.workflow.start("flow.deadline", SYS, {})["id"] for _ in range(12)]
    results, errors = [], []
    barrier = threading.Barrier(2)

    def scheduler():
        try:
            barrier.wait(5)
            results.append(flow.workflow.tick(now=t0 + timedelta(minutes=61)))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    with freeze_time(t0 + timedelta(minutes=61)):
        threads = [threading.Thread(target=scheduler) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert errors == [] and len(results) == 2
    assert sum(r["fired"] for r in results) == len(ids)
    assert sum(r["failed"] for r in results) == 0
    with flow.db.connect() as conn:
        fired = conn.execute(sa.select(process_events.c.instance_id, sa.func.count())
                             .where(process_events.c.action == "timer").group_by(process_events.c.instance_id)).all()
        versions = dict(conn.execute(sa.select(process_instances.c.id, process_instances.c.lock_version)
                                     .where(process_instances.c.id.in_(ids))).all())
    assert sorted(fired) == [(i, 1) for i in ids]
    assert set(versions.values()) == {2}          # started (1), fired once (2): nobody saved twice
    for i in ids:
        assert [t["bpmn_id"] for t in flow.workflow.instance(i)["tasks"]] == ["approve"]


@pytest.mark.celery
def test_a_due_timer_fires_when_the_worker_runs_loom_tick(flow, celery_worker):
    past = datetime.now(timezone.utc) - timedelta(hours=2)
    with freeze_time(past):
        inst = flow.workflow.start("flow.deadline", SYS, {})     # its 1h timer fell due an hour ago
    assert inst["tasks"] == []
    code = ("from engine.runtime.celery_app import tick, celery;"
            "assert not celery.conf.task_always_eager;"
            "r = tick.delay().get(timeout=60);"
            "print(r['workflow']['fired'])")
    out = subprocess.run([sys.executable, "-c", code], env=celery_worker, cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"
    after = flow.workflow.instance(inst["id"], detail=True)
    assert [t["bpmn_id"] for t in after["tasks"]] == ["approve"]
    assert [e["actor"] for e in after["events"] if e["action"] == "timer"] == ["scheduler"]
