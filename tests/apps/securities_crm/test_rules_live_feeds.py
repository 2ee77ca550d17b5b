"""Records reach the rules live with the fields the batch adapter joins: a trade between two linked
accounts raises the wash-trade alert of the `linked` rule set as it is saved, 0503 reads its
threshold from the aml_threshold reference row, and a bulk import feeds the rules like saves do."""
from __future__ import annotations

import sqlalchemy as sa

from engine.rules import service as rules_service
from engine.rules.tables import events as events_table
from tests.apps.securities_crm.test_processes import APP, SYSTEM, _customer, world  # noqa: F401
from tests.apps.securities_crm.test_rules_live import _account, _feed, _post_transfer
from tests.apps.securities_crm.test_rules_recall import activate_all, rule_events

JOINED = ("customer", "party", "link_group", "group_size", "counter_linked", "minute", "account_age_days", "insider",
          "quantity", "price", "amount", "commission", "security_code", "side", "lv_code", "flow", "direction")


def _sec_account(lm, customer_id, capital_id, no):
    return lm.records.create(f"{APP}.securities_account", {
        "account_no": no, "customer": customer_id, "capital_account": capital_id, "market": "SH",
        "status": "active", "opened_on": "2020-01-02"}, SYSTEM)["id"]


def _trade(feed, no, customer_id, sec_id, side, qty, price, when, **extra):
    r = feed.post(f"/api/v1/{APP}/trade", json={
        "trade_no": no, "customer": customer_id, "securities_account": sec_id, "security_code": "600519",
        "side": side, "quantity": qty, "price": price, "commission": "15.00", "trade_time": when, **extra})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def _stored(lm, ext_id) -> dict:
    with lm.db.connect() as conn:
        return conn.execute(sa.select(events_table.c.payload).where(events_table.c.ext_id == ext_id)).scalar_one()


def _linked_pair(lm, world):
    """Two customers who share a mobile number, each with a capital and a securities account."""
    a = _customer(lm, world, "LK000301", mobile="13900000301", opened_on="2021-03-01")
    b = _customer(lm, world, "LK000302", mobile="13900000301", opened_on="2022-03-01")
    lone = _customer(lm, world, "LK000303", mobile="13900000303", opened_on="2021-03-01")
    accounts = {}
    for cid, n in ((a, "301"), (b, "302"), (lone, "303")):
        cap = _account(lm, cid, f"CA00000{n}")
        accounts[cid] = (cap, _sec_account(lm, cid, cap, f"A000000{n}"))
    return a, b, lone, accounts


def test_live_events_carry_the_same_fields_as_the_batch_adapter(world):
    lm = world["loom"]
    a, b, lone, accounts = _linked_pair(lm, world)
    feed = _feed(world)
    _trade(feed, "TLIVE0301", a, accounts[a][1], "buy", 1000, "10.50", "2026-12-03T14:55:00+08:00",
           counter_account="A000000302")
    _trade(feed, "TLIVE0303", lone, accounts[lone][1], "sell", 200, "11.00", "2026-12-03T10:00:00+08:00")
    _post_transfer(feed, "FLIVE0301", b, accounts[b][0], "1000.00", "2026-12-03T09:00:00+08:00", kind="cash")

    batch = {e["id"]: e for e in rule_events(lm)}
    for ext in ("trade:TLIVE0301", "trade:TLIVE0303", "transfer:FLIVE0301"):
        live = _stored(lm, ext)
        want = {k: batch[ext][k] for k in JOINED if k in batch[ext]}
        assert {k: live.get(k) for k in want} == want, ext
    trade = _stored(lm, "trade:TLIVE0301")
    assert trade["link_group"] == "GLK000301" and trade["group_size"] == 2 and trade["counter_linked"] is True
    assert trade["minute"] == 1455 and trade["account_age_days"] > 2000
    assert _stored(lm, "trade:TLIVE0303")["link_group"] == "LK000303"
    assert _stored(lm, "transfer:FLIVE0301")["lv_code"] == "0501"


def test_a_wash_trade_between_linked_accounts_is_caught_as_it_is_saved(world):
    lm = world["loom"]
    activate_all(lm)
    a, b, lone, accounts = _linked_pair(lm, world)
    feed = _feed(world)
    # 300,000 shares each way between the two linked accounts; the unlinked one trades the same size
    _trade(feed, "TWASH0001", a, accounts[a][1], "buy", 300000, "10.00", "2026-12-04T10:00:00+08:00",
           counter_account="A000000302")
    _trade(feed, "TWASH0002", b, accounts[b][1], "sell", 300000, "10.00", "2026-12-04T10:00:00+08:00",
           counter_account="A000000301")
    _trade(feed, "TWASH0003", lone, accounts[lone][1], "buy", 300000, "10.00", "2026-12-04T10:01:00+08:00")
    _trade(feed, "TWASH0004", lone, accounts[lone][1], "sell", 1, "10.00", "2026-12-04T11:00:00+08:00")  # watermark
    alerts = rules_service(lm).list_alerts(subject="wash_trade", mode="active")
    assert [(x["gkey"], x["event_id"]) for x in alerts] == [("GLK000301", "trade:TWASH0001")]
    exp = alerts[0]["explanation"]
    assert exp["group"] == {"link_group": "GLK000301"} and exp["rules"][0]["thresholds"]["min_shares"] == 300000
    assert alerts[0]["case_id"]                                   # a compliance case, as in the stream


