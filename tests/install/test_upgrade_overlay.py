"""A partner's upgrade keeps the firm's local changes, and asks when both changed the same thing."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from engine.errors import InvalidInput
from engine.meta import store
from engine.security import Actor

ANALYST = Actor(user_id=3, username="analyst", is_system=True)


def local_change(loom, kind, key, change):
    """What the designer does: publish a changed body as a local version."""
    with loom.db.connect() as conn:
        cur = store.get(conn, "mini", kind, key)
    loom.publish("mini", kind, key, change(dict(cur.body)), ANALYST)


def edit(path, file, old, new):
    p = path / file
    text = p.read_text(encoding="utf-8")
    assert old in text
    p.write_text(text.replace(old, new), encoding="utf-8")


def partner_v11(path):
    edit(path, "app.yaml", "version: 1.0.0", "version: 1.1.0")
    # the partner renames the customer label (en) and adds a field
    edit(path, "entities/customer.yaml", "label: {zh-CN: 客户, en: Customer}", "label: {zh-CN: 客户, en: Client}")
    edit(path, "entities/customer.yaml", "  - key: notes\n",
         "  - key: source\n    type: text\n    label: {zh-CN: 来源, en: Source}\n  - key: notes\n")


def add_local_field_and_label(body):
    body["label"] = {"zh-CN": "客户档案", "en": "Customer"}
    body["fields"] = body["fields"] + [{"key": "wechat", "type": "text", "label": {"zh-CN": "微信", "en": "WeChat"}}]
    return body


def test_local_field_and_label_survive_an_upgrade(mini, bundle_copy):
    local_change(mini, "entity", "customer", add_local_field_and_label)
    mini.records.create("mini.customer", {"name": "甲", "risk_level": "C1", "wechat": "jia01"}, ANALYST)
    path = bundle_copy()
    partner_v11(path)
    plan = mini.plan_install(path)
    change = next(d for d in plan.definitions if d.key == "customer" and d.kind == "entity")
    assert change.change == "merged" and change.conflicts == []
    mini.install(path)
    ent = mini.model.entity("mini", "customer")
    assert {"wechat", "source"} <= set(ent.fields)                    # both sides' fields
    assert ent.label == {"zh-CN": "客户档案", "en": "Client"}           # both sides' label edits
    with mini.db.connect() as conn:
        cur = store.get(conn, "mini", "entity", "customer")
        assert cur.origin == "merged" and cur.shipped["label"]["en"] == "Client"
        assert conn.execute(sa.text("SELECT wechat FROM mini_customer WHERE name = '甲'")).scalar() == "jia01"


def test_same_property_changed_on_both_sides_is_a_conflict_that_needs_a_choice(mini, bundle_copy):
    local_change(mini, "entity", "customer",
                 lambda b: {**b, "label": {"zh-CN": "客户", "en": "Account holder"}})
    path = bundle_copy()
    partner_v11(path)
    plan = mini.plan_install(path)
    [(d, c)] = plan.conflicts
    assert (d.kind, d.key, c.path) == ("entity", "customer", "/label/en")
    assert (c.base, c.ours, c.theirs) == ("Customer", "Account holder", "Client")
    assert any("CONFLICT /label/en" in line for line in plan.describe())
    with pytest.raises(InvalidInput) as exc:
        mini.install(path, plan=plan)
    assert exc.value.problems[0].code == "merge_conflict"
    with mini.db.connect() as conn:                                   # nothing applied
        assert conn.execute(sa.select(store.apps.c.version).where(store.apps.c.key == "mini")).scalar() == "1.0.0"
    mini.install(path, choices={"entity:customer:/label/en": "ours"})
    ent = mini.model.entity("mini", "customer")
    assert ent.label["en"] == "Account holder" and "source" in ent.fields


def test_taking_theirs_for_a_whole_definition(mini, bundle_copy):
    local_change(mini, "entity", "customer", lambda b: {**b, "label": {"zh-CN": "客户", "en": "Holder"}})
    path = bundle_copy()
    partner_v11(path)
    mini.install(path, choices={"entity:customer": "theirs"})
    assert mini.model.entity("mini", "customer").label["en"] == "Client"


def test_definitions_created_locally_are_not_removed_by_an_upgrade(mini, bundle_copy):
    with mini.db.begin() as conn:
        store.publish(conn, "mini", "form", "quick_customer",
                      {"key": "quick_customer", "entity": "customer", "sections": [{"fields": ["name"]}]},
                      author="analyst", origin="designer")
    path = bundle_copy()
    partner_v11(path)
    plan = mini.plan_install(path)
    assert not [d for d in plan.definitions if d.change == "removed"]
    mini.install(path)
    with mini.db.connect() as conn:
        assert store.get(conn, "mini", "form", "quick_customer") is not None


def test_unchanged_partner_definition_keeps_the_local_version(mini, bundle_copy):
    local_change(mini, "entity", "branch", lambda b: {**b, "label": {"zh-CN": "分支机构", "en": "Office"}})
    path = bundle_copy()
    partner_v11(path)
    mini.install(path)
    assert mini.model.entity("mini", "branch").label["en"] == "Office"
