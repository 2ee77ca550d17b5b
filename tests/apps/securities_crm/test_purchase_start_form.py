"""A purchase started from the screens: the suitability check's start form (customer, product,
amount), checked like a record form, starting the process with those values; a C2 customer
buying an R4 product lands the advisor on the special risk warning to sign."""
from __future__ import annotations

import re

from tests.apps.securities_crm.test_processes import APP, SYSTEM, _customer, _product, find, world  # noqa: F401 (fixture)
from tests.workflow.test_inbox_screens import Browser


def _browser(world, user):
    from engine.runtime.app import create_app
    return Browser(create_app(world["loom"], {"TESTING": True}), user)


def test_an_advisor_starts_a_purchase_from_its_form_and_lands_on_the_warning(world):
    lm = world["loom"]
    cid = _customer(lm, world, "C810001", risk_level="C2")
    product = _product(lm, "R4")
    adv = _browser(world, "adv")
    page = adv.get("/processes/start").get_data(as_text=True)
    link = re.search(rf'href="([^"]+)"[^>]*data-process="{APP}.suitability_check"', page).group(1)
    form = adv.get(link).get_data(as_text=True)
    for name in ("customer", "product", "amount"):
        assert f'name="{name}"' in form
    # the form's required fields and types are checked at the field, in Chinese, and nothing starts
    r = adv.post(link, {"customer": str(cid), "amount": "abc"})
    assert r.status_code == 422
    text = r.get_data(as_text=True)
    assert "必填" in text and find(lm, "suitability", {"customer": cid}) == []
    r = adv.post(link, {"customer": str(cid), "product": str(product["id"]), "amount": "100000"})
    assert r.status_code == 302 and "/inbox/tasks/" in r.headers["Location"]
    rec = find(lm, "suitability", {"customer": cid})[0]
    assert rec["result"] == "warn" and rec["product_rating"] == "R4"
    task = adv.get(r.headers["Location"]).get_data(as_text=True)
    assert 'name="warning_signed"' in task


def test_a_start_form_refuses_a_customer_the_advisor_cannot_read(world):
    lm = world["loom"]
    other = _customer(lm, world, "C810002", risk_level="C4", advisor=world["employees"]["adv2"],
                      advisor_user=world["users"]["adv2"])
    product = _product(lm, "R3")
    adv = _browser(world, "adv")
    r = adv.post(f"/processes/start/{APP}.suitability_check/form",
                 {"customer": str(other), "product": str(product["id"]), "amount": "5000"})
    assert r.status_code == 422 and find(lm, "suitability", {"customer": other}) == []
    # the API start needs the same role (advisor lane), and compliance is not offered the form
    comp = _browser(world, "comp")
    assert f"{APP}.suitability_check" not in comp.get("/processes/start").get_data(as_text=True)
    assert comp.post(f"/processes/start/{APP}.suitability_check/form", {}).status_code == 403
    assert lm.workflow.instances(process=f"{APP}.suitability_check") == []
    assert SYSTEM.is_system
