"""Attach the workflow engine to a Loom: tables, deploy checks and hooks, triggers, the tick."""
from __future__ import annotations

import os

from engine.workflow.definitions import check_bundle, deploy_hook
from engine.workflow.scheduler import EmbeddedScheduler
from engine.workflow.service import WorkflowService


class WorkflowExtension:
    """What ``loom.extensions["workflow"]`` holds: the service plus the Loom lifecycle hooks."""

    def __init__(self, loom):
        self.loom = loom
        self.service = WorkflowService(loom)
        self.scheduler = EmbeddedScheduler(self.tick, float(os.environ.get("LOOM_TICK_SECONDS", "5")))

    def init_db(self, db_engine) -> list[str]:
        from engine.db import sync_system_tables
        return sync_system_tables(db_engine)

    def tick(self) -> dict:
        return self.service.tick()

    def start_scheduler(self) -> None:
        """Start the embedded scheduler (``loom serve``); off when LOOM_EMBEDDED_SCHEDULER=0."""
        if os.environ.get("LOOM_EMBEDDED_SCHEDULER", "1") not in {"0", "false", "no"}:
            self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.stop()


def _deploy_published(conn, app: str, kind: str, key: str, body: dict) -> None:
    """A process published from the designer is deployed in the same transaction."""
    if kind == "workflow":
        from engine.workflow.definitions import deploy_xml
        deploy_xml(conn, app, body["xml"], f"workflows/{key}.bpmn")


def _running_instances(conn, plan) -> list[str]:
    """For an upgrade plan: processes whose definition changes while instances are still running
    (they finish on the version they started with)."""
    import sqlalchemy as sa
    from engine.workflow.tables import process_definitions as pd, process_instances as pi
    files = {f"workflows/{d.key}.bpmn" for d in plan.definitions if d.kind == "workflow" and d.change != "unchanged"}
    if not files:
        return []
    rows = conn.execute(sa.select(pi.c.process_key, pi.c.version, sa.func.count())
                        .join(pd, pd.c.id == pi.c.definition_id)
                        .where(pi.c.app == plan.app, pi.c.status.in_(["waiting", "error", "running"]),
                               pd.c.file.in_(files))
                        .group_by(pi.c.process_key, pi.c.version)).all()
    return [f"process {key}: {n} running instance(s) stay on version {v} until they finish" for key, v, n in rows]


def attach(loom) -> None:
    import engine.workflow.tables  # noqa: F401
    ext = WorkflowExtension(loom)
    loom.extend("workflow", ext)
    loom.install_checks.append(check_bundle)
    loom.install_hooks.append(deploy_hook)
    loom.publish_hooks.append(_deploy_published)
    loom.plan_annotators.append(_running_instances)
    loom.bus.subscribe("record.created", ext.service.on_record_event)
    loom.bus.subscribe("record.updated", ext.service.on_record_event)
    loom.workflow = ext.service
