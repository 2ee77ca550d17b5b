"""The customer 360 page: the bundle's `page:` panels on the customer detail screen."""
from __future__ import annotations

import html
import json
import re

import pytest
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


# -- holdings analytics, open tasks, prefilled task forms (issue #9) --------------------------------

def _panel(page: str, key: str) -> str:
    m = re.search(rf'<section class="record-panel [^"]*" id="panel-{key}".*?</section>', page, re.S)
    return m.group(0) if m else ""


def _option(panel: str) -> dict:
    return json.loads(html.unescape(re.search(r"data-option='([^']*)'", panel).group(1)))


def _chart(panel: str) -> dict[str, float]:
    """name -> value of a pie's slices or a bar chart's bars."""
    option = _option(panel)
    data = option["series"][0]["data"]
    if option["series"][0]["type"] == "pie":
        return {d["name"]: d["value"] for d in data}
    return dict(zip(option["xAxis"]["data"], data))


def _metrics(panel: str) -> dict[str, str]:
    return {k: html.unescape(v).strip() for k, v in re.findall(r'data-metric="([^"]+)"[^>]*>([^<]*)<', panel)}


def _text(fragment: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", fragment)))


def _uid(loom, username):
    with loom.db.connect() as conn:
        return conn.execute(sa.select(users.c.id).where(users.c.username == username)).scalar()


def _holders(loom, advisor: str) -> list[tuple[int, list[dict]]]:
    """The advisor's customers with holdings, most positions first."""
    uid = _uid(loom, advisor)
    mine = {x["id"] for x in _all(loom, "customer") if x["advisor_user"] == uid}
    by = {}
    for h in _all(loom, "holding"):
        if h["customer"] in mine:
            by.setdefault(h["customer"], []).append(h)
    return sorted(by.items(), key=lambda kv: -len(kv[1]))


def test_holdings_analytics_show_industry_chart_and_concentration_of_this_customer(crm_demo):
    from decimal import Decimal as D
    loom, _ = crm_demo
    cid, holdings = _holders(loom, "advisor1")[0]
    products = {p["id"]: p for p in _all(loom, "product")}
    page = _login(loom, "advisor1").get(f"/r/{APP}/customer/{cid}").get_data(as_text=True)
    # the per-customer report as a pie: one slice per industry of this customer's holdings, summing to them
    report = _panel(page, "holdings_by_industry")
    series = _option(report)["series"][0]
    assert series["type"] == "pie"
    by_industry = {}
    for h in holdings:
        ind = products[h["product"]]["industry"] or ""
        by_industry[ind] = by_industry.get(ind, D(0)) + D(str(h["market_value"]))
    slices = {d["name"]: d["value"] for d in series["data"]}
    # holdings without an industry (funds, cash) are one slice of their own, never "None"
    assert "None" not in slices
    assert set(slices) - {"（未填）", "(not set)"} == {k for k in by_industry if k}
    assert sum(slices.values()) == pytest.approx(float(sum(by_industry.values())), abs=0.01)
    # the numbers are there too: the table has the industries' market values
    biggest = max((k for k in by_industry if k), key=lambda k: by_industry[k])
    assert biggest in _text(report)
    # concentration from scripts/analytics_portfolio.py, worked out here independently
    by_code = {}
    for h in holdings:
        by_code[h["security_code"]] = by_code.get(h["security_code"], D(0)) + D(str(h["market_value"]))
    total = sum(by_code.values())
    hhi = sum((v / total) ** 2 for v in by_code.values())
    panel = _panel(page, "portfolio")
    m = _metrics(panel)
    assert m["hhi"] == f"{hhi.quantize(D('0.0001'))}"
    assert m["n_eff"] == f"{(1 / hhi).quantize(D('0.01')):,}"
    # one holdings date in the demo: no return series, so these say "not enough data"
    assert m["returns.portfolio_return"] == m["returns.volatility"] == m["returns.max_drawdown"] == "—"
    weights = _chart(panel)
    assert set(weights) == set(by_code)
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-6)


