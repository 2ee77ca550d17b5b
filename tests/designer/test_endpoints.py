"""The designer's JSON endpoints, as an analyst's browser calls them: drafts with lock versions,
validation problems, publishing with the migration plan first, history and rollback, access."""
from __future__ import annotations

import copy

import sqlalchemy as sa

from engine.meta import store

API = "/api/v1/designer/mini"


def entity_and_form(client):
    data = client.get(f"{API}/entity/customer").get_json()
    return copy.deepcopy(data["entity"]["body"]), copy.deepcopy(data["form"]["body"]), data


def items(ent, form, data, lock=False):
    if lock:
        return [{"kind": "entity", "key": "customer", "body": ent, "lock_version": data["entity"]["lock_version"]},
                {"kind": "form", "key": data["form_key"], "body": form, "lock_version": data["form"]["lock_version"]}]
    return [{"kind": "entity", "key": "customer", "body": ent, "version": data["entity"]["version"]},
            {"kind": "form", "key": data["form_key"], "body": form, "version": data["form"]["version"]}]


def add_wechat(ent, form):
    ent["fields"].append({"key": "wechat", "type": "text", "label": {"zh-CN": "微信", "en": "WeChat"}, "max_length": 40})
    form["sections"][0]["fields"].append("wechat")


def test_second_stale_draft_save_is_refused_naming_who_saved(alice, carol, mini):
    ent, form, data = entity_and_form(alice)
    add_wechat(ent, form)
    first = alice.post(f"{API}/draft", json={"items": items(ent, form, data, lock=True)})
    assert first.status_code == 200, first.get_json()
    assert first.get_json()["saved"]["entity"]["lock_version"] == 1
    # carol opened the definition before alice saved (no draft then): her save is refused
    ent2, form2, _ = copy.deepcopy(ent), copy.deepcopy(form), None
    ent2["label"] = {"zh-CN": "顾客", "en": "Client"}
    stale = carol.post(f"{API}/draft", json={"items": items(ent2, form2, data, lock=True)})
    assert stale.status_code == 409
    assert "alice" in stale.get_json()["detail"]
    # nothing of carol's landed: the stored draft is alice's, form draft lock unchanged
    reloaded = carol.get(f"{API}/entity/customer").get_json()
    assert reloaded["entity"]["draft"]["label"] == {"zh-CN": "客户", "en": "Customer"}
    assert reloaded["entity"]["draft_author"] == "alice"
    # after reloading, carol can save on top of alice's draft
    ok = carol.post(f"{API}/draft", json={"items": items(ent2, form2, reloaded, lock=True)})
    assert ok.status_code == 200
    assert ok.get_json()["saved"]["entity"]["lock_version"] == 2


def test_validate_reports_bad_expression_and_unknown_form_field(alice):
    ent, form, data = entity_and_form(alice)
    ent["fields"].append({"key": "score", "type": "computed", "expression": "aum *", "result": "decimal"})
    form["sections"][0]["fields"].append("no_such_field")
    res = alice.post(f"{API}/validate", json={"items": items(ent, form, data)})
    body = res.get_json()
    assert res.status_code == 200 and body["ok"] is False
    text = " ".join(p["message"] for p in body["problems"])
    assert "no_such_field" in text or "score" in text
    # nothing was published
    assert alice.get(f"{API}/entity/customer").get_json()["entity"]["version"] == data["entity"]["version"]


def test_expression_check_as_typed(alice):
    good = alice.post("/api/v1/designer/check", json={"source": "aum > 100", "mode": "eval"}).get_json()
    bad = alice.post("/api/v1/designer/check", json={"source": "__import__('os')", "mode": "eval"}).get_json()
    assert good["problems"] == []
    assert bad["problems"] and bad["problems"][0]["message"]


def test_publish_shows_plan_then_adds_the_column_and_audits(alice, mini):
    ent, form, data = entity_and_form(alice)
    add_wechat(ent, form)
    plan = alice.post(f"{API}/validate", json={"items": items(ent, form, data)}).get_json()
    assert plan["ok"] and any("add_column" in s and "wechat" in s for s in plan["migration"])
    assert plan["destructive"] is False
    assert any("wechat" in line for line in plan["diff"]["entity:customer"])
    res = alice.post(f"{API}/publish", json={"items": items(ent, form, data)})
    assert res.status_code == 200, res.get_json()
    pub = {p["kind"]: p for p in res.get_json()["published"]}
    assert pub["entity"]["changed"] and pub["entity"]["version"] == data["entity"]["version"] + 1
    # staff can use the field at once (no restart): a record with it goes through the record service
    from engine.security import Actor
    rec = mini.records.create("mini.customer", {"name": "王五", "risk_level": "C2", "wechat": "wang5"}, Actor.system())
    assert rec["wechat"] == "wang5"
    from engine.audit.log import audit_log
    with mini.db.connect() as conn:
        rows = conn.execute(sa.select(audit_log.c.action, audit_log.c.entity, audit_log.c.actor)
                            .where(audit_log.c.action == "publish")).all()
    assert ("publish", "entity:customer", "alice") in [tuple(r) for r in rows]


