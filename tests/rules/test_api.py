"""The monitoring HTTP API: ingestion (JSON array and JSON lines), alerts, outcomes, versions,
activation, precision, backtests and report export."""
from __future__ import annotations

import json

import pytest

from engine.security.users import create_user, issue_token
from tests.conftest import BUNDLES
from tests.rules.conftest import RULESET, T0, activate_all, trade


@pytest.fixture
def api(loom):
    from engine.runtime.app import create_app
    from tests.runtime.conftest import ApiClient
    loom.install(BUNDLES / "surveil")
    with loom.db.begin() as conn:
        uid = create_user(conn, "officer", "secret-pass-1", is_admin=True, locale="en")
        token = issue_token(conn, uid, "tests")
    app = create_app(loom, {"TESTING": True})
    return ApiClient(app.test_client(), token)


def test_events_post_as_json_array_then_as_json_lines_is_idempotent(api, loom):
    from engine.rules import service
    activate_all(service(loom))
    batch = [trade("t1", 0, amount=600000), trade("t2", 5)]
    r = api.post("/api/v1/events?flush=1", json=batch)
    assert r.status_code == 200, r.get_json()
    assert (r.get_json()["accepted"], r.get_json()["duplicates"]) == (2, 0)
    lines = "\n".join(json.dumps(e) for e in batch + [trade("t3", 9)])
    r = api.post("/api/v1/events?flush=1", data=lines, headers={"Content-Type": "application/x-ndjson"})
    assert (r.get_json()["accepted"], r.get_json()["duplicates"]) == (1, 2)
    items = api.get("/api/v1/alerts?rule=large_trade&mode=active").get_json()["items"]
    assert [a["event_id"] for a in items] == ["t1"]
    one = api.get(f"/api/v1/alerts/{items[0]['id']}").get_json()
    assert one["explanation"]["rules"][0]["thresholds"] == {"limit": 500000}


def test_a_bad_event_is_a_problem_naming_the_line_and_nothing_is_stored(api):
    body = "\n".join([json.dumps(trade("ok", 0)), json.dumps({"id": "b", "kind": "trade", "ts": "noon"}), "{oops"])
    r = api.post("/api/v1/events", data=body, headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    assert [p["line"] for p in r.get_json()["errors"]] == [3]          # JSON syntax first
    r = api.post("/api/v1/events", data=body.rsplit("\n", 1)[0], headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 422
    assert [(p["line"], p["field"]) for p in r.get_json()["errors"]] == [(2, "ts")]
    assert api.get("/api/v1/rules/status").get_json()["items"] == []


def test_activation_through_the_api_enforces_maker_checker(api, loom):
    from engine.meta import store
    with loom.db.begin() as conn:    # the officer authors a new version of the rule
        body = dict(store.get(conn, "surveil", "rule", "large_trade").body, params={"limit": 1})
        store.publish(conn, "surveil", "rule", "large_trade", body, author="officer", origin="designer")
    versions = api.get("/api/v1/rules/surveil/versions?key=large_trade").get_json()["items"]
    assert [(v["version"], v["status"], v["author"]) for v in versions] == [
        (1, "shadow", "installer"), (2, "shadow", "officer")]
    r = api.post("/api/v1/rules/surveil/large_trade/activate", json={"version": 2})
    assert r.status_code == 403 and r.get_json()["errors"][0]["code"] == "maker_checker"
    r = api.post("/api/v1/rules/surveil/large_trade/activate", json={"version": 1})
    assert r.status_code == 200 and r.get_json()["activated_by"] == "officer"
    r = api.post("/api/v1/rules/surveil/large_trade/activate", json={"version": "two"})
    assert r.status_code == 422


def test_outcomes_precision_backtest_and_report_endpoints(api, loom):
    from engine.rules import service
    activate_all(service(loom))
    api.post("/api/v1/events?flush=1", json=[trade("t1", 0, amount=600000), trade("u1", 0, amount=700000,
                                                                                 account="B")])
    ids = [a["id"] for a in api.get("/api/v1/alerts?rule=large_trade&mode=active").get_json()["items"]]
    assert api.post(f"/api/v1/alerts/{ids[0]}/outcome", json={"outcome": "true_positive"}).status_code == 200
    assert api.post(f"/api/v1/alerts/{ids[1]}/outcome", json={"outcome": "maybe"}).status_code == 422
    stats = {(r["key"], r["mode"]): r for r in api.get("/api/v1/rules/precision").get_json()["items"]}
    assert stats[("large_trade", "active")]["precision"] == 1.0
    assert stats[("large_trade", "active")]["undecided"] == 1
    bt = api.post("/api/v1/rules/surveil/surveillance/backtest", json={"method": "replay"}).get_json()
    assert bt["events"] == 2 and {"subject": "large_trade", "mode": "active", "alerts": 2} in bt["alerts"]
    r = api.get("/api/v1/alerts/export?report=large_value&format=csv")
    assert r.status_code == 200 and r.data.decode().count("\n") == 3        # header + 2 alerts
    assert api.get("/api/v1/alerts/export?report=large_value&format=pdf").status_code == 422


def test_ingestion_needs_a_feeding_role(loom):
    from engine.runtime.app import create_app
    from tests.runtime.conftest import ApiClient
    loom.install(BUNDLES / "surveil")
    with loom.db.begin() as conn:
        uid = create_user(conn, "nobody", "secret-pass-1", locale="en")
        token = issue_token(conn, uid, "tests")
    client = ApiClient(create_app(loom, {"TESTING": True}).test_client(), token)
    r = client.post("/api/v1/events", json=[trade("t1", T0)])
    assert r.status_code == 403


def test_cli_loads_an_event_file_and_backtests(loom, tmp_path, monkeypatch):
    from click.testing import CliRunner
    from engine.runtime.cli import main
    from engine.rules import service
    loom.install(BUNDLES / "surveil")
    activate_all(service(loom))
    monkeypatch.setenv("LOOM_DATABASE_URL", loom.settings.database_url)
    monkeypatch.setenv("LOOM_DB_SCHEMA", loom.settings.db_schema or "")
    monkeypatch.setenv("LOOM_INSTANCE_PATH", str(loom.settings.instance_path))
    monkeypatch.setenv("LOOM_FIELD_KEY", "test-field-key")
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in [trade("t1", 0, amount=600000), trade("t2", 1)]))
    runner = CliRunner()
    out = runner.invoke(main, ["events", "load", str(path)])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout.strip().splitlines()[-1])["accepted"] == 2
    again = runner.invoke(main, ["events", "load", str(path)])
    assert json.loads(again.stdout.strip().splitlines()[-1])["duplicates"] == 2
    bt = runner.invoke(main, ["rules", "backtest", RULESET, "--method", "replay"])
    assert bt.exit_code == 0 and "large_trade" in bt.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x", "kind": "gift", "ts": 1}))
    out = runner.invoke(main, ["events", "load", str(bad)])
    assert out.exit_code == 1 and "bad.jsonl:1" in out.output and "`gift`" in out.output


def test_alerts_are_not_readable_without_a_monitoring_role(loom):
    from engine.runtime.app import create_app
    from tests.runtime.conftest import ApiClient
    loom.install(BUNDLES / "surveil")
    with loom.db.begin() as conn:
        uid = create_user(conn, "curious", "secret-pass-1", locale="en")
        token = issue_token(conn, uid, "tests")
    client = ApiClient(create_app(loom, {"TESTING": True}).test_client(), token)
    assert client.get("/api/v1/alerts").status_code == 403
    assert client.get("/api/v1/rules/precision").status_code == 403
