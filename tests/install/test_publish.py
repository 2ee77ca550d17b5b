"""Publishing one definition (the designer's road): validated like a bundle, migrated, audited."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from engine.audit import audit_log
from engine.errors import Conflict, InvalidInput
from engine.meta import store
from engine.security import Actor

ANALYST = Actor(user_id=3, username="analyst", is_system=True)


def current(loom, kind, key):
    with loom.db.connect() as conn:
        return store.get(conn, "mini", kind, key)


def test_adding_a_field_migrates_and_the_field_is_usable_at_once(mini):
    cur = current(mini, "entity", "branch")
    body = {**cur.body, "fields": cur.body["fields"] + [{"key": "city", "type": "text"}]}
    result = mini.publish("mini", "entity", "branch", body, ANALYST, expected_version=cur.version)
    assert result.changed and [s.kind for s in result.migration.steps] == ["add_column"]
    rec = mini.records.create("mini.branch", {"code": "GZ01", "name": "广州", "city": "广州"}, ANALYST)
    assert rec["city"] == "广州"
    with mini.db.connect() as conn:
        row = conn.execute(sa.select(audit_log).where(audit_log.c.action == "publish")).mappings().one()
    assert row["actor"] == "analyst" and row["entity"] == "entity:branch"


def test_an_invalid_definition_is_refused_with_its_path_and_changes_nothing(mini):
    cur = current(mini, "form", "customer_form")
    body = {**cur.body, "sections": [{"fields": ["name", "nickname"]}]}
    with pytest.raises(InvalidInput) as exc:
        mini.publish("mini", "form", "customer_form", body, ANALYST)
    assert "entity `customer` has no field `nickname`" in str(exc.value.problems[0])
    assert current(mini, "form", "customer_form").version == cur.version


def test_a_bad_expression_is_refused(mini):
    cur = current(mini, "entity", "branch")
    body = {**cur.body, "fields": cur.body["fields"] + [
        {"key": "double", "type": "computed", "result": "text", "expression": "name.__class__"}]}
    with pytest.raises(InvalidInput) as exc:
        mini.publish("mini", "entity", "branch", body, ANALYST)
    assert "double" in str(exc.value.problems[0]) or "expression" in str(exc.value.problems[0])


def test_second_publisher_working_from_a_stale_version_is_refused(mini):
    cur = current(mini, "entity", "branch")
    first = {**cur.body, "label": {"zh-CN": "网点", "en": "Outlet"}}
    mini.publish("mini", "entity", "branch", first, ANALYST, expected_version=cur.version)
    second = {**cur.body, "label": {"zh-CN": "分部", "en": "Office"}}
    with pytest.raises(Conflict) as exc:
        mini.publish("mini", "entity", "branch", second, ANALYST, expected_version=cur.version)
    assert "reload" in exc.value.message
    assert mini.model.entity("mini", "branch").label["en"] == "Outlet"


def test_rollback_publishes_an_earlier_version_again(mini):
    cur = current(mini, "entity", "branch")
    mini.publish("mini", "entity", "branch", {**cur.body, "label": "新名字"}, ANALYST)
    with mini.db.begin() as conn:
        store.rollback(conn, "mini", "entity", "branch", cur.version, "analyst")
        versions = [d.version for d in store.history(conn, "mini", "entity", "branch")]
    assert versions == [3, 2, 1]
    assert current(mini, "entity", "branch").body == cur.body
