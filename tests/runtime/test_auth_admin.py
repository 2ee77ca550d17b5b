"""Administering users, roles and tokens over HTTP, and the audit screen and regulator export."""
from __future__ import annotations

import json

import pytest

from engine.audit import verify_entries
from engine.audit.export import read_csv
from tests.conftest import BUNDLES
from tests.security.world import build_world, login, make_app


@pytest.fixture
def world(loom):
    return build_world(loom, BUNDLES)


@pytest.fixture
def app(world):
    return make_app(world.loom)


def _client(app, user):
    c = app.test_client()
    token = login(c, user)
    return c, {"X-CSRFToken": token}


def test_only_administrators_manage_users(app, world):
    c, h = _client(app, "root")          # the bundle's admin role is not a system administrator
    assert c.get("/api/v1/admin/users").status_code == 403
    assert c.post("/api/v1/admin/users", json={"username": "x", "password": "Long-enough-1"}, headers=h).status_code == 403


def test_grant_and_revoke_change_what_the_user_sees_and_are_audited(app, world):
    admin, h = _client(app, "sysadmin")
    adv3, _ = _client(app, "adv3")
    assert len(adv3.get("/api/v1/secure/customer").get_json()["items"]) == 1
    r = admin.post(f"/api/v1/admin/users/{world.users['adv3']}/roles", json={"role": "secure.compliance"}, headers=h)
    assert r.status_code == 200 and "secure.compliance" in r.get_json()["roles"]
    assert len(adv3.get("/api/v1/secure/customer").get_json()["items"]) == 3      # at once, same session
    r = admin.delete(f"/api/v1/admin/users/{world.users['adv3']}/roles/secure.compliance", headers=h)
    assert r.status_code == 200 and r.get_json()["roles"] == ["secure.advisor"]
    assert len(adv3.get("/api/v1/secure/customer").get_json()["items"]) == 1
    bad = admin.post(f"/api/v1/admin/users/{world.users['adv3']}/roles", json={"role": "secure.nope"}, headers=h)
    assert bad.status_code == 422 and "unknown role" in bad.get_json()["errors"][0]["message"]
    log = admin.get("/api/v1/audit?action=role_grant").get_json()
    assert log["total"] == 1 and log["items"][0]["detail"] == {"role": "secure.compliance"}
    assert log["items"][0]["actor"] == "sysadmin" and log["items"][0]["record_id"] == str(world.users["adv3"])
    assert admin.get("/api/v1/audit?action=role_revoke").get_json()["total"] == 1


def test_users_and_tokens_through_the_api(app, world):
    admin, h = _client(app, "sysadmin")
    weak = admin.post("/api/v1/admin/users", json={"username": "eve", "password": "short"}, headers=h)
    assert weak.status_code == 422 and weak.get_json()["errors"][0]["field"] == "password"
    r = admin.post("/api/v1/admin/users", json={"username": "eve", "password": "Eve-password-1",
                                                "roles": ["secure.advisor"], "org_unit": "T3"}, headers=h)
    assert r.status_code == 201
    uid = r.get_json()["id"]
    t = admin.post("/api/v1/admin/tokens", json={"user_id": uid, "name": "robot", "days": 7}, headers=h)
    assert t.status_code == 201
    secret, tid = t.get_json()["token"], t.get_json()["id"]
    bearer = {"Authorization": f"Bearer {secret}"}
    # eve is in team T3 under branch B2 with the advisor role: she owns nothing yet
    assert app.test_client().get("/api/v1/secure/customer", headers=bearer).get_json()["items"] == []
    listed = admin.get("/api/v1/admin/tokens").get_json()["items"]
    assert [x["status"] for x in listed if x["id"] == tid] == ["active"]
    assert all("token_hash" not in x and secret not in json.dumps(x) for x in listed)
    assert admin.delete(f"/api/v1/admin/tokens/{tid}", headers=h).status_code == 200
    assert app.test_client().get("/api/v1/secure/customer", headers=bearer).status_code == 401
    html = admin.get("/admin/users").get_data(as_text=True)
    assert "eve" in html and "secure.advisor" in html and secret not in html


def test_audit_screen_filters_and_export_for_regulators(app, world):
    admin, h = _client(app, "sysadmin")
    adv1, ah = _client(app, "adv1")
    cid = world.customers["c1"]
    cur = adv1.get(f"/api/v1/secure/customer/{cid}").get_json()
    assert adv1.patch(f"/api/v1/secure/customer/{cid}", json={"risk_level": "C5", "version": cur["version"]},
                      headers={**ah, "If-Match": str(cur["version"])}).status_code == 200
    page = admin.get(f"/admin/audit?actor=adv1&action=update&entity=secure.customer&record={cid}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "C5" in html and "update" in html and "1 entries" in html.replace("共 1 条", "1 entries")
    # the regulator export: all entries, re-verifiable from the file alone
    csv_resp = admin.get("/api/v1/audit/export?format=csv")
    assert csv_resp.status_code == 200 and "attachment" in csv_resp.headers["Content-Disposition"]
    entries = read_csv(csv_resp.get_data(as_text=True))
    assert verify_entries(entries) == (True, None, "")
    jl = admin.get("/api/v1/audit/export?format=jsonl&since=2000-01-01").get_data(as_text=True).splitlines()
    assert verify_entries([json.loads(x) for x in jl])[0]
    # no clear sensitive value anywhere in the log
    body = csv_resp.get_data(as_text=True)
    assert all(v not in body for v in ("110101199003071234", "6222021234567890123"))
    # the export itself is on the record, and the chain is intact
    assert admin.get("/api/v1/audit?action=audit_export").get_json()["total"] >= 2
    assert admin.get("/api/v1/audit/verify").get_json()["ok"] is True
    bad = admin.get("/api/v1/audit?since=yesterday")
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "since"


def test_non_administrators_cannot_read_the_audit_log(app, world):
    for user in ("adv1", "mgr1", "comp"):
        c, _ = _client(app, user)
        assert c.get("/api/v1/audit").status_code == 403
        assert c.get("/api/v1/audit/export").status_code == 403
        assert c.get("/admin/audit").status_code == 403


def test_the_bundle_admin_role_reads_the_log_with_its_own_field_rules(app, world):
    c, _ = _client(app, "root")         # administer on every entity of the bundle
    items = c.get("/api/v1/audit?entity=secure.customer").get_json()["items"]
    assert items and all(i["entity"] == "secure.customer" for i in items)
    assert c.get("/api/v1/audit?entity=mini.customer").status_code == 403
    logins = c.get("/api/v1/audit").get_json()["items"]
    assert all(i["entity"] and i["entity"].startswith("secure.") for i in logins)     # no login entries
