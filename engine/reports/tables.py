"""The reports package's own tables: personal dashboards, report schedules and the email outbox.

Declared on :data:`engine.db.SYSTEM`, so ``loom init`` creates them with the engine's other
tables (additive only). Rollup summary tables are created per report by :mod:`.rollup`.
"""
from __future__ import annotations

import sqlalchemy as sa

from engine.db import SYSTEM, JSONType
from engine.types import UTCDateTime

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

personal_dashboards = sa.Table(
    "loom_report_personal", SYSTEM,
    sa.Column("user_id", ID, primary_key=True),
    sa.Column("app", sa.String(40), primary_key=True),
    sa.Column("body", JSONType, nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

schedules = sa.Table(
    "loom_report_schedule", SYSTEM,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("app", sa.String(40), nullable=False),
    sa.Column("report", sa.String(80), nullable=False),
    sa.Column("user_id", ID, nullable=False),                 # runs with this user's permissions
    sa.Column("params", JSONType),
    sa.Column("format", sa.String(8), nullable=False, default="xlsx"),
    sa.Column("recipients", JSONType, nullable=False),
    sa.Column("every", sa.String(8), nullable=False),          # day | week | month
    sa.Column("next_run_at", UTCDateTime(), nullable=False),
    sa.Column("last_run_at", UTCDateTime()),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_loom_report_schedule_due", "active", "next_run_at"),
)

outbox = sa.Table(
    "loom_report_outbox", SYSTEM,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("schedule_id", ID),
    sa.Column("recipients", JSONType, nullable=False),
    sa.Column("subject", sa.String(255), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("attachment_name", sa.String(255)),
    sa.Column("attachment", sa.LargeBinary),
    sa.Column("content_type", sa.String(120)),
    sa.Column("status", sa.String(12), nullable=False, default="queued"),   # queued | sent | failed
    sa.Column("error", sa.Text),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("sent_at", UTCDateTime()),
)
