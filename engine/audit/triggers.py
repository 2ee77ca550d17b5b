"""Database triggers that make ``loom_audit`` append-only.

The hash chain makes tampering *evident*; the triggers make it *hard*: an UPDATE or DELETE on
the audit table is refused by the database itself, whichever program issues it. Someone with
rights to drop the triggers can still tamper, and ``loom audit verify`` will name the entry.
"""
from __future__ import annotations

import sqlalchemy as sa

MESSAGE = "loom_audit is append-only"

_SQLITE = [
    f"""CREATE TRIGGER IF NOT EXISTS loom_audit_no_update BEFORE UPDATE ON loom_audit
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS loom_audit_no_delete BEFORE DELETE ON loom_audit
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
]

_PG_FUNCTION = f"""CREATE OR REPLACE FUNCTION loom_audit_refuse() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql"""

_PG_TRIGGERS = {
    "loom_audit_no_update": "BEFORE UPDATE ON loom_audit FOR EACH ROW EXECUTE FUNCTION loom_audit_refuse()",
    "loom_audit_no_delete": "BEFORE DELETE ON loom_audit FOR EACH ROW EXECUTE FUNCTION loom_audit_refuse()",
    "loom_audit_no_truncate": "BEFORE TRUNCATE ON loom_audit FOR EACH STATEMENT EXECUTE FUNCTION loom_audit_refuse()",
}


def _existing(conn) -> set[str]:
    if conn.dialect.name == "sqlite":
        return {r[0] for r in conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'loom_audit'")}
    return {r[0] for r in conn.exec_driver_sql(
        "SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE c.relname = 'loom_audit' AND c.relnamespace = current_schema()::regnamespace "
        "AND NOT t.tgisinternal")}


def install_triggers(engine: sa.Engine) -> list[str]:
    """Create the triggers if missing; returns what was created (for ``loom init`` output)."""
    created = []
    with engine.begin() as conn:
        have = _existing(conn)
        if conn.dialect.name == "sqlite":
            for ddl in _SQLITE:
                name = ddl.split()[5]
                if name not in have:
                    conn.exec_driver_sql(ddl)
                    created.append(f"created trigger {name}")
        elif conn.dialect.name == "postgresql":
            missing = [n for n in _PG_TRIGGERS if n not in have]
            if missing:
                conn.exec_driver_sql(_PG_FUNCTION)
            for name in missing:
                conn.exec_driver_sql(f"CREATE TRIGGER {name} {_PG_TRIGGERS[name]}")
                created.append(f"created trigger {name}")
    return created


def drop_triggers(conn) -> None:
    """Remove the triggers (what an attacker with DDL rights would do; used by the tamper tests)."""
    for name in ("loom_audit_no_update", "loom_audit_no_delete", "loom_audit_no_truncate"):
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
        else:
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name} ON loom_audit")
