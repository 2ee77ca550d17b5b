"""Streaming evaluation with the database: ingestion, ordering, restarts, partitions, shadow mode,
maker-checker, alerts and cases, backtests."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from engine.errors import Forbidden, InvalidInput
from engine.rules import backtest, service
from engine.rules.tables import alerts, events
from engine.security import Actor
from tests.conftest import BUNDLES
from tests.rules.conftest import RULESET, activate_all, ev, random_events, rewrite_rule, trade


def alert_rows(loom, **where):
    q = sa.select(alerts).order_by(alerts.c.id)
    for k, v in where.items():
        q = q.where(alerts.c[k] == v)
    with loom.db.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def signature(rows):
    return sorted((a["subject_kind"], a["subject"], a["version"], a["mode"], a["gkey"], a["event_id"],
                   round(a["score"], 9), a["action"]) for a in rows)


# -- ingestion ----------------------------------------------------------------------------------

def test_reingesting_the_same_events_stores_and_counts_them_once(svc, surveil):
    batch = [trade("t1", 0, amount=600000), trade("t2", 1), trade("t3", 2)]
    first = svc.ingest(batch, final=True)
    again = svc.ingest(batch + [trade("t4", 3)], final=True)
    assert (first["accepted"], first["duplicates"]) == (3, 0)
    assert (again["accepted"], again["duplicates"]) == (1, 3)
    with surveil.db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(events)).scalar() == 4
    assert [a["event_id"] for a in alert_rows(surveil, subject="large_trade")] == ["t1"]   # not twice


def test_a_bad_event_rejects_the_batch_naming_line_and_field(svc, surveil):
    with pytest.raises(InvalidInput) as info:
        svc.ingest([trade("ok", 0), {"id": "x", "kind": "wire", "ts": 1}, {"id": "y", "kind": "trade", "ts": "yesterday"},
                    {"kind": "trade", "ts": 5}])
    found = {(p.line, p.field) for p in info.value.problems}
    assert found == {(2, "kind"), (3, "ts"), (4, "id")}
    with surveil.db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(events)).scalar() == 0


def test_events_out_of_order_within_the_tolerance_are_evaluated_in_event_time(svc, surveil):
    # tolerance is 60 s; the 1-day volume rule fires when the running sum reaches 1,000,000
    activate_all(svc)
    svc.ingest([trade("a", 0, amount=400000), trade("c", 30, amount=400000)])
    svc.ingest([trade("b", 10, amount=300000)])            # arrives late, but within the tolerance
    svc.ingest([trade("z", 500, amount=1)])                  # moves the watermark past all three
    hits = alert_rows(surveil, subject="daily_volume", mode="active")
    assert [h["event_id"] for h in hits] == ["c"]          # a+b+c in event-time order; b alone is not enough
    assert hits[0]["explanation"]["rules"][0]["features"]["vol_1d"] == 1100000.0


def test_events_later_than_the_tolerance_are_stored_and_counted_not_evaluated(svc, surveil):
    svc.ingest([trade("a", 0), trade("b", 1000), trade("c", 1100)])     # watermark 1040: a and b applied
    result = svc.ingest([trade("old", 10, amount=900000)])
    assert result["late"] == 1
    svc.process()
    assert svc.status()[0]["late"] == 1
    assert not alert_rows(surveil, event_id="old")
    # a backtest over stored history does include it
    bt = backtest(svc, RULESET)
    assert any(a["event_id"] == "old" for a in bt.alerts)


# -- restart and partitions -------------------------------------------------------------------------

def run_everything(loom, evs):
    svc = service(loom)
    activate_all(svc)
    svc.ingest(evs, final=True)
    return signature(alert_rows(loom))


def test_restart_from_the_snapshot_loses_nothing_and_counts_nothing_twice(settings, tmp_path):
    from engine.runtime.loom import Loom
    from tests.conftest import make_settings
    evs = random_events(1200)

    single = Loom(make_settings(tmp_path / "single"))
    single.init_db()
    single.install(BUNDLES / "surveil")
    expected = run_everything(single, evs)
    single.dispose()
    assert len(expected) > 20

    first = Loom(settings)
    first.init_db()
    first.install(BUNDLES / "surveil")
    svc = service(first)
    activate_all(svc)
    svc.ingest(evs[:500], final=True)
    # a retried task re-sends an already applied batch: the cursor skips it
    with first.db.connect() as conn:
        rows = conn.execute(sa.select(events.c.seq, events.c.ext_id, events.c.kind, events.c.ts, events.c.payload)
                            .order_by(events.c.ts, events.c.seq)).all()
    replayed = svc.apply_partition(RULESET, 0, [(s, e, k, t, str(p["account"]), p) for s, e, k, t, p in rows])
    assert replayed["events"] == 0
    first.dispose()                                        # "crash": the process and its caches are gone

    second = Loom(settings)
    svc2 = service(second)
    svc2.ingest(evs[500:], final=True)
    assert signature(alert_rows(second)) == expected
    second.dispose()


def test_partitioned_run_gives_the_same_alerts_as_a_single_partition(bundle_copy, tmp_path):
    from engine.runtime.loom import Loom
    from tests.conftest import make_settings
    evs = random_events(1000, seed=3)
    results = {}
    for parts in (1, 4):
        bundle = bundle_copy("surveil")
        rewrite_rule(bundle, "surveillance", partitions=parts)
        loom = Loom(make_settings(tmp_path / f"p{parts}"))
        loom.init_db()
        loom.install(bundle)
        results[parts] = run_everything(loom, evs)
        status = service(loom).status()
        loom.dispose()
        if parts == 4:
            assert len([s for s in status if s["partition"] >= 0]) == 4   # work really was split
    assert results[1] == results[4] and len(results[1]) > 20


# -- shadow mode and maker-checker -------------------------------------------------------------------

def test_new_versions_run_in_shadow_until_a_second_person_activates_them(svc, surveil):
    svc.ingest([trade("t1", 0, amount=700000)], final=True)
    shadow = alert_rows(surveil, subject="large_trade")
    assert [(a["mode"], a["case_id"]) for a in shadow] == [("shadow", None)]   # recorded, no case

    with pytest.raises(Forbidden) as info:
        svc.activate("surveil", "large_trade", None, Actor(user_id=None, username="installer"))
    assert info.value.problems[0].code == "maker_checker"

    done = svc.activate("surveil", "large_trade", None, Actor(user_id=None, username="checker"))
    assert (done["status"], done["activated_by"]) == ("active", "checker")
    svc.ingest([trade("t2", 4000, amount=700000)], final=True)
    active = alert_rows(surveil, subject="large_trade", mode="active")
    assert [a["event_id"] for a in active] == ["t2"] and active[0]["case_id"]

    from engine.audit.log import audit_log
    with surveil.db.connect() as conn:
        actions = [r.action for r in conn.execute(sa.select(audit_log.c.action))]
    assert "rule.activate" in actions


def test_a_changed_rule_shadows_its_new_version_beside_the_active_one(surveil, bundle_copy):
    svc = service(surveil)
    activate_all(svc)
    bundle = bundle_copy("surveil")
    rewrite_rule(bundle, "large_trade", params={"limit": 100000})
    surveil.install(bundle, Actor.system("analyst"))
    svc.ingest([trade("t1", 0, amount=200000), trade("t2", 4000, amount=600000)], final=True)
    rows = alert_rows(surveil, subject="large_trade")
    assert {(a["event_id"], a["version"], a["mode"]) for a in rows} == {
        ("t1", 2, "shadow"), ("t2", 1, "active"), ("t2", 2, "shadow")}
    versions = {(v["key"], v["version"]): v["status"] for v in svc.versions("surveil")}
    assert versions[("large_trade", 1)] == "active" and versions[("large_trade", 2)] == "shadow"
    svc.activate("surveil", "large_trade", 2, Actor(user_id=None, username="checker"))
    versions = {(v["key"], v["version"]): v["status"] for v in svc.versions("surveil")}
    assert versions[("large_trade", 1)] == "retired" and versions[("large_trade", 2)] == "active"


# -- alerts, cases, outcomes -------------------------------------------------------------------------

def test_an_alert_explains_itself_and_opens_a_case(svc, surveil):
    activate_all(svc)
    svc.ingest([trade("t1", 0, amount=600000), trade("t2", 10, amount=500000)], final=True)
    a = alert_rows(surveil, subject="daily_volume", mode="active")[0]
    exp = a["explanation"]
    assert a["event_id"] == "t2" and a["gkey"] == "A1"
    assert exp["rules"][0]["features"] == {"vol_1d": 1100000.0, "n_1d": 2}
    assert exp["rules"][0]["thresholds"] == {"limit": 1000000}
    assert exp["rules"][0]["condition"] == "vol_1d >= limit"
    assert exp["evidence"] == ["t1", "t2"]
    assert "account=A1" in exp["summary"]
    case = surveil.records.get("surveil.alert_case", a["case_id"], Actor.system())
    assert (case["alert_id"], case["subject"], case["group_key"], case["status"]) == (a["id"], "daily_volume", "A1", "open")


def test_repeated_alerts_for_the_same_rule_and_key_are_suppressed_within_the_window(svc, surveil):
    activate_all(svc)
    svc.ingest([trade("t1", 0, amount=600000), trade("t2", 60, amount=600000),
                trade("t3", 4000, amount=600000), trade("u1", 61, amount=600000, account="B")], final=True)
    assert [a["event_id"] for a in alert_rows(surveil, subject="large_trade")] == ["t1", "u1", "t3"]
    assert svc.status()[0]["suppressed"] >= 1


def test_case_outcomes_feed_per_rule_precision(svc, surveil):
    activate_all(svc)
    svc.ingest([trade("t1", 0, amount=600000), trade("t2", 0, amount=600000, account="B"),
                trade("t3", 0, amount=600000, account="C")], final=True)
    cases = [a["case_id"] for a in alert_rows(surveil, subject="large_trade")]
    for cid, outcome in zip(cases, ["true_positive", "false_positive", "true_positive"]):
        rec = surveil.records.get("surveil.alert_case", cid, Actor.system())
        surveil.records.update("surveil.alert_case", cid, {"outcome": outcome, "status": "closed"},
                               Actor.system("reviewer"), expected_version=rec["version"])
    stats = {r["key"]: r for r in svc.precision() if r["mode"] == "active"}
    assert (stats["large_trade"]["true_positive"], stats["large_trade"]["false_positive"]) == (2, 1)
    assert stats["large_trade"]["precision"] == pytest.approx(0.6667, abs=1e-4)


def test_reports_export_as_csv_and_xml(svc, surveil):
    import csv
    import io
    import xml.etree.ElementTree as ET
    from engine.rules import export_report
    activate_all(svc)
    svc.ingest([trade("t1", 0, amount=600000)], final=True)
    text, media = export_report(surveil, "large_value", "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert media.startswith("text/csv")
    assert [(r["report_type"], r["rule"], r["group_key"], r["event_id"], r["evidence"]) for r in rows] == [
        ("large_value", "large_trade", "A1", "t1", "t1")]
    xml, _ = export_report(surveil, "large_value", "xml")
    root = ET.fromstring(xml.encode())
    assert root.get("count") == "1" and root.find("alert/event_id").text == "t1"
    with pytest.raises(InvalidInput):
        export_report(surveil, "gossip", "csv")


# -- backtest ---------------------------------------------------------------------------------------

def test_backtest_produces_the_same_alerts_as_streaming(svc, surveil):
    activate_all(svc)
    svc.ingest(random_events(1500, seed=11), final=True)
    streamed = signature(alert_rows(surveil))
    replay = backtest(svc, RULESET, method="replay")
    assert replay.keys() == streamed and len(streamed) > 20


def test_vectorised_backtest_equals_replay_and_streaming(surveil, bundle_copy):
    from engine.rules import service as svc_of
    bundle = bundle_copy("surveil")
    (bundle / "rules" / "many_symbols.yaml").unlink()        # min/max/distinct are replay-only
    surveil.install(bundle)
    svc = svc_of(surveil)
    activate_all(svc)
    svc.ingest(random_events(1500, seed=5), final=True)
    streamed = signature(alert_rows(surveil))
    vec = backtest(svc, RULESET, method="vectorised")
    assert vec.method == "vectorised"
    assert vec.keys() == streamed and len(streamed) > 20
    by_event = {(a["subject"], a["event_id"]): a for a in alert_rows(surveil)}
    for a in vec.alerts:                                      # same explanations, evidence included
        assert a["explanation"]["evidence"] == by_event[(a["subject"], a["event_id"])]["explanation"]["evidence"]


def test_record_events_reach_rules_listening_to_their_entity(surveil, bundle_copy):
    bundle = bundle_copy("surveil")
    (bundle / "rules" / "new_security.yaml").write_text(
        "key: new_security\nlabel: New security\ntrigger: {event: record, entity: surveil.security}\n"
        "condition: _event == 'created'\n", encoding="utf-8")
    with pytest.raises(InvalidInput):
        surveil.install(bundle)                                # names may not start with _
    (bundle / "rules" / "new_security.yaml").write_text(
        "key: new_security\nlabel: New security\ntrigger: {event: record, entity: surveil.security}\n"
        "condition: ref_price is not None and ref_price > 100\n", encoding="utf-8")
    (bundle / "rules" / "surveillance.yaml").write_text(
        (bundle / "rules" / "surveillance.yaml").read_text().replace("group_by: account", "group_by: symbol"))
    surveil.install(bundle)
    svc = service(surveil)
    activate_all(svc)
    surveil.records.create("surveil.security", {"symbol": "688001", "ref_price": "150.00"}, Actor.system())
    svc.process(final=True)
    assert [a["gkey"] for a in alert_rows(surveil, subject="new_security", mode="active")] == ["688001"]


def test_a_case_starts_the_compliance_review_process(svc, surveil):
    if getattr(surveil, "workflow", None) is None:
        pytest.skip("the workflow package is not present")
    activate_all(svc)
    svc.ingest([trade("t1", 0, amount=600000)], final=True)
    case_id = alert_rows(surveil, subject="large_trade", mode="active")[0]["case_id"]
    from engine.workflow.tables import process_instances
    with surveil.db.connect() as conn:
        rows = conn.execute(sa.select(process_instances.c.process_key, process_instances.c.subject_id,
                                      process_instances.c.status)).all()
    assert [(r.process_key, r.subject_id) for r in rows] == [("surveil.review", case_id)]
