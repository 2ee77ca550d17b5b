"""Campaigns end to end through the API and the record service (workflows/campaigns.bpmn):
a segment built from filters, the suitability filter excluding unsuitable and lowest-category
customers with the reason, launch queueing one outbox message per member and channel (and nothing
twice), interactions marking responses, and AUM uplift from AUM and holdings changes.

The campaign steps run on the scheduler one second after the save that triggers them (as the
bundle's other automations), so the scenarios move a frozen clock on and tick.
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from engine.security import Actor
from engine.security.users import create_user, issue_token
from engine.workflow.tables import outbox
from tests.apps.securities_crm.conftest import BUNDLE
from tests.apps.securities_crm.test_processes import Client, Clock, find, valid_id_number

APP = "securities_crm"
SYSTEM = Actor.system("tests")
T0 = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)


@pytest.fixture
def world(crm):
    """Two branches, the campaign products and seven customers with known profiles; an HQ API client."""
    from engine.runtime.app import create_app
    lm = crm
    bj = find(lm, "branch", {"code": "BJ01"})[0]["id"]
    sh = find(lm, "branch", {"code": "SH01"})[0]["id"]
    etf = find(lm, "product", {"code": "510300"})[0]                # R3, long, equity
    mmf = find(lm, "product", {"code": "511990"})[0]                # R1, short, cash
    app = create_app(lm, {"TESTING": True})
    with lm.db.begin() as conn:
        uid = create_user(conn, "hq", "secret-pass-1", roles=[f"{APP}.hq_manager"], locale="zh-CN")
        client = Client(app.test_client(), issue_token(conn, uid, "tests"))
    people = {
        # name: (branch, risk level, lowest category, aum, assessment expiry, status)
        "a_c4": (bj, "C4", False, "200000.00", "2028-06-30", "active"),
        "b_c5": (bj, "C5", False, "80000.00", "2028-06-30", "active"),
        "c_c2": (bj, "C2", False, "150000.00", "2028-06-30", "active"),
        "d_c1l": (bj, "C1", True, "100000.00", "2028-06-30", "active"),
        "e_small": (bj, "C4", False, "10000.00", "2028-06-30", "active"),
        "f_other_branch": (sh, "C4", False, "300000.00", "2028-06-30", "active"),
        "g_expired": (bj, "C3", False, "60000.00", "2025-01-01", "active"),
    }
    customers = {}
    for i, (name, (branch, level, lowest, aum, expiry, status)) in enumerate(people.items()):
        customers[name] = lm.records.create(f"{APP}.customer", {
            "customer_no": f"C8{i:05d}", "name": name, "customer_type": "individual", "investor_class": "ordinary",
            "id_number": valid_id_number(f"198{i}-01-0{i + 1}"), "risk_level": level, "lowest_category": lowest,
            "assessment_date": "2024-12-01" if expiry < "2026" else "2026-06-30", "assessment_expiry": expiry,
            "horizon": "long", "varieties": ["equity", "fixed_income"], "branch": branch, "aum": aum,
            "status": status, "mobile": f"1380013{i:04d}"}, SYSTEM)["id"]
    return {"loom": lm, "client": client, "bj": bj, "sh": sh, "etf": etf, "mmf": mmf, "customers": customers}


def members_of(lm, campaign_id) -> dict:
    """{customer name: member} of a campaign."""
    names = {c["id"]: c["name"] for c in find(lm, "customer")}
    return {names[m["customer"]]: m for m in find(lm, "campaign_member", {"campaign": campaign_id, "page_size": 500})}


def campaign_outbox(lm, campaign_id) -> list:
    with lm.db.connect() as conn:
        rows = conn.execute(sa.select(outbox.c.channel, outbox.c.payload, outbox.c.idempotency_key)
                            .where(outbox.c.idempotency_key.like(f"campaign:{campaign_id}:%"))).all()
    return [(r.channel, r.payload, r.idempotency_key) for r in rows]


def new_campaign(world, clock, **data):
    body = {"code": "MKT-T1", "name": "沪深300ETF推广", "objective": "product_sales", "product": world["etf"]["id"],
            "channels": ["sms", "app"], "segment": {"branch": world["bj"], "aum__gte": 50000},
            "content": "定投沪深300ETF", "status": "draft"}
    body.update(data)
    r = world["client"].post(f"/api/v1/{APP}/campaign", json=body)
    assert r.status_code == 201, r.get_json()
    clock.tick()
    return r.get_json()


def set_status(world, clock, campaign_id, status):
    c = world["client"]
    rec = c.get(f"/api/v1/{APP}/campaign/{campaign_id}").get_json()
    r = c.open("PATCH", f"/api/v1/{APP}/campaign/{campaign_id}", json={"status": status, "version": rec["version"]})
    assert r.status_code == 200, r.get_json()
    clock.tick()
    return world["loom"].records.get(f"{APP}.campaign", campaign_id, SYSTEM)


# -- the segment and the suitability filter ----------------------------------------------------------

def test_segment_from_filters_excludes_unsuitable_and_lowest_category_with_the_reason(world):
    lm = world["loom"]
    with Clock(lm, T0) as clock:
        camp = new_campaign(world, clock)
    members = members_of(lm, camp["id"])
    # branch BJ01 and AUM >= 50,000: not the small account, not the other branch
    assert set(members) == {"a_c4", "b_c5", "c_c2", "d_c1l", "g_expired"}
    assert {n: m["status"] for n, m in members.items()} == {
        "a_c4": "queued", "b_c5": "queued", "c_c2": "excluded", "d_c1l": "excluded", "g_expired": "excluded"}
    assert members["c_c2"]["excluded_reason"] == "risk_mismatch"           # C2 x R3 is not `allow` in the matrix
    assert members["d_c1l"]["excluded_reason"] == "lowest_category"        # never above R1
    assert members["g_expired"]["excluded_reason"] == "assessment_expired"
    assert members["d_c1l"]["customer_level"] == "C1L" and members["d_c1l"]["product_rating"] == "R3"
    assert any(r["code"] == "lowest_category" and "R1" in r["message"]["zh-CN"] for r in members["d_c1l"]["reasons"])
    assert members["a_c4"]["aum_at_start"] == "200000.00" and not members["a_c4"]["reasons"]
    camp = lm.records.get(f"{APP}.campaign", camp["id"], SYSTEM)
    assert (camp["targeted"], camp["excluded"], camp["sent"]) == (5, 3, 0)
    assert camp["segment_built_at"] is not None
    # building is not sending
    assert campaign_outbox(lm, camp["id"]) == []


def test_the_lowest_category_gets_r1_but_nothing_above(world):
    lm = world["loom"]
    with Clock(lm, T0) as clock:
        r1 = new_campaign(world, clock, code="MKT-R1", product=world["mmf"]["id"], segment={"risk_level": "C1"})
        # the same R1 product under an R2 ceiling: the campaign promotes up to R2, so the lowest category is out
        r2 = new_campaign(world, clock, code="MKT-R2", product=world["mmf"]["id"], max_product_rating="R2",
                          segment={"risk_level": "C1"})
    assert members_of(lm, r1["id"])["d_c1l"]["status"] == "queued"
    excluded = members_of(lm, r2["id"])["d_c1l"]
    assert excluded["status"] == "excluded" and excluded["excluded_reason"] == "lowest_category"
    assert excluded["product_rating"] == "R2"


def test_the_filter_follows_the_suitability_matrix_in_reference_data(world):
    lm = world["loom"]
    rule = find(lm, "suitability_rule", {"code": "C2-R3"})[0]
    lm.records.update(f"{APP}.suitability_rule", rule["id"], {"decision": "allow"}, SYSTEM)
    with Clock(lm, T0) as clock:
        camp = new_campaign(world, clock)
    members = members_of(lm, camp["id"])
    assert members["c_c2"]["status"] == "queued"                  # compliance allowed C2 x R3
    assert members["d_c1l"]["excluded_reason"] == "lowest_category"


def test_changing_the_segment_rebuilds_without_duplicates(world):
    lm = world["loom"]
    with Clock(lm, T0) as clock:
        camp = new_campaign(world, clock)
        c = world["client"]
        rec = c.get(f"/api/v1/{APP}/campaign/{camp['id']}").get_json()
        r = c.open("PATCH", f"/api/v1/{APP}/campaign/{camp['id']}",
                   json={"segment": {"branch": world["bj"], "aum__gte": 100000}, "version": rec["version"]})
        assert r.status_code == 200, r.get_json()
        clock.tick()
    members = members_of(lm, camp["id"])
    # b_c5 (80,000) and g_expired (60,000) left the segment: kept as history, marked dropped, not duplicated
    assert len(find(lm, "campaign_member", {"campaign": camp["id"]})) == 5
    assert members["b_c5"]["status"] == "dropped" and members["g_expired"]["status"] == "dropped"
    assert members["a_c4"]["status"] == "queued"
    camp = lm.records.get(f"{APP}.campaign", camp["id"], SYSTEM)
    assert (camp["targeted"], camp["excluded"]) == (3, 2)


def test_a_running_campaign_needs_channels_and_a_segment(world):
    r = world["client"].post(f"/api/v1/{APP}/campaign", json={
        "code": "MKT-BAD", "name": "x", "status": "running", "channels": [], "segment": None})
    assert r.status_code == 422
    assert {"channels", "segment"} <= {p.get("field") for p in r.get_json()["errors"]}
    assert find(world["loom"], "campaign", {"code": "MKT-BAD"}) == []


# -- launch through the outbox ------------------------------------------------------------------------

def test_launch_queues_one_message_per_member_and_channel_and_never_twice(world):
    lm = world["loom"]
    with Clock(lm, T0) as clock:
        camp = new_campaign(world, clock)
        after = set_status(world, clock, camp["id"], "running")
        sent = campaign_outbox(lm, camp["id"])
        # a_c4 and b_c5 are suitable; two channels each; the excluded get nothing
        a, b = world["customers"]["a_c4"], world["customers"]["b_c5"]
        assert sorted((ch, p["customer"]) for ch, p, _k in sent) == sorted(
            [("sms", a), ("app", a), ("sms", b), ("app", b)])
        assert {k for _c, _p, k in sent} == {f"campaign:{camp['id']}:customer:{cid}:{ch}" for cid in (a, b)
                                               for ch in ("sms", "app")}
        assert all(p["template"] == "campaign" and p["content"] == "定投沪深300ETF" for _c, p, _k in sent)
        members = members_of(lm, camp["id"])
        assert members["a_c4"]["status"] == "sent" and members["a_c4"]["channels"] == ["sms", "app"]
        assert members["c_c2"]["status"] == "excluded"
        assert (after["sent"], after["targeted"], after["excluded"]) == (2, 5, 3) and after["launched_at"]
        # launched again (paused, resumed): nothing is sent twice
        set_status(world, clock, camp["id"], "approved")
        set_status(world, clock, camp["id"], "running")
        assert len(campaign_outbox(lm, camp["id"])) == 4
        # the launch runs by itself: a person cannot start it by hand
        r = world["client"].post(f"/api/v1/processes/{APP}.campaign_launch/start", json={"data": {"campaign_id": camp["id"]}})
        assert r.status_code == 403
        # a customer who qualifies later is reached on the next launch -- only them
        lm.records.update(f"{APP}.customer", world["customers"]["e_small"], {"aum": "90000.00"}, SYSTEM)
        set_status(world, clock, camp["id"], "approved")
        set_status(world, clock, camp["id"], "running")
    again = campaign_outbox(lm, camp["id"])
    assert len(again) == 6
    assert {p["customer"] for _c, p, _k in again} - {a, b} == {world["customers"]["e_small"]}
    assert lm.records.get(f"{APP}.campaign", camp["id"], SYSTEM)["sent"] == 3


# -- responses and AUM uplift ------------------------------------------------------------------------

def test_interactions_mark_responses_and_aum_uplift_follows_aum_and_holdings(world):
    lm, c = world["loom"], world["client"]
    a, b, cc = world["customers"]["a_c4"], world["customers"]["b_c5"], world["customers"]["c_c2"]
    with Clock(lm, T0) as clock:
        camp = new_campaign(world, clock)
        set_status(world, clock, camp["id"], "running")
        # a_c4 answers the campaign call; c_c2 (excluded, never contacted) calls about it too
        for cid in (a, cc):
            r = c.post(f"/api/v1/{APP}/interaction", json={
                "customer": cid, "campaign": camp["id"], "kind": "call", "purpose": "marketing",
                "occurred_at": "2026-12-02T03:00:00Z", "subject": "咨询沪深300ETF", "outcome": "interested"})
            assert r.status_code == 201, r.get_json()
        clock.tick()
        members = members_of(lm, camp["id"])
        assert members["a_c4"]["status"] == "responded"
        assert members["a_c4"]["responded_at"].startswith("2026-12-02T03:00")
        assert members["a_c4"]["response_interaction"] is not None
        assert members["b_c5"]["status"] == "sent"
        assert members["c_c2"]["status"] == "excluded" and members["c_c2"]["responded_at"] is None
        camp_now = lm.records.get(f"{APP}.campaign", camp["id"], SYSTEM)
        assert (camp_now["sent"], camp_now["responded"]) == (2, 1)
        assert Decimal(camp_now["response_rate"]) == Decimal("50")
        # a_c4 brings in 60,000; b_c5 buys 1,000 units of the ETF at 4.00 (AUM not yet changed by the test)
        lm.records.update(f"{APP}.customer", a, {"aum": "260000.00"}, SYSTEM)
        lm.records.create(f"{APP}.holding", {"customer": b, "product": world["etf"]["id"], "security_code": "510300",
                                             "quantity": "1000", "cost_price": "4.0000", "market_price": "4.0000",
                                             "as_of": "2026-12-03"}, SYSTEM)
        r = c.post(f"/api/v1/processes/{APP}.campaign_refresh/start", json={"data": {"campaign_id": camp["id"]}})
        assert r.status_code == 201, r.get_json()
        clock.tick()
        refreshed = lm.records.get(f"{APP}.campaign", camp["id"], SYSTEM)
        assert (Decimal(refreshed["aum_uplift"]), refreshed["converted"]) == (Decimal("60000"), 1)
        # finishing the campaign takes the final count: b_c5 has since brought in 10,000 more
        lm.records.update(f"{APP}.customer", b, {"aum": "90000.00"}, SYSTEM)
        set_status(world, clock, camp["id"], "finished")
    members = members_of(lm, camp["id"])
    assert members["a_c4"]["aum_now"] == "260000.00" and Decimal(members["a_c4"]["aum_uplift"]) == Decimal("60000")
    assert members["b_c5"]["status"] == "converted" and members["b_c5"]["product_value_now"] == "4000.00"
    assert Decimal(members["b_c5"]["aum_uplift"]) == Decimal("10000")
    camp_now = lm.records.get(f"{APP}.campaign", camp["id"], SYSTEM)
    assert Decimal(camp_now["aum_uplift"]) == Decimal("70000") and Decimal(camp_now["aum_at_start"]) == Decimal("280000")
    assert (camp_now["sent"], camp_now["responded"], camp_now["converted"]) == (2, 2, 1)
    # the report agrees with the campaign's totals
    res = lm.extensions["reports"].reports.run("campaign_results", SYSTEM, {"campaign": camp["id"]}, app=APP)
    row = [r for r in res["rows"] if not r.get("_total") and not r.get("total")][0]
    assert int(row["targeted"]) == 5 and int(row["excluded"]) == 3 and int(row["sent"]) == 2
    assert int(row["responded"]) == 2 and int(row["converted"]) == 1
    assert Decimal(str(row["aum_uplift"])) == Decimal("70000") and Decimal(str(row["aum_at_start"])) == Decimal("280000")
    assert Decimal(str(row["response_rate"])) == Decimal("1")


def test_the_campaign_page_shows_members_and_results_in_both_languages(world):
    lm = world["loom"]
    with Clock(lm, T0) as clock:
        camp = new_campaign(world, clock)
    from engine.runtime.app import create_app
    from tests.runtime.test_screens import FormClient
    for lang, results, members, reason in (("zh-CN", "活动效果", "目标客户", "C1最低类别（仅限R1）"),
                                           ("en", "Results", "Members", "Lowest category (R1 only)")):
        with lm.db.begin() as conn:
            create_user(conn, f"hq-{lang}", "secret-pass-1", roles=[f"{APP}.hq_manager"], locale=lang)
        web = FormClient(create_app(lm, {"TESTING": True}).test_client())
        assert web.post("/login", data={"username": f"hq-{lang}", "password": "secret-pass-1"}).status_code == 302
        page = web.get(f"/r/{APP}/campaign/{camp['id']}").get_data(as_text=True)
        assert f'lang="{lang}"' in page
        assert 'id="panel-results"' in page and 'id="panel-members"' in page
        assert results in page and members in page and reason in page, lang


# -- the scripts alone, in the sandbox, with the bundle's reference data --------------------------------

def _targeting():
    """scripts/suitability_match.py (without its entry line) + scripts/campaign_targeting.py, as the BPMN runs them."""
    from engine.sandbox import compile_script
    match = (BUNDLE / "scripts" / "suitability_match.py").read_text("utf-8").rstrip().rsplit("\n", 1)[0]
    return compile_script(match + "\n" + (BUNDLE / "scripts" / "campaign_targeting.py").read_text("utf-8"),
                          "securities_crm.campaign_targeting")


def _plan(mode, customers, members=(), product=None, **campaign):
    import yaml
    fixtures = lambda name: yaml.safe_load((BUNDLE / "fixtures" / name).read_text("utf-8"))["records"]  # noqa: E731
    params = {r["code"]: r["value"] for r in fixtures("parameters.yaml")}
    camp = {"id": 9, "code": "T", "channels": ["sms", "email"], "content": "hi", "max_product_rating": None, "product": None}
    camp.update(campaign)
    return _targeting().execute({
        "mode": mode, "campaign": camp, "product": product, "customers": list(customers), "members": list(members),
        "holdings": {}, "matrix": fixtures("suitability_matrix.yaml"),
        "params": {k: params[k] for k in ("expired_assessment_max_rating", "lowest_category_max_rating")},
        "today": "2026-11-20", "now": "2026-11-20T02:00:00+00:00"})["result"]


def _customer(cid, level="C3", **kw):
    base = {"id": cid, "status": "active", "investor_class": "ordinary", "risk_level": level, "lowest_category": False,
            "assessment_expiry": "2028-01-01", "horizon": "long", "varieties": ["equity"], "aum": "1000.00"}
    base.update(kw)
    return base


def test_targeting_script_professionals_frozen_accounts_and_horizon():
    r5 = {"code": "X", "risk_rating": "R5", "horizon": "long", "variety": "equity"}
    short = {"code": "Y", "risk_rating": "R2", "horizon": "long", "variety": "equity"}
    plan = _plan("build", [_customer(1, "C1", investor_class="professional_b"), _customer(2, "C5", status="frozen"),
                           _customer(3, "C5")], product=r5)
    by = {m["customer"]: m for m in plan["create"]}
    assert by[1]["status"] == "queued" and by[1]["customer_level"] == "PRO"     # professionals: the PRO row allows R5
    assert (by[2]["status"], by[2]["excluded_reason"]) == ("excluded", "account_status")
    assert by[3]["status"] == "queued"
    assert plan["messages"] == [] and plan["totals"]["excluded"] == 1
    # a product whose horizon is longer than the customer's is not promoted to them
    plan = _plan("build", [_customer(4, "C5", horizon="short")], product=short)
    assert (plan["create"][0]["status"], plan["create"][0]["excluded_reason"]) == ("excluded", "horizon_mismatch")
    # no product and no ceiling (an education campaign): no suitability filter, only the account status
    plan = _plan("build", [_customer(5, "C1", lowest_category=True)])
    assert plan["create"][0]["status"] == "queued"


def test_targeting_script_launch_sends_each_member_once():
    first = _plan("launch", [_customer(1), _customer(2)], max_product_rating="R3")
    assert sorted(m["key"] for m in first["messages"]) == [
        "campaign:9:customer:1:email", "campaign:9:customer:1:sms", "campaign:9:customer:2:email", "campaign:9:customer:2:sms"]
    members = [dict(m, id=100 + i) for i, m in enumerate(first["create"])]
    again = _plan("launch", [_customer(1), _customer(2), _customer(3)], members, max_product_rating="R3")
    assert [m["customer"] for m in again["create"]] == [3] and again["update"] == []
    assert {m["key"] for m in again["messages"]} == {"campaign:9:customer:3:email", "campaign:9:customer:3:sms"}
    assert again["totals"]["sent"] == 3


def test_results_script_first_response_counts_and_conversion_needs_more_product():
    from engine.sandbox import compile_script
    results = compile_script((BUNDLE / "scripts" / "campaign_results.py").read_text("utf-8"), "securities_crm.campaign_results")
    members = [
        {"id": 1, "customer": 11, "status": "sent", "aum_at_start": "100.00", "aum_now": "100.00",
         "product_value_at_start": "50.00", "product_value_now": "50.00", "responded_at": None},
        {"id": 2, "customer": 12, "status": "sent", "aum_at_start": "200.00", "aum_now": "200.00",
         "product_value_at_start": "0.00", "product_value_now": "0.00", "responded_at": None},
        {"id": 3, "customer": 13, "status": "excluded", "aum_at_start": "300.00", "aum_now": "300.00"},
    ]
    out = results.execute({"campaign": {"id": 9, "product": 5}, "members": members,
                           "aum": {11: "150.00", 12: "190.00"}, "holdings": {11: "50.00", 12: "80.00"},
                           "responses": [{"id": 71, "customer": 11, "occurred_at": "2026-12-03T01:00:00Z"},
                                         {"id": 70, "customer": 11, "occurred_at": "2026-12-02T01:00:00Z"},
                                         {"id": 72, "customer": 13, "occurred_at": "2026-12-02T01:00:00Z"}],
                           "now": "2026-12-04T00:00:00Z"})["result"]
    upd = {u["id"]: u["data"] for u in out["members"]}
    assert upd[1]["status"] == "responded" and upd[1]["response_interaction"] == 70     # the first response
    assert "status" not in upd.get(3, {})                                              # never reached: no response
    assert upd[2]["status"] == "converted"                                             # bought the product
    assert out["campaign"]["aum_uplift"] == "40.00" and out["campaign"]["aum_at_start"] == "300.00"
    assert (out["campaign"]["sent"], out["campaign"]["responded"], out["campaign"]["converted"]) == (2, 2, 1)


def test_a_segment_naming_an_unknown_field_stops_with_the_field_named(world):
    lm = world["loom"]
    with Clock(lm, T0) as clock:
        camp = new_campaign(world, clock, segment={"colour": "red"})
    assert find(lm, "campaign_member", {"campaign": camp["id"]}) == []
    with lm.db.connect() as conn:
        from engine.workflow.tables import process_instances as pi
        row = conn.execute(sa.select(pi.c.status, pi.c.error).where(pi.c.process_key == f"{APP}.campaign_segment")).one()
    assert row.status == "error" and "colour" in str(row.error)
