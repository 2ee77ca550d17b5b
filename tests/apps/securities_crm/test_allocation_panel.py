"""The asset-allocation proposal on the customer 360 page and its printable page: suitable
products only, amounts adding up exactly to the customer's AUM, the lowest category kept to R1."""
from __future__ import annotations

import re
from decimal import Decimal

import sqlalchemy as sa

from engine.security import Actor
from engine.security.users import users
from tests.apps.securities_crm.test_customer_360 import APP, _all, _login


def _panel(page: str, key: str) -> str:
    m = re.search(rf'id="panel-{key}".*?</section>', page, re.S)
    assert m, f"no {key} panel"
    return m.group(0)


def _amounts(panel: str) -> list[Decimal]:
    table = re.search(r'<table class="table grid panel-table">.*?</table>', panel, re.S).group(0)
    rows = re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.S)
    return [Decimal(re.findall(r'<td class="num">([^<]*)</td>', r)[-1].replace(",", "")) for r in rows], rows


def test_the_proposal_uses_suitable_products_and_adds_up_to_the_aum(crm_demo):
    loom, _ = crm_demo
    c = _login(loom, "advisor1")
    with loom.db.connect() as conn:
        uid = conn.execute(sa.select(users.c.id).where(users.c.username == "advisor1")).scalar()
    customer = next(x for x in _all(loom, "customer") if x["advisor_user"] == uid and x["aum"]
                    and Decimal(x["aum"]) > 0 and x["risk_level"] in ("C3", "C4") and not x.get("lowest_category"))
    page = c.get(f"/r/{APP}/customer/{customer['id']}").get_data(as_text=True)
    panel = _panel(page, "allocation")
    amounts, rows = _amounts(panel)
    assert rows and sum(amounts) == Decimal(customer["aum"])
    allowed = {(r["customer_level"], r["product_rating"]) for r in _all(loom, "suitability_rule")
               if r["decision"] == "allow"}
    ratings = set(re.findall(r'<td class="">(R[1-5])</td>', panel))
    assert ratings and all((customer["risk_level"], r) in allowed for r in ratings)
    assert "仅供参考" in panel                             # the disclaimer, in the viewer's language
    # the printable page: the same table, a print button, no navigation
    link = re.search(r'href="([^"]+/print/allocation)"', panel).group(1)
    printed = c.get(link).get_data(as_text=True)
    assert "data-print" in printed and "<nav class=\"sidebar" not in printed
    assert _amounts(printed.replace('class="table grid panel-table"', 'class="table grid panel-table"'))[0] == amounts


def test_a_lowest_category_customer_is_proposed_r1_products_only(crm_demo):
    loom, _ = crm_demo
    c = _login(loom, "compliance1")
    customer = next(x for x in _all(loom, "customer") if x["aum"] and Decimal(x["aum"]) > 0)
    loom.records.update(loom.model.entity(f"{APP}.customer"), customer["id"], {"lowest_category": True, "risk_level": "C1"},
                        Actor.system())
    try:
        panel = _panel(c.get(f"/r/{APP}/customer/{customer['id']}").get_data(as_text=True), "allocation")
        ratings = set(re.findall(r'<td class="">(R[1-5])</td>', panel))
        assert ratings <= {"R1"}
        assert sum(_amounts(panel)[0]) == Decimal(customer["aum"])
    finally:
        loom.records.update(loom.model.entity(f"{APP}.customer"), customer["id"], {"lowest_category": False,
                                                                                   "risk_level": customer["risk_level"]},
                            Actor.system())


def test_the_print_page_is_refused_outside_the_viewers_scope(crm_demo):
    loom, _ = crm_demo
    c = _login(loom, "advisor1")
    with loom.db.connect() as conn:
        uid = conn.execute(sa.select(users.c.id).where(users.c.username == "advisor1")).scalar()
    other = next(x for x in _all(loom, "customer") if x["advisor_user"] != uid)
    r = c.get(f"/r/{APP}/customer/{other['id']}/print/allocation")
    assert r.status_code in (403, 404) and other["name"] not in r.get_data(as_text=True)
    assert c.get(f"/r/{APP}/customer/{other['id']}/print/portfolio").status_code == 404    # not printable
