"""Appending to the chain: the hash the database computes (PostgreSQL appends in one statement)
is the hash `verify` recomputes in Python, concurrent writers never fork the chain, and a
database from before the head row existed continues its chain."""
from __future__ import annotations

import threading
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from engine import audit
from engine.audit.log import GENESIS, audit_head, entry_hash


def _verify(loom):
    with loom.db.connect() as conn:
        return audit.verify(conn)


def test_the_stored_hash_is_the_hash_of_the_entry(loom):
    with loom.db.begin() as conn:
        first = audit.append(conn, "create", actor_id=7, actor="张三", address="10.0.0.1", app="crm",
                             entity="crm.customer", record_id=42,
                             after={"name": "王小明", "aum": Decimal("1234.50"), "opened": date(2026, 11, 1),
                                    "tags": ["高净值", "C4"], "nested": {"at": datetime(2026, 11, 1, tzinfo=timezone.utc)}})
        second = audit.append(conn, "update", actor="tester", entity="crm.customer", record_id=42,
                              before={"aum": "1234.50"}, after={"aum": "99.00"}, detail={"reason": "调整"})
    with loom.db.connect() as conn:
        rows = conn.execute(sa.select(audit.audit_log).order_by(audit.audit_log.c.id)).mappings().all()
    assert [r["id"] for r in rows] == [first, second]
    assert rows[0]["prev_hash"] == GENESIS and rows[1]["prev_hash"] == rows[0]["hash"]
    for row in rows:
        assert row["hash"] == entry_hash(row["prev_hash"], dict(row))
    assert _verify(loom).ok


def test_concurrent_writers_never_chain_onto_the_same_entry(loom):
    errors = []

    def writer(n):
        try:
            for i in range(15):
                with loom.db.begin() as conn:
                    audit.append(conn, "update", actor=f"w{n}", entity="mini.customer", record_id=i,
                                 after={"i": i, "writer": n})
        except Exception as exc:  # pragma: no cover - a failure here is the test failing
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    with loom.db.connect() as conn:
        prevs = conn.execute(sa.select(audit.audit_log.c.prev_hash)).scalars().all()
    assert len(prevs) == 90 and len(set(prevs)) == 90          # no two entries share a predecessor
    result = _verify(loom)
    assert result.ok and result.checked == 90


def test_a_rolled_back_append_leaves_the_chain_as_it_was(loom):
    with loom.db.begin() as conn:
        audit.append(conn, "create", actor="a", entity="mini.customer", record_id=1)
    with pytest.raises(RuntimeError):
        with loom.db.begin() as conn:
            audit.append(conn, "create", actor="b", entity="mini.customer", record_id=2)
            raise RuntimeError("the business write failed")
    with loom.db.begin() as conn:
        audit.append(conn, "create", actor="c", entity="mini.customer", record_id=3)
    result = _verify(loom)
    assert result.ok and result.checked == 2


def test_a_database_without_the_head_row_continues_its_chain(loom):
    if loom.db.dialect.name != "postgresql":
        pytest.skip("the head row is PostgreSQL's one-statement append")
    with loom.db.begin() as conn:
        for i in range(3):
            audit.append(conn, "create", actor="old", entity="mini.customer", record_id=i)
        conn.execute(audit_head.delete())            # as a database upgraded from before the table
    with loom.db.begin() as conn:
        audit.append(conn, "create", actor="new", entity="mini.customer", record_id=9)
    result = _verify(loom)
    assert result.ok and result.checked == 4
    with loom.db.connect() as conn:
        assert conn.execute(sa.select(audit_head.c.hash)).scalar() == result.head_hash
