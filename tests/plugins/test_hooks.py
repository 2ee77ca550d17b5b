"""Every hook point fires where it should: validation and before-save inside the write (and can
refuse it with a field problem), after-commit after it, entity-declared hooks, cron jobs on the
tick, custom endpoints and report sources over HTTP."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from engine.errors import InvalidInput
from engine.security import Actor
from tests.plugins.helpers import ADMIN, customer_bundle, make_plugin

HOOKS_PY = '''
def no_test_names(record, context):
    if "test" in record["name"].lower():
        return {"name": {"zh-CN": "不能用测试姓名", "en": "no test names, please"}}
    record["notes"] = "checked on " + context["event"]


def short_notes(value, record):
    return len(value) <= 20 or "at most 20 characters"


def remember(event):
    records.create("mini.branch", {"code": "A" + str(event["id"]), "name": "after " + event["event"] + " " + str(event["id"])})


def nightly(job):
    records.create("mini.branch", {"code": "JOB", "name": "job " + job["job"]})


def hello(request):
    log("hello", request["args"].get("who"))
    return {"hello": request["args"].get("who") or request["user"]["username"], "method": request["method"],
            "body": request["json"]}


def branch_rows(params):
    rows = []
    for b in records.find("mini.branch", limit=100):
        rows.append({"branch": b["name"], "min": params.get("min", "0")})
    return rows


def spin(record, context):
    while True:
        pass
'''


def hook_plugin(tmp_path, **over):
    hooks = [
        {"point": "before_save", "target": "mini.customer", "script": "hooks.py", "function": "no_test_names"},
        {"point": "validate", "target": "mini.customer.notes", "script": "hooks.py", "function": "short_notes"},
        {"point": "after_commit", "target": "mini.customer", "script": "hooks.py", "function": "remember",
         "events": ["created"]},
        {"point": "schedule", "cron": "0 2 * * *", "script": "hooks.py", "function": "nightly"},
        {"point": "endpoint", "name": "hello", "script": "hooks.py", "function": "hello"},
        {"point": "report_source", "name": "branches", "script": "hooks.py", "function": "branch_rows"},
    ]
    return make_plugin(tmp_path, "hooks", {"hooks.py": HOOKS_PY}, hooks=over.pop("hooks", hooks),
                       permissions={"entities": [{"entity": "mini.branch", "actions": ["read", "create"]}]}, **over)


@pytest.fixture
def hooked(mini, tmp_path):
    mini.extensions["plugins"].install(hook_plugin(tmp_path), ADMIN, enable=True)
    return mini


def branches(loom):
    return sorted(r["name"] for r in loom.records.find("mini.branch", ADMIN)) if hasattr(loom.records, "find") else \
        sorted(r["name"] for r in _all(loom, "mini.branch"))


def _all(loom, entity):
    from engine.records.query import ListRequest
    req = ListRequest.from_params({})
    req.page_size = 500
    return loom.query.list(loom.records.entity(entity), ADMIN, req)["items"]


def test_before_save_refuses_with_a_field_problem_and_can_set_fields(hooked):
    with pytest.raises(InvalidInput) as err:
        hooked.records.create("mini.customer", {"name": "Test User", "risk_level": "C1"}, ADMIN.with_locale("en"))
    assert [(p.field, p.message) for p in err.value.problems] == [("name", "no test names, please")]
    rec = hooked.records.create("mini.customer", {"name": "王五", "risk_level": "C1"}, ADMIN)
    assert rec["notes"] == "checked on create"
    upd = hooked.records.update("mini.customer", rec["id"], {"aum": "10.00"}, ADMIN)
    assert upd["notes"] == "checked on update"
    with pytest.raises(InvalidInput):
        hooked.records.update("mini.customer", rec["id"], {"name": "a test"}, ADMIN)
    assert hooked.records.get("mini.customer", rec["id"], ADMIN)["name"] == "王五"


def test_field_validation_hook(hooked):
    with pytest.raises(InvalidInput) as err:
        hooked.records.create("mini.customer", {"name": "赵六", "risk_level": "C1", "notes": "x" * 21}, ADMIN)
    assert [(p.field, p.message) for p in err.value.problems] == [("notes", "at most 20 characters")]
    assert hooked.records.create("mini.customer", {"name": "赵六", "risk_level": "C1", "notes": "short"}, ADMIN)


def test_after_commit_runs_after_the_write_and_only_for_its_events(hooked):
    before = {r["name"] for r in _all(hooked, "mini.branch")}
    rec = hooked.records.create("mini.customer", {"name": "钱七", "risk_level": "C2"}, ADMIN)
    hooked.records.update("mini.customer", rec["id"], {"aum": "1.00"}, ADMIN)
    added = {r["name"] for r in _all(hooked, "mini.branch")} - before
    assert added == {f"after created {rec['id']}"}


def test_disabled_plugin_hooks_stop_at_once(hooked):
    hooked.extensions["plugins"].set_enabled("hooks", False, ADMIN)
    rec = hooked.records.create("mini.customer", {"name": "Test ok now", "risk_level": "C1"}, ADMIN)
    assert rec.get("notes") is None


def test_a_runaway_before_save_hook_is_stopped_and_refuses_the_write(mini, tmp_path):
    folder = hook_plugin(tmp_path, hooks=[{"point": "before_save", "target": "mini.customer", "script": "hooks.py",
                                           "function": "spin", "budget": {"seconds": 0.2}}])
    mini.extensions["plugins"].install(folder, ADMIN, enable=True)
    t0 = time.monotonic()
    with pytest.raises(InvalidInput) as err:
        mini.records.create("mini.customer", {"name": "孙八", "risk_level": "C1"}, ADMIN)
    assert time.monotonic() - t0 < 2
    msg = err.value.problems[0].message
    assert "hooks.spin" in msg and "time budget" in msg and "hooks.py, line" in msg
    assert not [r for r in _all(mini, "mini.customer") if r["name"] == "孙八"]


def test_scheduled_job_runs_when_due_on_the_tick(hooked):
    ext = hooked.extensions["plugins"]
    start = datetime(2024, 5, 1, 1, 0, tzinfo=timezone.utc)
    ext.clock = lambda: start
    assert ext.tick().get("jobs") == []               # first tick: schedules the next run (02:00)
    ext.clock = lambda: start + timedelta(minutes=30)
    assert ext.tick()["jobs"] == []
    ext.clock = lambda: start + timedelta(hours=1, minutes=1)
    assert ext.tick()["jobs"] == ["hooks:nightly"]
    assert ext.tick()["jobs"] == []                   # once per due time
    assert "job hooks:nightly" in {r["name"] for r in _all(hooked, "mini.branch")}


def test_entity_declared_hooks_plugin_function_and_bundle_script(loom, bundle_copy, tmp_path):
    bundle = customer_bundle(bundle_copy, extra="hooks:\n  before_save: [hooks.no_test_names, upper_name]\n"
                                                "  after_commit: [hooks.remember]\n")
    (bundle / "scripts").mkdir()
    (bundle / "scripts" / "upper_name.py").write_text(
        "if record['name'] == 'x':\n    errors = {'name': 'x is not a name'}\nrecord['email'] = 'a@b.cn'\n")
    loom.extensions["plugins"].install(hook_plugin(tmp_path, hooks=[
        {"point": "function", "script": "hooks.py", "function": "short_notes"}]), ADMIN, enable=True)
    loom.install(bundle)
    rec = loom.records.create("mini.customer", {"name": "周九", "risk_level": "C1"}, ADMIN)
    assert rec["notes"] == "checked on create" and rec["email"] == "a@b.cn"
    assert f"after created {rec['id']}" in {r["name"] for r in _all(loom, "mini.branch")}
    with pytest.raises(InvalidInput) as err:
        loom.records.create("mini.customer", {"name": "x", "risk_level": "C1"}, ADMIN)
    assert [(p.field, p.message) for p in err.value.problems] == [("name", "x is not a name")]


def test_endpoint_and_report_source_over_http(hooked):
    from engine.runtime.app import create_app
    from tests.runtime.conftest import make_token
    app = create_app(hooked, {"TESTING": True})
    h = {"Authorization": f"Bearer {make_token(hooked)}"}
    c = app.test_client()
    r = c.get("/api/v1/x/hooks/hello?who=ann", headers=h)
    assert r.status_code == 200 and r.get_json() == {"hello": "ann", "method": "GET", "body": None}
    r = c.post("/api/v1/x/hooks/hello", json={"a": 1}, headers=h)
    assert r.get_json() == {"hello": "alice", "method": "POST", "body": {"a": 1}}
    assert c.get("/api/v1/x/hooks/nope", headers=h).status_code == 404
    assert c.get("/api/v1/x/hooks/hello").status_code == 401
    r = c.get("/api/v1/plugins/hooks/sources/branches?min=5", headers=h)
    body = r.get_json()
    assert body["columns"] == ["branch", "min"] and body["rows"] and body["rows"][0]["min"] == "5"
    assert c.post("/api/v1/plugins/hooks/disable", headers=h).get_json()["enabled"] is False
    assert c.get("/api/v1/x/hooks/hello", headers=h).status_code == 404
