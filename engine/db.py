"""Database access shared by every package.

One SQLAlchemy engine per process, SQLAlchemy Core only (entity tables are built at run time from
metadata, so there are no ORM classes). SQLite gets WAL, foreign keys and a busy timeout;
PostgreSQL may be pinned to a schema (``LOOM_DB_SCHEMA``) so test runs never see each other's data.

The engine's own tables (``loom_*``) are declared by each package on :data:`SYSTEM` and created or
upgraded by :func:`sync_system_tables`, which applies additive differences only.
"""
from __future__ import annotations

import json
import re
from contextlib import contextmanager
from decimal import Decimal
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

SYSTEM = sa.MetaData()

#: JSON stored as JSONB on PostgreSQL, JSON text elsewhere.
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=json_default, separators=(",", ":"))


def create_engine(url: str, schema: str = "", echo: bool = False) -> sa.Engine:
    """Create the process-wide engine with the pragmas Loom relies on."""
    kwargs: dict[str, Any] = {"echo": echo, "future": True, "json_serializer": dumps}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
    engine = sa.create_engine(url, **kwargs)

    if engine.dialect.name == "sqlite":
        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            # Let SQLAlchemy issue BEGIN itself so SAVEPOINT and DDL are transactional.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # noqa: ANN001
            # Writers (engine.begin()) take the write lock up front with IMMEDIATE, so two writers
            # queue instead of deadlocking on a lock upgrade. Readers (engine.connect()) use a
            # deferred transaction, which WAL never blocks -- so a read made while this thread or
            # another holds the write lock cannot hang.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("loom_write")
                                 else "BEGIN")

        plain_begin = engine.begin

        @contextmanager
        def begin_write():
            with engine.connect() as conn:
                conn.execution_options(loom_write=True)
                with conn.begin():
                    yield conn

        engine.begin = begin_write  # type: ignore[method-assign]
        engine.plain_begin = plain_begin  # type: ignore[attr-defined]

    elif schema:
        if not _SCHEMA_RE.match(schema):
            raise ValueError(f"LOOM_DB_SCHEMA: `{schema}` is not a plain lower-case identifier")
        # create the schema on a throwaway engine, so no pooled connection predates the hook below
        bootstrap = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with bootstrap.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        bootstrap.dispose()

        @sa.event.listens_for(engine, "connect")
        def _search_path(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute(f'SET search_path TO "{schema}"')
            cur.close()
            dbapi_conn.commit()
    return engine


def drop_schema(url: str, schema: str) -> None:
    """Drop a whole PostgreSQL schema (test teardown)."""
    if not _SCHEMA_RE.match(schema):
        raise ValueError(schema)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    engine.dispose()


def sync_system_tables(engine: sa.Engine) -> list[str]:
    """Create missing ``loom_*`` tables, columns and indexes; never drop anything.

    Returns a description of what was changed, empty when the schema was current.
    """
    from engine.migrate import additive_sync  # local import: migrate builds on this module

    with engine.begin() as conn:
        return additive_sync(conn, SYSTEM)
