"""The engine's own monitoring tables (declared on ``engine.db.SYSTEM``, created by ``loom init``).

* ``loom_rule_event``: every ingested event once (unique external id), with a global sequence;
* ``loom_rule_version``: which version of each rule/typology runs, and how (shadow/active);
* ``loom_rule_cursor``: per rule set and partition, the last applied (ts, seq) -- partition -1 is
  the dispatcher's row (global cursor, lease, late and suppressed counters);
* ``loom_rule_state``: window state per group key, written with the cursor in one transaction;
* ``loom_rule_alert``: alerts (active) and would-be alerts (shadow), each with its explanation.
"""
from __future__ import annotations

import sqlalchemy as sa

from engine.db import SYSTEM, JSONType
from engine.types import UTCDateTime

events = sa.Table(
    "loom_rule_event", SYSTEM,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ext_id", sa.String(120), nullable=False),
    sa.Column("kind", sa.String(80), nullable=False),
    sa.Column("ts", sa.Double, nullable=False),
    sa.Column("payload", JSONType, nullable=False),
    sa.Column("received_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("ext_id", name="uq_loom_rule_event_ext_id"),
    sa.Index("ix_loom_rule_event_order", "ts", "seq"),
)

versions = sa.Table(
    "loom_rule_version", SYSTEM,
    sa.Column("app", sa.String(40), primary_key=True),
    sa.Column("kind", sa.String(20), primary_key=True),          # rule | typology
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("status", sa.String(12), nullable=False),          # shadow | active | retired
    sa.Column("author", sa.String(80)),
    sa.Column("activated_by", sa.String(80)),
    sa.Column("activated_at", UTCDateTime()),
)

cursors = sa.Table(
    "loom_rule_cursor", SYSTEM,
    sa.Column("ruleset", sa.String(90), primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True),
    sa.Column("ts", sa.Double),
    sa.Column("seq", sa.Integer),
    sa.Column("max_seq", sa.Integer),
    sa.Column("late", sa.Integer, nullable=False, default=0),
    sa.Column("suppressed", sa.Integer, nullable=False, default=0),
    sa.Column("errors", sa.Integer, nullable=False, default=0),
    sa.Column("lease_owner", sa.String(80)),
    sa.Column("lease_until", sa.Double),
)

states = sa.Table(
    "loom_rule_state", SYSTEM,
    sa.Column("ruleset", sa.String(90), primary_key=True),
    sa.Column("gkey", sa.String(200), primary_key=True),
    sa.Column("partition", sa.Integer, nullable=False),
    sa.Column("data", JSONType, nullable=False),
    sa.Index("ix_loom_rule_state_partition", "ruleset", "partition"),
)

alerts = sa.Table(
    "loom_rule_alert", SYSTEM,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ruleset", sa.String(90), nullable=False),
    sa.Column("subject_kind", sa.String(20), nullable=False),     # rule | typology
    sa.Column("subject", sa.String(80), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("mode", sa.String(10), nullable=False),             # active | shadow
    sa.Column("action", sa.String(10), nullable=False),           # alert | block
    sa.Column("gkey", sa.String(200), nullable=False),
    sa.Column("event_seq", sa.Integer, nullable=False),
    sa.Column("event_id", sa.String(120), nullable=False),
    sa.Column("ts", sa.Double, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("report", sa.String(20)),
    sa.Column("explanation", JSONType, nullable=False),
    sa.Column("case_id", sa.Integer),
    sa.Column("outcome", sa.String(20)),                          # true_positive | false_positive
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("ruleset", "subject_kind", "subject", "version", "mode", "event_seq",
                        name="uq_loom_rule_alert_once"),
    sa.Index("ix_loom_rule_alert_subject", "ruleset", "subject", "mode"),
)
