"""Transfers and trades saved through the REST API reach the monitoring rules live: a natural
person's large domestic transfer (0503, >= 500,000 CNY a day) raises an explained alert that opens
a compliance case, with the same event id a batch load of the same record would use."""
from __future__ import annotations

import sqlalchemy as sa

from engine.rules import service as rules_service
from engine.security.users import create_user, issue_token
from tests.apps.securities_crm.test_processes import (APP, SYSTEM, Client, _customer, find, group_tasks,  # noqa: F401
                                                      task_of, world)
from tests.apps.securities_crm.test_rules_recall import activate_all


def _feed(world):
    """The core-system feed: an integration login that posts trades and transfers as they happen."""
    from engine.runtime.app import create_app
    lm = world["loom"]
    with lm.db.begin() as conn:
        uid = create_user(conn, "feed", None, is_admin=True, locale="en")
        token = issue_token(conn, uid, "core feed")
    return Client(create_app(lm, {"TESTING": True}).test_client(), token)


def _account(lm, customer_id, no):
    return lm.records.create(f"{APP}.capital_account", {"account_no": no, "customer": customer_id,
                                                        "opened_on": "2020-01-02"}, SYSTEM)["id"]


def _post_transfer(feed, no, customer_id, account_id, amount, when, **extra):
    r = feed.post(f"/api/v1/{APP}/transfer", json={
        "transfer_no": no, "customer": customer_id, "capital_account": account_id, "direction": "in",
        "kind": "bank_transfer", "amount": str(amount), "transfer_time": when, **extra})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def test_a_large_transfer_posted_through_the_api_opens_an_explained_case(world):
    lm = world["loom"]
    activate_all(lm)                       # maker-checker: a second person activates the library
    big = _customer(lm, world, "LV000101")
    small = _customer(lm, world, "LV000102")
    acc_big, acc_small = _account(lm, big, "CA00000101"), _account(lm, small, "CA00000102")
    feed = _feed(world)
    _post_transfer(feed, "FLIVE0001", big, acc_big, "300000.00", "2026-12-01T10:00:00+08:00")
    _post_transfer(feed, "FLIVE0002", big, acc_big, "250000.00", "2026-12-01T10:20:00+08:00")
    _post_transfer(feed, "FLIVE0003", small, acc_small, "499999.00", "2026-12-01T10:25:00+08:00")
    # the stream waits out the rule set's 300 s out-of-order tolerance: a later event moves it on
    _post_transfer(feed, "FLIVE0004", small, acc_small, "1.00", "2026-12-01T11:00:00+08:00")

    svc = rules_service(lm)
    alerts = [a for a in svc.list_alerts(mode="active") if a["subject"] == "lv_0503"]
    assert [a["gkey"] for a in alerts] == ["LV000101"]    # 550,000 in a day; 499,999 is below the line
    alert = alerts[0]
    exp = alert["explanation"]
    rule = exp["rules"][0]
    assert rule["rule"] == "lv_0503"
    assert rule["features"]["dom_1d"] == 550000
    assert rule["thresholds"]["cny_threshold"] == 500000
    assert "dom_1d >=" in rule["condition"]
    assert exp["event"]["id"] == "transfer:FLIVE0002"        # the batch adapter's id for the same record
    assert {"transfer:FLIVE0001", "transfer:FLIVE0002"} <= set(exp["evidence"])

    # the alert opened a case the compliance officer sees
    assert alert["case_id"]
    cases = world["clients"]["comp"].get(f"/api/v1/{APP}/case/{alert['case_id']}")
    assert cases.status_code == 200, cases.get_json()
    case = cases.get_json()
    assert case["status"] == "open" and case["case_type"] == "aml"
    assert "lv_0503" in case["title"] and case["case_no"] and case["opened_at"]
    # ... and its review waits in the compliance group inbox, not in an advisor's
    task = task_of(world["clients"]["comp"], "cr_review")
    assert task["role"] == f"{APP}.compliance" and task["form"] == f"{APP}.case_form"
    assert len([t for t in group_tasks(world["clients"]["comp"]) if t["bpmn_id"] == "cr_review"]) == 1
    assert not [t for t in group_tasks(world["clients"]["adv"]) if t["bpmn_id"] == "cr_review"]

    # saving the record again (an update) does not count it twice; a batch resend is a duplicate
    from engine.rules.tables import events
    with lm.db.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(events).where(
            events.c.ext_id.like("transfer:FLIVE%"))).scalar()
    assert n == 4
    again = svc.ingest([{"id": "transfer:FLIVE0002", "kind": "transfer", "ts": "2026-12-01T10:20:00+08:00",
                         "customer": "LV000101", "party": "individual", "flow": "bank_transfer",
                         "direction": "in", "amount": 250000}])
    assert again["duplicates"] == 1 and again["accepted"] == 0


def test_transfers_before_activation_only_raise_shadow_alerts(world):
    lm = world["loom"]
    big = _customer(lm, world, "LV000201")
    acc = _account(lm, big, "CA00000201")
    feed = _feed(world)
    first = _post_transfer(feed, "FLIVE0101", big, acc, "600000.00", "2026-12-02T10:00:00+08:00")
    out = _post_transfer(feed, "FLIVE0102", big, acc, "1.00", "2026-12-02T11:00:00+08:00", direction="out")
    assert float(first["signed_amount"]) == 600000 and float(out["signed_amount"]) == -1   # net inflow
    res = lm.extensions["reports"].reports.run("fund_flows", SYSTEM, {"start_date": "2026-12-01", "end_date": "2026-12-31"}, app=APP)
    assert float(res["totals"]["net_inflow"]) == 599999
    svc = rules_service(lm)
    assert [a["gkey"] for a in svc.list_alerts(subject="lv_0503", mode="shadow")] == ["LV000201"]
    assert svc.list_alerts(subject="lv_0503", mode="active") == []
    assert find(lm, "case") == []
    assert not [t for t in group_tasks(world["clients"]["comp"]) if t["bpmn_id"] == "cr_review"]


def test_record_sources_are_checked_at_install(tmp_path):
    """A rule set that maps a field the entity does not have is refused, naming the file and path."""
    import shutil

    from engine.meta.bundle import read_bundle
    from engine.rules.extension import install_check
    from tests.apps.securities_crm.conftest import BUNDLE
    dest = tmp_path / "crm"
    shutil.copytree(BUNDLE, dest)
    path = dest / "rules" / "monitor.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("customer.customer_no", "customer.customer_number")
                    .replace("ts: trade_time", "ts: traded_at"), encoding="utf-8")
    problems = install_check(read_bundle(dest), None)
    where = sorted((p.path, p.file) for p in problems)
    assert [w[0] for w in where] == ["records/0/fields/customer", "records/1/fields/customer", "records/1/ts"]
    assert all(w[1] and w[1].endswith("monitor.yaml") for w in where)
    assert install_check(read_bundle(BUNDLE), None) == []
