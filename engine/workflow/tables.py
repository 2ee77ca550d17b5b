"""The workflow engine's own tables (``loom_process_*``, notifications, outbox).

Definitions are immutable rows, one per (process key, version); instances hold one state-only
JSON document each (the spec lives once, in the definition row), with an indexed
``next_timer_at`` so the scheduler reads only due instances. The human-task table is a projection
of the READY manual tasks, rebuilt on every save, which the inbox queries without loading states.
"""
from __future__ import annotations

import sqlalchemy as sa

from engine.db import SYSTEM, JSONType
from engine.types import UTCDateTime

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

process_definitions = sa.Table(
    "loom_process_definition", SYSTEM,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("app", sa.String(40), nullable=False),
    sa.Column("key", sa.String(160), nullable=False),          # "app.process_id"
    sa.Column("process_id", sa.String(120), nullable=False),   # the BPMN process id
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("name", sa.String(200)),
    sa.Column("file", sa.String(255)),
    sa.Column("xml", sa.Text, nullable=False),
    sa.Column("xml_sha256", sa.String(64), nullable=False),
    sa.Column("spec", sa.Text, nullable=False),                # serialized spec + subprocess specs (JSON)
    sa.Column("meta", JSONType, nullable=False),               # tasks, lanes -> roles, triggers, timer start
    sa.Column("spiff_version", sa.String(20)),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("key", "version", name="uq_loom_process_definition_version"),
)

process_instances = sa.Table(
    "loom_process_instance", SYSTEM,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("definition_id", ID, sa.ForeignKey("loom_process_definition.id"), nullable=False),
    sa.Column("app", sa.String(40), nullable=False),
    sa.Column("process_key", sa.String(160), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),        # waiting | error | completed | cancelled
    sa.Column("state", sa.Text, nullable=False),               # SpiffWorkflow state JSON without the spec
    sa.Column("serializer_version", sa.String(10)),
    sa.Column("next_timer_at", UTCDateTime(), index=True),
    sa.Column("lock_version", sa.Integer, nullable=False, default=1),
    sa.Column("correlation_key", sa.String(120), index=True),
    sa.Column("subject_entity", sa.String(120)),
    sa.Column("subject_id", ID),
    sa.Column("error", JSONType),
    sa.Column("started_by", sa.String(80)),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("completed_at", UTCDateTime()),
)

human_tasks = sa.Table(
    "loom_human_task", SYSTEM,
    sa.Column("id", sa.String(36), primary_key=True),          # the SpiffWorkflow task id
    sa.Column("instance_id", ID, sa.ForeignKey("loom_process_instance.id"), nullable=False, index=True),
    sa.Column("app", sa.String(40), nullable=False),
    sa.Column("process_key", sa.String(160), nullable=False),
    sa.Column("bpmn_id", sa.String(120), nullable=False),
    sa.Column("name", sa.String(200)),
    sa.Column("lane", sa.String(120)),
    sa.Column("role", sa.String(160), index=True),
    sa.Column("candidates", JSONType),                         # {"users": [...], "roles": [...]}
    sa.Column("form_key", sa.String(160)),
    sa.Column("assignee", sa.String(80), index=True),
    sa.Column("claimed_by", sa.String(80)),
    sa.Column("status", sa.String(16), nullable=False, index=True),   # ready | completed | cancelled
    sa.Column("due_at", UTCDateTime(), index=True),
    sa.Column("priority", sa.Integer, nullable=False, default=50),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("completed_at", UTCDateTime()),
    sa.Column("completed_by", sa.String(80)),
)

process_events = sa.Table(
    "loom_process_event", SYSTEM,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("instance_id", ID, nullable=False, index=True),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("actor", sa.String(80)),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("bpmn_id", sa.String(120)),
    sa.Column("task_id", sa.String(36)),
    sa.Column("detail", JSONType),
)

#: one row per side effect of a service task, keyed by the task attempt: a retry finds the row
#: and returns the stored result instead of doing the effect again
process_effects = sa.Table(
    "loom_process_effect", SYSTEM,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("instance_id", ID, nullable=False, index=True),
    sa.Column("bpmn_id", sa.String(120)),
    sa.Column("action", sa.String(80), nullable=False),
    sa.Column("result", JSONType),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

notifications = sa.Table(
    "loom_notification", SYSTEM,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(80), index=True),
    sa.Column("role", sa.String(160), index=True),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("body", sa.Text),
    sa.Column("link", sa.String(500)),
    sa.Column("idempotency_key", sa.String(200), unique=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("read_at", UTCDateTime()),
)

#: messages for channels the engine does not deliver itself (SMS, WeCom, ...): plugins drain it
outbox = sa.Table(
    "loom_outbox", SYSTEM,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("channel", sa.String(40), nullable=False, index=True),
    sa.Column("payload", JSONType, nullable=False),
    sa.Column("idempotency_key", sa.String(200), unique=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("sent_at", UTCDateTime()),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
)

#: timer start events: when each process with one starts its next instance
process_schedules = sa.Table(
    "loom_process_schedule", SYSTEM,
    sa.Column("process_key", sa.String(160), primary_key=True),
    sa.Column("expression", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(12), nullable=False),          # cycle | date | duration | cron
    sa.Column("next_run_at", UTCDateTime(), index=True),
    sa.Column("last_run_at", UTCDateTime()),
)

#: the records an open task's process data points at (``customer_id = 7`` -> (app.customer, 7)),
#: written with the task row, so a record page can list "open tasks about this record" with one
#: indexed read instead of restoring every running instance's state
task_refs = sa.Table(
    "loom_task_ref", SYSTEM,
    sa.Column("task_id", sa.String(36), nullable=False, index=True),
    sa.Column("instance_id", ID, nullable=False),
    sa.Column("entity", sa.String(120), nullable=False),       # "app.entity"
    sa.Column("record_id", ID, nullable=False),
    sa.Column("variable", sa.String(120)),
    sa.Index("ix_loom_task_ref_record", "entity", "record_id"),
)
