"""Changing a published entity migrates its table and never loses a row or a value."""
from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from engine.errors import InvalidInput
from engine.security import Actor

ACTOR = Actor.system("test")


def edit(path, file, old, new):
    p = path / file
    text = p.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {file}"
    p.write_text(text.replace(old, new), encoding="utf-8")


def bump(path, version):
    edit(path, "app.yaml", "version: 1.0.0", f"version: {version}")


def rows(loom, table):
    with loom.db.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(f'SELECT * FROM "{table}" ORDER BY id')).mappings()]


def columns(loom, table):
    with loom.db.connect() as conn:
        return {c["name"]: c for c in sa.inspect(conn).get_columns(table)}


@pytest.fixture
def seeded(mini):
    mini.records.create("mini.customer", {"name": "王五", "risk_level": "C2", "aum": "123.45", "notes": "keep me",
                                          "accounts": [{"number": "A-1", "balance": "10.00"}]}, ACTOR)
    return mini


def test_new_field_and_index_apply_by_themselves(seeded, bundle_copy):
    path = bundle_copy()
    edit(path, "entities/customer.yaml", "  - key: notes\n", "  - key: nickname\n    type: text\n    index: true\n"
         "    label: {zh-CN: 昵称, en: Nickname}\n  - key: notes\n")
    bump(path, "1.1.0")
    before = rows(seeded, "mini_customer")
    plan = seeded.plan_install(path)
    kinds = sorted(s.kind for s in plan.migration.steps)
    assert kinds == ["add_column", "add_index"]
    seeded.install(path)
    after = rows(seeded, "mini_customer")
    assert len(after) == len(before) == 3
    assert [r["name"] for r in after] == [r["name"] for r in before]
    assert all(r["nickname"] is None for r in after)
    rec = seeded.records.create("mini.customer", {"name": "赵六", "risk_level": "C1", "nickname": "小赵"}, ACTOR)
    assert rec["nickname"] == "小赵"


def test_widened_types_keep_values(seeded, bundle_copy):
    path = bundle_copy()
    edit(path, "entities/customer.yaml", "    max_length: 50", "    max_length: 200")
    edit(path, "entities/customer.yaml", "    precision: 18\n    scale: 2", "    precision: 20\n    scale: 4")
    bump(path, "1.1.0")
    plan = seeded.plan_install(path)
    widen = [s for s in plan.migration.steps if s.kind == "widen"]
    if seeded.db.dialect.name == "postgresql":
        assert {s.column for s in widen} == {"name", "aum"}
    assert not plan.migration.refused
    seeded.install(path)
    rec = seeded.records.create("mini.customer", {"name": "长" * 150, "risk_level": "C1", "aum": "1.2345"}, ACTOR)
    assert rec["aum"] == "1.2345"
    old = [r for r in rows(seeded, "mini_customer") if r["name"] == "王五"][0]
    assert Decimal(str(old["aum"])) == Decimal("123.45")


def test_removed_field_is_archived_not_dropped_and_needs_confirmation(seeded, bundle_copy):
    path = bundle_copy()
    edit(path, "entities/customer.yaml", "  - key: notes\n    type: long_text\n    label: {zh-CN: 备注, en: Notes}\n", "")
    edit(path, "forms/customer.yaml", "fields: [aum, is_professional, tags, notes]", "fields: [aum, is_professional, tags]")
    bump(path, "1.1.0")
    plan = seeded.plan_install(path)
    assert [(s.kind, s.column) for s in plan.migration.steps] == [("archive_column", "notes")]
    with pytest.raises(InvalidInput) as exc:
        seeded.install(path, plan=plan)
    assert exc.value.problems[0].code == "needs_confirmation"
    assert "notes" in columns(seeded, "mini_customer")                 # nothing happened
    seeded.install(path, confirm_destructive=True)
    cols = columns(seeded, "mini_customer")
    assert "notes" not in cols and "notes__archived1" in cols
    kept = [r for r in rows(seeded, "mini_customer") if r["name"] == "王五"][0]
    assert kept["notes__archived1"] == "keep me"                       # the data is still there
    assert "notes" not in seeded.model.entity("mini", "customer").fields
    # records read through the engine do not show archived columns
    one = seeded.records.get("mini.customer", kept["id"], ACTOR)
    assert "notes__archived1" not in one


def test_unsafe_type_change_is_refused_with_a_reason(seeded, bundle_copy):
    path = bundle_copy()
    edit(path, "entities/customer.yaml", "  - key: notes\n    type: long_text", "  - key: notes\n    type: integer")
    bump(path, "1.1.0")
    before = rows(seeded, "mini_customer")
    with pytest.raises(InvalidInput) as exc:
        seeded.install(path)
    problem = exc.value.problems[0]
    assert problem.code == "unsafe_type_change" and "notes" in problem.path
    assert "could lose or corrupt existing values" in problem.message
    assert rows(seeded, "mini_customer") == before
    assert seeded.model.entity("mini", "customer").fields["notes"].type == "long_text"


def test_shortening_text_is_refused(seeded, bundle_copy):
    path = bundle_copy()
    edit(path, "entities/customer.yaml", "    max_length: 50", "    max_length: 10")
    bump(path, "1.1.0")
    if seeded.db.dialect.name == "sqlite":
        pytest.skip("SQLite does not enforce text lengths; the new maximum is enforced by validation")
    with pytest.raises(InvalidInput) as exc:
        seeded.install(path)
    assert "shortening text" in exc.value.problems[0].message
