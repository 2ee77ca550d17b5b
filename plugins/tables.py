"""The plugin registry's own tables on ``engine.db.SYSTEM`` (created by ``loom init``).

``loom_plugin`` holds one row per installed plugin: its manifest, configuration, enabled state and
a ``revision`` bumped on every change (other processes notice changes by the sum of revisions).
``loom_plugin_script`` keeps every version of every script ever installed -- rows are only added --
and the manifest row names the version of each file that is current.
"""
from __future__ import annotations

import sqlalchemy as sa

from engine.db import SYSTEM, JSONType
from engine.types import UTCDateTime

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

plugins = sa.Table(
    "loom_plugin", SYSTEM,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("version", sa.String(40), nullable=False),
    sa.Column("manifest", JSONType, nullable=False),
    sa.Column("scripts", JSONType, nullable=False),          # {"identity.py": 3}: current version per file
    sa.Column("config", JSONType, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, default=False),
    sa.Column("revision", sa.Integer, nullable=False, default=1),
    sa.Column("installed_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("updated_by", sa.String(80)),
)

plugin_scripts = sa.Table(
    "loom_plugin_script", SYSTEM,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("plugin", sa.String(40), nullable=False, index=True),
    sa.Column("path", sa.String(120), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("plugin_version", sa.String(40), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", sa.String(80)),
    sa.UniqueConstraint("plugin", "path", "version", name="uq_loom_plugin_script_version"),
)

#: last run of each scheduled plugin job, so every process (and a restart) agrees on what is due
plugin_jobs = sa.Table(
    "loom_plugin_job", SYSTEM,
    sa.Column("key", sa.String(200), primary_key=True),      # "plugin:function"
    sa.Column("next_run_at", UTCDateTime()),
    sa.Column("last_run_at", UTCDateTime()),
    sa.Column("last_error", sa.Text),
)
