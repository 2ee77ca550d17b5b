"""The customer 360 page: the bundle's `page:` panels on the customer detail screen."""
from __future__ import annotations

import html
import json
import re

import sqlalchemy as sa

from engine.records import ListRequest
from engine.security import Actor
from engine.security.users import users
from tests.runtime.test_screens import FormClient

APP = "securities_crm"


def _all(loom, entity):
    return loom.query.list(loom.model.entity(f"{APP}.{entity}"), Actor.system(),
                           ListRequest(page_size=5000, with_total=False))["items"]


def _login(loom, username):
    from engine.runtime.app import create_app
    c = FormClient(create_app(loom, {"TESTING": True}).test_client())
    assert c.post("/login", data={"username": username, "password": "demo1234"}).status_code == 302
    return c


def test_advisor_sees_the_360_page_of_own_customer_only(crm_demo):
    loom, _ = crm_demo
    c = _login(loom, "advisor1")
    with loom.db.connect() as conn:
        uid = conn.execute(sa.select(users.c.id).where(users.c.username == "advisor1")).scalar()
    customers = _all(loom, "customer")
    mine = [x for x in customers if x["advisor_user"] == uid]
    other = next(x for x in customers if x["advisor_user"] != uid)
    own = mine[0]
    # a relation to another of the advisor's customers, so the graph has an edge to draw
    loom.records.create(loom.model.entity(f"{APP}.relationship"),
                        {"customer": own["id"], "related_customer": mine[1]["id"], "relation_type": "spouse"},
                        Actor.system())
    r = c.get(f"/r/{APP}/customer/{own['id']}")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    for key in ("network", "capital_accounts", "holdings", "trades", "transfers", "timeline", "complaints",
                "agreements", "suitability"):
        assert f'id="panel-{key}"' in page, key
    # advisors may not read AML alerts (no tipping off): the panel is left out for them
    assert 'id="panel-alerts"' not in page
    option = json.loads(html.unescape(re.search(r"data-option='([^']*)'", page).group(1)))
    series = option["series"][0]
    names = {n["name"] for n in series["data"]}
    assert {own["name"], mine[1]["name"]} <= names
    assert any(e["value"] in {"配偶", "Spouse"} for e in series["links"])
    # the trades panel lists this customer's trades only
    own_trades = [t for t in _all(loom, "trade") if t["customer"] == own["id"]]
    trades_panel = re.search(r'id="panel-trades".*?</section>', page, re.S).group(0)
    for t in _all(loom, "trade"):
        if t["customer"] != own["id"]:
            assert t["trade_no"] not in trades_panel
            break
    if own_trades:
        newest = max(own_trades, key=lambda t: t["trade_time"])
        assert newest["trade_no"] in trades_panel
    # another advisor's customer: not found or not allowed, and nothing of it is shown
    r = c.get(f"/r/{APP}/customer/{other['id']}")
    assert r.status_code in (403, 404)
    assert other["name"] not in r.get_data(as_text=True)


def test_compliance_sees_the_alerts_panel_with_the_customers_alerts(crm_demo):
    loom, _ = crm_demo
    cust = _all(loom, "customer")[0]["id"]
    loom.records.create(loom.model.entity(f"{APP}.alert"),
                        {"alert_no": "AL-360-TEST", "rule_code": "T001", "category": "suspicious",
                         "customer": cust, "triggered_at": "2026-11-19T10:00:00"}, Actor.system())
    page = _login(loom, "compliance1").get(f"/r/{APP}/customer/{cust}").get_data(as_text=True)
    panel = re.search(r'id="panel-alerts".*?</section>', page, re.S).group(0)
    assert "AL-360-TEST" in panel
    # and it is on the merged timeline too
    assert "AL-360-TEST" in re.search(r'id="panel-timeline".*?</section>', page, re.S).group(0)
