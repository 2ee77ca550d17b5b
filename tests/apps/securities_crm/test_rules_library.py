"""Rules of the CRM library that the demo data has no events for (orders and cancels, market
fields, insiders, institutions, cross-border flows), each on a small synthetic stream: the
pattern raises the rule's alert, a near miss does not."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from engine.rules import service as rules_service
from engine.security import Actor
from tests.apps.securities_crm.test_demo import SYSTEM, items
from tests.apps.securities_crm.test_rules_recall import activate_all

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 3, 2, 9, 30, tzinfo=CST)


def at(days=0, seconds=0.0) -> str:
    return (T0 + timedelta(days=days, seconds=seconds)).isoformat()


@pytest.fixture
def svc(crm):
    activate_all(crm)
    return rules_service(crm)


def run(svc, events) -> dict:
    svc.ingest(events, process=False)
    svc.process(final=True)
    out: dict = {}
    for a in svc.list_alerts(mode="active", limit=10000):
        out.setdefault(a["subject"], set()).add(a["gkey"])
    return out


def trade(n, customer, code, side, qty, price, day, sec=0, **extra):
    return {"id": f"t{n}", "kind": "trade", "ts": at(day, sec), "customer": customer, "party": "individual",
            "security_code": code, "side": side, "quantity": qty, "price": price, "amount": qty * price,
            "commission": round(qty * price * 0.00025, 2), "minute": 1000, "dev": 0.0,
            "link_group": customer, "group_size": 1, "counter_linked": False, "insider": False,
            "account_age_days": 1000, **extra}


def transfer(n, customer, direction, amount, day, flow="bank_transfer", party="individual", **extra):
    code = "0501" if flow == "cash" else "0502" if party != "individual" else "0504" if flow == "cross_border" else "0503"
    return {"lv_code": code, "id": f"f{n}", "kind": "transfer", "ts": at(day, n), "customer": customer, "party": party,
            "direction": direction, "flow": flow, "amount": amount, "currency": "CNY",
            "counterparty_account": "6222000011112222", "same_name": True, "link_group": customer,
            "group_size": 1, "account_age_days": 1000, **extra}


def test_frequent_instant_cancels(svc):
    events = []
    for i in range(500):     # 500 orders each cancelled within 0.3 s: flagged
        events.append({"id": f"o{i}", "kind": "order", "ts": at(0, i * 2), "customer": "C1", "security_code": "600000",
                       "amount": 10000})
        events.append({"id": f"c{i}", "kind": "cancel", "ts": at(0, i * 2 + 0.3), "customer": "C1",
                       "security_code": "600000", "amount": 10000, "ms_after_order": 300})
    for i in range(499):     # one short of the threshold: not flagged
        events.append({"id": f"o2{i}", "kind": "order", "ts": at(0, i * 2), "customer": "C2",
                       "security_code": "600000", "amount": 10000})
        events.append({"id": f"c2{i}", "kind": "cancel", "ts": at(0, i * 2 + 0.3), "customer": "C2",
                       "security_code": "600000", "amount": 10000, "ms_after_order": 300})
    alerts = run(svc, events)
    assert alerts.get("frequent_cancels") == {"C1"}


def test_spoofing_large_orders_near_the_touch_cancelled(svc):
    events = []
    for i, (who, n_cancel) in enumerate([("C1", 4), ("C2", 2)]):
        for k in range(4):
            events.append({"id": f"o{who}{k}", "kind": "order", "ts": at(0, 60 * k), "customer": who,
                           "security_code": "000001", "level": 2, "size_pct": 0.3, "amount": 500000})
        for k in range(n_cancel):
            events.append({"id": f"c{who}{k}", "kind": "cancel", "ts": at(0, 60 * k + 20), "customer": who,
                           "security_code": "000001", "level": 2, "size_pct": 0.3, "amount": 500000})
    alerts = run(svc, events)
    assert alerts.get("spoofing") == {"C1"}     # C2 cancelled 50%, below the 80% cancel rate


def test_pump_and_dump(svc):
    events = [trade(1, "C1", "300999", "buy", 10000, 10.0, 0),
              trade(2, "C1", "300999", "buy", 1000, 11.8, 3, vol_ratio_20d=4.2, ret_5d=0.18),
              trade(3, "C1", "300999", "sell", 9000, 12.0, 5),
              # the same trades without a volume surge: an ordinary profitable sale
              trade(4, "C2", "300999", "buy", 10000, 10.0, 0),
              trade(5, "C2", "300999", "buy", 1000, 11.8, 3, vol_ratio_20d=1.2, ret_5d=0.18),
              trade(6, "C2", "300999", "sell", 9000, 12.0, 5)]
    alerts = run(svc, events)
    assert alerts.get("pump_and_dump") == {"C1"}


def test_short_swing_by_an_insider(svc):
    events = [trade(1, "C1", "600036", "buy", 1000, 30.0, 0, insider=True),
              trade(2, "C1", "600036", "sell", 1000, 33.0, 100, insider=True),     # within 6 months
              trade(3, "C2", "600036", "buy", 1000, 30.0, 0, insider=True),
              trade(4, "C2", "600036", "sell", 1000, 33.0, 200, insider=True),     # after 6 months
              trade(5, "C3", "600036", "buy", 1000, 30.0, 0),
              trade(6, "C3", "600036", "sell", 1000, 33.0, 10)]                    # not an insider
    alerts = run(svc, events)
    assert alerts.get("short_swing") == {"C1"}


def test_concentrated_holding_of_a_linked_group(svc):
    g = {"link_group": "G1", "group_size": 2, "float_shares": 1_000_000}
    events = [trade(1, "C1", "002888", "buy", 30000, 20.0, 0, **g),
              trade(2, "C2", "002888", "buy", 25000, 20.0, 1, **g),             # group at 5.5%
              trade(3, "C3", "002888", "buy", 40000, 20.0, 1, float_shares=1_000_000)]  # alone at 4%
    alerts = run(svc, events)
    assert alerts.get("concentrated_holding") == {"G1"}


def test_large_value_institution_and_cross_border(svc):
    events = [transfer(1, "I1", "in", 1_200_000, 0, party="institution"),
              transfer(2, "I1", "in", 900_000, 0, party="institution"),              # 2.1M in a day: 0502
              transfer(3, "I2", "in", 1_900_000, 0, party="institution"),            # below
              transfer(4, "P1", "out", 250_000, 0, flow="cross_border"),             # 0504
              transfer(5, "P2", "out", 150_000, 0, flow="cross_border"),             # below
              transfer(6, "P3", "in", 30_000, 0, flow="cash"),
              transfer(7, "P3", "out", 30_000, 0, flow="cash")]                      # directions apart: no 0501
    alerts = run(svc, events)
    assert alerts.get("lv_0502") == {"I1"}
    assert alerts.get("lv_0504") == {"P1"}
    assert "lv_0501" not in alerts


def test_open_trade_close_quickly(svc):
    events = [trade(1, "C1", "600519", "buy", 800, 1500.0, 0, account_age_days=20),
              transfer(2, "C1", "out", 1_000_000, 30, closed=True, account_age_days=50),
              trade(3, "C2", "600519", "buy", 800, 1500.0, 0, account_age_days=200),
              transfer(4, "C2", "out", 1_000_000, 30, closed=True, account_age_days=230)]
    alerts = run(svc, events)
    assert alerts.get("s5_open_close") == {"C1"}


def test_thresholds_are_parameters_shown_in_the_explanation(svc):
    run(svc, [transfer(1, "P1", "in", 60_000, 0, flow="cash")])
    alert = svc.list_alerts(subject="lv_0501", mode="active")[0]
    text = str(alert["explanation"])
    assert "cny_threshold" in text and "50000" in text and "60000" in text


def test_large_value_thresholds_come_from_the_reference_rows(crm, svc):
    """Lowering the 0504 threshold in the aml_threshold reference data changes what is reported,
    without a new rule version."""
    ent = crm.model.entity("securities_crm.aml_threshold")
    row = next(r for r in items(crm, "aml_threshold") if r["code"] == "0504")
    crm.records.update(ent, row["id"], {"cny_threshold": "100000"}, SYSTEM, expected_version=row["version"])
    alerts = run(svc, [transfer(1, "P1", "out", 150_000, 0, flow="cross_border"),
                       transfer(2, "P2", "out", 90_000, 0, flow="cross_border")])
    assert alerts.get("lv_0504") == {"P1"}
    alert = svc.list_alerts(subject="lv_0504", mode="active")[0]
    assert "100000" in str(alert["explanation"])


def test_adapter_links_accounts_by_identity_mobile_card_or_device():
    from engine.sandbox import compile_script
    from tests.apps.securities_crm.conftest import BUNDLE

    def cust(i, mobile, id_number, kind="individual"):
        return {"id": i, "customer_no": f"C{i}", "customer_type": kind, "mobile": mobile, "id_number": id_number,
                "opened_on": "2020-01-01"}
    customers = [cust(1, "13800000001", "ID1"), cust(2, "13800000002", "ID2"), cust(3, "13800000001", "ID3"),
                 cust(4, "13800000004", "ID4"), cust(5, "13800000005", "ID5"), cust(6, "13800000006", "ID1"),
                 cust(7, "13800000007", "ID7", "institution")]
    accounts = [{"customer": 1, "bank_card": "B1", "device_id": "D1"}, {"customer": 2, "bank_card": "B2", "device_id": "D9"},
                {"customer": 3, "bank_card": "B3", "device_id": "D3"}, {"customer": 4, "bank_card": "B4", "device_id": "D9"},
                {"customer": 5, "bank_card": "B5", "device_id": "D5"}, {"customer": 6, "bank_card": "B6", "device_id": "D6"},
                {"customer": 7, "bank_card": "B7", "device_id": "D7"}]
    sec = [{"account_no": f"A{i}", "customer": i} for i in range(1, 8)]
    trades = [{"trade_no": "T1", "customer": 2, "security_code": "600000", "side": "buy", "quantity": 100,
               "price": "10.00", "amount": "1000.00", "commission": "5", "trade_time": "2026-03-02T06:55:00+00:00",
               "counter_account": "A4"},
              {"trade_no": "T2", "customer": 5, "security_code": "600000", "side": "sell", "quantity": 100,
               "price": "10.00", "amount": "1000.00", "commission": "5", "trade_time": "2026-03-02T02:00:00+00:00",
               "counter_account": "A1"}]
    transfers = [{"transfer_no": "F1", "customer": 7, "direction": "in", "kind": "bank_transfer", "amount": "10",
                  "transfer_time": "2026-03-02T02:00:00+00:00", "same_name": True},
                 {"transfer_no": "F2", "customer": 5, "direction": "out", "kind": "cross_border", "amount": "10",
                  "transfer_time": "2026-03-02T02:00:00+00:00", "same_name": False},
                 {"transfer_no": "F3", "customer": 6, "direction": "in", "kind": "cash", "amount": "10",
                  "transfer_time": "2026-03-02T02:00:00+00:00", "same_name": True}]
    src = (BUNDLE / "scripts" / "analytics_rule_events.py").read_text("utf-8")
    events = compile_script(src).execute({"customers": customers, "capital_accounts": accounts,
                                          "securities_accounts": sec, "relationships": [], "trades": trades,
                                          "transfers": transfers})["result"]
    by_id = {e["id"]: e for e in events}
    t1, t2 = by_id["trade:T1"], by_id["trade:T2"]
    # 2 and 4 share a device: one group; 1, 3 (mobile) and 6 (identity number) another; 5 alone
    assert t1["link_group"] == "GC2" and t1["group_size"] == 2 and t1["counter_linked"] is True
    assert t2["link_group"] == "C5" and t2["group_size"] == 1 and t2["counter_linked"] is False
    assert t1["minute"] == 1455 and t2["minute"] == 1000           # local time, +08:00
    assert t1["account_age_days"] == (date(2026, 3, 2) - date(2020, 1, 1)).days
    assert by_id["transfer:F1"]["lv_code"] == "0502" and by_id["transfer:F2"]["lv_code"] == "0504"
    assert by_id["transfer:F2"]["flow"] == "cross_border" and by_id["transfer:F2"]["same_name"] is False
    f3 = by_id["transfer:F3"]
    assert (f3["link_group"], f3["group_size"], f3["lv_code"]) == ("GC1", 3, "0501")