def test_destructive_change_needs_explicit_confirmation(alice, mini):
    ent, form, data = entity_and_form(alice)
    ent["fields"] = [f for f in ent["fields"] if f["key"] != "notes"]
    for s in form["sections"]:
        s["fields"] = [f for f in s["fields"] if f != "notes"]
    plan = alice.post(f"{API}/validate", json={"items": items(ent, form, data)}).get_json()
    assert plan["destructive"] is True and any("archive" in s for s in plan["migration"])
    refused = alice.post(f"{API}/publish", json={"items": items(ent, form, data)})
    assert refused.status_code == 422
    assert alice.get(f"{API}/entity/customer").get_json()["entity"]["version"] == data["entity"]["version"]
    done = alice.post(f"{API}/publish", json={"items": items(ent, form, data), "confirm_destructive": True})
    assert done.status_code == 200, done.get_json()
    assert "notes" not in mini.model.entities["mini.customer"].fields


def test_stale_publish_is_refused(alice, carol):
    ent, form, data = entity_and_form(alice)
    add_wechat(ent, form)
    assert alice.post(f"{API}/publish", json={"items": items(ent, form, data)}).status_code == 200
    ent2, form2, _ = entity_and_form(carol)
    ent["label"] = {"zh-CN": "顾客", "en": "Client"}
    res = carol.post(f"{API}/publish", json={"items": items(ent, form, data)})   # versions from before alice's
    assert res.status_code == 409
    assert "alice" in res.get_json()["detail"]


def test_history_and_rollback(alice, mini):
    ent, form, data = entity_and_form(alice)
    v1 = data["entity"]["version"]
    add_wechat(ent, form)
    assert alice.post(f"{API}/publish", json={"items": items(ent, form, data)}).status_code == 200
    hist = alice.get(f"{API}/entity/customer/history").get_json()["history"]
    assert [h["version"] for h in hist] == [v1 + 1, v1]
    assert hist[0]["author"] == "alice"
    # the entity alone cannot go back while the published form still shows the field: refused, clearly
    refused = alice.post(f"{API}/entity/customer/rollback", json={"version": v1, "confirm_destructive": True})
    assert refused.status_code == 422 and "wechat" in str(refused.get_json()["errors"])
    form_v1 = data["form"]["version"]
    assert alice.post(f"{API}/form/{data['form_key']}/rollback", json={"version": form_v1}).status_code == 200
    res = alice.post(f"{API}/entity/customer/rollback", json={"version": v1, "confirm_destructive": True})
    assert res.status_code == 200, res.get_json()
    assert res.get_json()["published"]["version"] == v1 + 2
    with mini.db.connect() as conn:
        cur = store.get(conn, "mini", "entity", "customer")
    assert [f["key"] for f in cur.body["fields"]] == [f["key"] for f in data["entity"]["body"]["fields"]]
    assert "wechat" not in mini.model.entities["mini.customer"].fields
    bad = alice.post(f"{API}/entity/customer/rollback", json={"version": 99})
    assert bad.status_code == 404


def test_users_without_design_permission_are_refused(bob, alice):
    assert bob.get(f"{API}/entity/customer").status_code == 403
    ent, form, data = entity_and_form(alice)
    assert bob.post(f"{API}/publish", json={"items": items(ent, form, data)}).status_code == 403
    assert bob.post(f"{API}/draft", json={"items": items(ent, form, data, lock=True)}).status_code == 403
    assert bob.get("/designer").status_code == 403
    assert bob.get("/designer/mini/workflow/kyc").status_code == 403
    assert alice.get("/designer").status_code == 200


def test_preview_renders_the_draft_with_staff_screen_widgets(app, mini):
    import json
    from tests.designer.conftest import _token
    client = app.test_client()
    token = _token(mini, "dora", is_admin=True)
    ent, form, _ = entity_and_form(Client_(client, token))
    add_wechat(ent, form)
    res = client.post("/designer/mini/form/customer/preview", data={"draft": json.dumps({"entity": ent, "form": form})},
                      headers={"Authorization": f"Bearer {token}"})
    html = res.get_data(as_text=True)
    assert res.status_code == 200
    assert 'name="wechat"' in html and 'class="field span-1' in html     # the staff screens' field macro
    assert 'data-ok="1"' in html


def Client_(client, token):
    from tests.designer.conftest import Client
    return Client(client, token)
