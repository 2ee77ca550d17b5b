"""The audit log is append-only in the database, and tampering by someone who gets around that
(drops the triggers, as a DBA or an attacker with DDL rights could) is named by `verify`."""
from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from engine import audit
from engine.audit.triggers import drop_triggers
from engine.security import Actor

ACTOR = Actor.system("tests")


def _fill(loom, n=6):
    ids = []
    with loom.db.begin() as conn:
        for i in range(n):
            ids.append(audit.append(conn, "update", actor="tester", entity="mini.customer", record_id=i,
                                    before={"aum": str(i)}, after={"aum": str(i + 1)}))
    return ids


def _verify(loom):
    with loom.db.connect() as conn:
        return audit.verify(conn)


def test_database_refuses_update_and_delete(loom):
    ids = _fill(loom, 2)
    for stmt in (audit.audit_log.update().where(audit.audit_log.c.id == ids[0]).values(actor="mallory"),
                 audit.audit_log.delete().where(audit.audit_log.c.id == ids[0])):
        with pytest.raises(sa.exc.DBAPIError) as exc:
            with loom.db.begin() as conn:
                conn.execute(stmt)
        assert "append-only" in str(exc.value)
    assert _verify(loom).ok and _verify(loom).checked == 2


def test_init_db_is_idempotent_and_recreates_dropped_triggers(loom):
    assert loom.init_db() == []
    with loom.db.begin() as conn:
        drop_triggers(conn)
    created = {c for c in loom.init_db() if "trigger" in c}
    assert {"created trigger loom_audit_no_delete", "created trigger loom_audit_no_update"} <= created
    _fill(loom, 1)
    with pytest.raises(sa.exc.DBAPIError):
        with loom.db.begin() as conn:
            conn.execute(audit.audit_log.delete())


@pytest.mark.parametrize("attack", ["alter", "delete", "rehash", "forge_first"])
def test_tampering_is_caught_and_the_first_bad_entry_named(loom, attack):
    ids = _fill(loom)
    assert _verify(loom).ok
    t = audit.audit_log
    with loom.db.begin() as conn:
        drop_triggers(conn)
        if attack == "alter":
            conn.execute(t.update().where(t.c.id == ids[2]).values(after={"aum": "999999"}))
            expected, words = ids[2], "content was altered"
        elif attack == "delete":
            conn.execute(t.delete().where(t.c.id == ids[3]))
            expected, words = ids[4], f"entries {ids[3]}..{ids[3]} are missing"
        elif attack == "rehash":      # change a row and recompute its own hash
            row = dict(conn.execute(sa.select(t).where(t.c.id == ids[1])).mappings().one())
            row["after"] = {"aum": "1000000"}
            conn.execute(t.update().where(t.c.id == ids[1]).values(
                after=row["after"], hash=audit.log.entry_hash(row["prev_hash"], row)))
            expected, words = ids[1], "altered and re-hashed"
        else:                          # remove the beginning of the log
            conn.execute(t.delete().where(t.c.id <= ids[1]))
            expected, words = ids[2], "are missing"
    result = _verify(loom)
    assert not result.ok
    assert result.first_bad_id == expected, str(result)
    assert words in result.reason and f"entry {expected}" in str(result)


def _raw_entry(conn, entry_id, prev, action="update", actor="tester"):
    from datetime import datetime, timezone
    values = dict(at=datetime.now(timezone.utc), actor_id=None, actor=actor, address=None, action=action, app=None,
                  entity="mini.customer", record_id=str(entry_id), before=None, after=None, detail=None)
    h = audit.log.entry_hash(prev, values)
    conn.execute(audit.audit_log.insert().values(id=entry_id, prev_hash=prev, hash=h, **values))
    return h


def test_an_inserted_entry_is_named_even_with_a_correct_hash(loom):
    # PostgreSQL sequences leave gaps (rolled-back transactions): an attacker fills one
    with loom.db.begin() as conn:
        h1 = _raw_entry(conn, 1, audit.log.GENESIS)
        h2 = _raw_entry(conn, 2, h1)
        _raw_entry(conn, 4, h2)
    assert _verify(loom).ok
    with loom.db.begin() as conn:
        drop_triggers(conn)
        _raw_entry(conn, 3, h2, action="delete", actor="mallory")
    result = _verify(loom)
    assert not result.ok and result.first_bad_id == 3 and "inserted" in result.reason


def test_a_removed_tail_is_caught_by_an_anchor(loom):
    ids = _fill(loom, 4)
    head = _verify(loom)
    assert head.ok and head.head_id == ids[-1]
    with loom.db.begin() as conn:
        drop_triggers(conn)
        conn.execute(audit.audit_log.delete().where(audit.audit_log.c.id >= ids[2]))
    assert _verify(loom).ok                   # a shorter chain is internally consistent...
    with loom.db.connect() as conn:
        result = audit.verify(conn, anchor=(head.head_id, head.head_hash))
    assert not result.ok and result.first_bad_id == ids[-1] and "removed" in result.reason


def test_cli_verify_names_the_entry(loom, monkeypatch):
    from click.testing import CliRunner

    from engine.runtime import cli
    ids = _fill(loom, 3)
    with loom.db.begin() as conn:
        drop_triggers(conn)
        conn.execute(audit.audit_log.update().where(audit.audit_log.c.id == ids[1]).values(actor="mallory"))
    monkeypatch.setattr(cli, "_loom", lambda: loom)
    r = CliRunner().invoke(cli.main, ["audit", "verify"])
    assert r.exit_code != 0 and f"entry {ids[1]}" in r.output, r.output


def test_export_can_be_reverified_offline(loom):
    from engine.audit import AuditFilter, iter_entries, to_csv, to_jsonl, verify_entries
    from engine.audit.export import read_csv
    _fill(loom, 4)
    with loom.db.connect() as conn:
        entries = list(iter_entries(conn, AuditFilter()))
    lines = "".join(to_jsonl(entries)).splitlines()
    parsed = [json.loads(x) for x in lines]
    assert verify_entries(parsed) == (True, None, "")
    csv_text = "".join(to_csv(entries))
    assert verify_entries(read_csv(csv_text)) == (True, None, "")
    parsed[2]["after"] = {"aum": "7"}
    ok, bad, _ = verify_entries(parsed)
    assert not ok and bad == parsed[2]["id"]
    # a filtered export proves each entry by itself
    with loom.db.connect() as conn:
        some = list(iter_entries(conn, AuditFilter(record_id="2")))
    assert len(some) == 1 and verify_entries(some, from_genesis=False)[0]