def test_a_second_holdings_date_gives_return_and_drawdown(crm_demo):
    from decimal import Decimal as D
    loom, _ = crm_demo
    cid, holdings = _holders(loom, "advisor2")[0]
    # a month earlier the same positions were worth twice as much (double the quantity, same prices)
    for h in holdings:
        loom.records.create(loom.model.entity(f"{APP}.holding"), {
            "customer": cid, "product": h["product"], "security_code": h["security_code"],
            "quantity": str(D(str(h["quantity"])) * 2), "market_price": h["market_price"],
            "cost_price": h["cost_price"], "as_of": "2026-10-20"}, Actor.system())
    panel = _panel(_login(loom, "advisor2").get(f"/r/{APP}/customer/{cid}").get_data(as_text=True), "portfolio")
    m = _metrics(panel)
    assert m["returns.portfolio_return"] == "-50.00%"
    assert m["returns.max_drawdown"] == "-50.00%"
    assert m["returns.volatility"] == "—"          # one period return is not a volatility
    # the concentration is still over the newest date only (the old rows would double it otherwise)
    weights = _chart(panel)
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-6)


def test_the_new_panels_speak_both_languages(crm_demo):
    loom, _ = crm_demo
    cid = _holders(loom, "advisor1")[0][0]
    c = _login(loom, "advisor1")
    for code, words in (("en", ["Holdings by industry", "Portfolio analytics", "Concentration (HHI)",
                                "Maximum drawdown", "Open tasks", "Not enough data"]),
                        ("zh-CN", ["持仓行业分布", "组合分析", "持仓集中度（HHI）", "最大回撤", "待办任务", "数据不足"])):
        c.get("/")
        assert c.post(f"/locale/{code}", data={"next": "/"}).status_code in (302, 303)
        page = c.get(f"/r/{APP}/customer/{cid}").get_data(as_text=True)
        text = " ".join(_text(_panel(page, k)) + " " + _panel(page, k)
                        for k in ("holdings_by_industry", "portfolio", "tasks"))
        for w in words:
            assert w in text, (code, w)


def test_tasks_panel_lists_open_tasks_about_the_customer_and_the_form_is_prefilled(crm_demo):
    loom, _ = crm_demo
    (cid, _h), (other, _o) = _holders(loom, "advisor1")[:2]
    inst = loom.workflow.start(f"{APP}.customer_activated", Actor.system(), {"customer_id": cid},
                               subject=(f"{APP}.customer", cid))
    task = next(t for t in inst["tasks"] if t["bpmn_id"] == "ca_callback")
    c = _login(loom, "advisor1")
    panel = _panel(c.get(f"/r/{APP}/customer/{cid}").get_data(as_text=True), "tasks")
    assert f'href="/inbox/tasks/{task["id"]}"' in panel
    assert f'/inbox/tasks/{task["id"]}' not in _panel(c.get(f"/r/{APP}/customer/{other}").get_data(as_text=True),
                                                      "tasks")
    # the callback form (a new interaction) already names the customer the process is about
    form = c.get(f"/inbox/tasks/{task['id']}").get_data(as_text=True)
    assert re.search(rf'name="customer" value="{cid}"', form)
    name = next(x["name"] for x in _all(loom, "customer") if x["id"] == cid)
    assert f'value="{html.escape(name, quote=True)}"' in form or f'value="{name}"' in form


def test_tasks_panel_shows_a_complaint_process_of_the_customer(crm_demo):
    loom, _ = crm_demo
    cid = _all(loom, "customer")[3]["id"]
    comp = loom.records.create(loom.model.entity(f"{APP}.complaint"), {
        "complaint_no": "CP-360-TASKS", "customer": cid, "request_type": "complaint", "channel": "phone",
        "business_line": "wealth", "category": "service_attitude", "description": "等待过久",
        "received_at": "2026-11-20T02:00:00Z"}, Actor.system())
    open_ = [t for t in loom.workflow.open_tasks_about(f"{APP}.complaint", [comp["id"]])]
    assert open_, "the complaint process did not start"
    page = _login(loom, "operations1").get(f"/r/{APP}/customer/{cid}").get_data(as_text=True)
    panel = _panel(page, "tasks")
    assert any(f'/inbox/tasks/{t["id"]}' in panel for t in open_)