def test_0503_reads_the_threshold_from_the_reference_row_live(world):
    lm = world["loom"]
    activate_all(lm)
    row = next(r for r in lm.query.list(lm.records.entity(f"{APP}.aml_threshold"), SYSTEM,
                                        _list({"code": "0503"}))["items"])
    lm.records.update(f"{APP}.aml_threshold", row["id"], {"cny_threshold": "400000"}, SYSTEM,
                      expected_version=row["version"])
    cid = _customer(lm, world, "LV000401")
    acc = _account(lm, cid, "CA00000401")
    feed = _feed(world)
    _post_transfer(feed, "FLIVE0401", cid, acc, "450000.00", "2026-12-05T10:00:00+08:00")
    _post_transfer(feed, "FLIVE0402", cid, acc, "1.00", "2026-12-05T11:00:00+08:00")   # moves the watermark
    alerts = rules_service(lm).list_alerts(subject="lv_0503", mode="active")
    assert [x["event_id"] for x in alerts] == ["transfer:FLIVE0401"]     # 450,000: under the 500,000 parameter
    assert alerts[0]["explanation"]["rules"][0]["features"]["threshold"] == 400000


def test_a_bulk_import_feeds_the_rules_like_saved_records(world):
    lm = world["loom"]
    activate_all(lm)
    cid = _customer(lm, world, "LV000501")
    acc = _account(lm, cid, "CA00000501")
    rows = [(i + 2, {"transfer_no": f"FIMP050{i}", "customer": cid, "capital_account": acc, "direction": "in",
                     "kind": "bank_transfer", "amount": amount, "transfer_time": when})
            for i, (amount, when) in enumerate([("300000.00", "2026-12-06T10:00:00+08:00"),
                                                ("250000.00", "2026-12-06T10:30:00+08:00"),
                                                ("1.00", "2026-12-06T12:00:00+08:00")])]
    result = lm.records.import_rows(f"{APP}.transfer", rows, SYSTEM)
    assert result.inserted == 3
    assert _stored(lm, "transfer:FIMP0501")["lv_code"] == "0503"
    svc = rules_service(lm)
    assert svc.list_alerts(subject="lv_0503", mode="active") == []     # stored; the next tick evaluates
    lm.extensions["rules"].tick()
    alerts = svc.list_alerts(subject="lv_0503", mode="active")
    assert [(x["gkey"], x["event_id"]) for x in alerts] == [("LV000501", "transfer:FIMP0501")]
    assert alerts[0]["explanation"]["rules"][0]["features"]["dom_1d"] == 550000


def _list(params):
    from engine.records.query import ListRequest
    return ListRequest.from_params(params)


def test_an_enrichment_script_that_is_not_in_the_bundle_is_refused(tmp_path):
    import shutil

    from engine.meta.bundle import read_bundle
    from engine.rules.extension import install_check
    from tests.apps.securities_crm.conftest import BUNDLE
    dest = tmp_path / "crm"
    shutil.copytree(BUNDLE, dest)
    path = dest / "rules" / "monitor.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("enrich: rule_event_fields\n", "enrich: joins\n", 1),
                    encoding="utf-8")
    problems = install_check(read_bundle(dest), None)
    assert [(p.path, p.file.endswith("monitor.yaml")) for p in problems] == [("records/0/enrich", True)]
    assert "scripts/joins.py" in problems[0].message


def test_a_failing_enrichment_loses_no_event(world, monkeypatch):
    """The script breaks: the transfer still becomes an event (without the joined fields)."""
    lm = world["loom"]
    svc = rules_service(lm)
    monkeypatch.setattr(svc, "_script", lambda app, key: (_ for _ in ()).throw(ValueError("broken on purpose")))
    cid = _customer(lm, world, "LV000601")
    acc = _account(lm, cid, "CA00000601")
    _post_transfer(_feed(world), "FLIVE0601", cid, acc, "10.00", "2026-12-07T10:00:00+08:00")
    stored = _stored(lm, "transfer:FLIVE0601")
    assert stored["customer"] == "LV000601" and "lv_code" not in stored
