"""The securities CRM at the screens, in zh-CN, as the people in the README would use it.

Operations starts an onboarding from "发起流程" and lands on the KYC form; a wrong mobile number
is refused in Chinese at the field; the corrected form saves the customer and the process moves
on to the advisor's questionnaire (after the identity check, which the test runs on the
scheduler). An advisor registers a complaint through the complaint screen, which starts the
complaint process. The branch manager opens the dashboard from the navigation and ECharts draws it.
The rest of each process (scoring, warning, SLA escalation) is covered through the API in
tests/apps/securities_crm/test_processes.py.
"""
from __future__ import annotations

import re
import time

import pytest

from tests.apps.securities_crm.test_processes import valid_id_number
from tests.browser.test_screens_browser import SHOTS, navigate

expect = pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package").expect

pytestmark = pytest.mark.browser
APP = "securities_crm"


@pytest.fixture(scope="module")
def crm_server(tmp_path_factory):
    from tests.apps.securities_crm.conftest import _drop, build_demo
    from tests.browser.conftest import serve
    lm, settings, _summary = build_demo(tmp_path_factory.mktemp("crm_journey"))
    try:
        with serve(lm) as url:
            yield lm, url
    finally:
        _drop(lm, settings)


@pytest.fixture
def browser_page(chromium):
    context = chromium.new_context(viewport={"width": 1360, "height": 1000}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15000)
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    yield page
    context.close()


def login(page, base, user):
    page.goto(base + "/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", "demo1234")
    navigate(page, "button[type=submit].btn-primary")


def pick(page, field, text, record_id=None):
    """Type into a link field's lookup and choose the record ``record_id`` (else the first option)."""
    page.fill(f"#f-{field}", text)
    options = page.locator(f"#f-{field} ~ .lookup-results .lookup-option")
    (options.first if record_id is None else options.and_(page.locator(f"[data-id='{record_id}']"))).click()


def _employee(lm, username):
    from engine.records.query import ListRequest
    from engine.security import Actor
    emp = lm.query.list(lm.records.entity(f"{APP}.employee"), Actor.system("tests"),
                        ListRequest.from_params({"username": username}))["items"][0]
    return emp


def test_operations_starts_an_onboarding_and_fills_the_kyc_form_in_chinese(crm_server, browser_page):
    lm, base = crm_server
    page = browser_page
    login(page, base, "operations1")
    navigate(page, "nav a:text-is('发起流程')")
    navigate(page, "form[data-process='securities_crm.onboarding'] button")
    assert "/inbox/tasks/" in page.url
    expect(page.locator("form.task-form")).to_be_visible()
    advisor = _employee(lm, "advisor1")
    page.fill("#f-customer_no", "C990001")
    page.fill("#f-name", "周晓燕")
    page.select_option("#f-customer_type", "individual")
    page.select_option("#f-id_type", "id_card")
    page.fill("#f-id_number", valid_id_number("1990-06-18", male=False))
    page.fill("#f-birthday", "1990-06-18")
    page.fill("#f-mobile", "12345")                       # not a mainland mobile number
    pick(page, "advisor", advisor["name"])
    pick(page, "branch", "")
    page.select_option("#f-aml_risk", "low")
    navigate(page, "button[data-complete]")
    error = page.locator("[data-field-error='mobile'], #f-mobile ~ .field-error, .field-error").first
    expect(error).to_be_visible()
    assert "手机" in error.inner_text()
    page.fill("#f-mobile", "13912345678")
    navigate(page, "button[data-complete]")
    assert "/inbox" in page.url and "/tasks/" not in page.url
    expect(page.locator(".alert-ok")).to_contain_text("已完成")
    # the identity check runs on the scheduler a second after the KYC commits
    customer = next(c for c in lm.query.list(lm.records.entity(f"{APP}.customer"), _system(),
                                             _params({"customer_no": "C990001"}))["items"])
    assert customer["name"] == "周晓燕" and customer["mobile"] == "13912345678"
    time.sleep(1.2)
    lm.workflow.tick()
    login(page, base, "advisor1")
    navigate(page, "nav a:text-is('待办')")
    navigate(page, "a[data-view='group']")
    expect(page.locator("tr[data-task='questionnaire']")).to_have_count(1)
    assert not page.errors


def test_an_advisor_registers_a_complaint_through_its_screen(crm_server, browser_page):
    lm, base = crm_server
    page = browser_page
    login(page, base, "advisor1")
    page.goto(base + f"/r/{APP}/complaint/new")
    mine = lm.query.list(lm.records.entity(f"{APP}.customer"), _system(),
                         _params({"advisor": _employee(lm, "advisor1")["id"]}))["items"][0]
    page.fill("#f-complaint_no", "TS-0001")
    # a first search, then a narrower one: each fills this field's own list (the form's own
    # hx-swap must not leak into the lookup, which once replaced the list's container)
    page.fill("#f-customer", mine["name"][:1])
    expect(page.locator("#f-customer ~ .lookup-results .lookup-option").first).to_be_visible()
    pick(page, "customer", mine["name"])
    page.fill("#f-complainant_name", "李先生")
    page.select_option("#f-channel", "phone")
    page.fill("#f-received_at", "2026-11-20T10:30")
    page.select_option("#f-business_line", "brokerage")
    page.select_option("#f-category", "service_attitude")
    page.fill("#f-description", "营业部柜台服务态度差，等候时间过长。")
    navigate(page, "form.record-form button[type=submit].btn-primary")
    assert "/new" not in page.url, page.locator(".field-error, .alert-error").all_inner_texts()
    complaint = lm.query.list(lm.records.entity(f"{APP}.complaint"), _system(),
                              _params({"complaint_no": "TS-0001"}))["items"][0]
    assert complaint["customer"] == mine["id"]
    started = lm.workflow.instances(process=f"{APP}.complaint_handling")
    assert len(started) == 1, "saving the complaint starts the complaint process"
    assert not page.errors


def test_an_advisor_requests_a_purchase_from_its_start_form(crm_server, browser_page):
    lm, base = crm_server
    page = browser_page
    import sqlalchemy as sa

    from engine.security.users import users
    with lm.db.connect() as conn:
        uid = conn.execute(sa.select(users.c.id).where(users.c.username == "advisor1")).scalar()
    mine = next(c for c in lm.query.list(lm.records.entity(f"{APP}.customer"), _system(),
                                         _params({"advisor_user": uid, "risk_level": "C2"}))["items"])
    product = next(p for p in lm.query.list(lm.records.entity(f"{APP}.product"), _system(),
                                            _params({"risk_rating": "R4"}))["items"] if p.get("status") == "on_sale")
    login(page, base, "advisor1")
    navigate(page, "nav a:text-is('发起流程')")
    navigate(page, f"a[data-process='{APP}.suitability_check']")
    navigate(page, "button[data-start]")                     # nothing filled in: refused at the fields
    expect(page.locator(".field-error").first).to_contain_text(re.compile("必填|不能为空"))
    pick(page, "customer", mine["name"], mine["id"])
    pick(page, "product", product["code"], product["id"])
    page.fill("#f-amount", "100000")
    navigate(page, "button[data-start]")
    record = lm.query.list(lm.records.entity(f"{APP}.suitability"), _system(),
                           _params({"customer": mine["id"], "product": product["id"]}))["items"]
    assert record, "the check recorded the purchase request"
    if record[0]["result"] == "warn":           # C2 buying R4: the special risk warning to sign
        assert "/inbox/tasks/" in page.url
        expect(page.locator("input[type=checkbox][name=warning_signed]")).to_have_count(1)
    assert not page.errors


def test_the_branch_manager_opens_the_dashboard_from_the_navigation(crm_server, browser_page):
    _lm, base = crm_server
    page = browser_page
    login(page, base, "manager1")
    navigate(page, "nav a:text-is('仪表板')")
    assert "/app/securities_crm/dashboards/" in page.url
    page.wait_for_selector(".widget canvas, [data-widget] canvas", timeout=20000)
    assert page.locator("canvas").count() >= 2
    assert not page.errors
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(1000)                     # ECharts' entry animation
    page.screenshot(path=str(SHOTS / "dashboard-zh-CN.png"))


def test_the_customer_360_analytics_and_the_printable_proposal(crm_server, browser_page):
    lm, base = crm_server
    page = browser_page
    import sqlalchemy as sa

    from engine.security.users import users
    with lm.db.connect() as conn:
        uid = conn.execute(sa.select(users.c.id).where(users.c.username == "advisor1")).scalar()
    mine = [c for c in lm.query.list(lm.records.entity(f"{APP}.customer"), _system(),
                                     _params({"advisor_user": uid}))["items"] if c.get("aum") and float(c["aum"]) > 0]
    held = {h["customer"] for h in lm.query.list(lm.records.entity(f"{APP}.holding"), _system(),
                                                 _params({"page_size": "2000"}))["items"]}
    customer = next(c for c in mine if c["id"] in held)
    login(page, base, "advisor1")
    page.goto(base + f"/r/{APP}/customer/{customer['id']}")
    page.wait_for_selector("#panel-portfolio canvas", timeout=20000)
    expect(page.locator("#panel-allocation table.panel-table tbody tr").first).to_be_visible()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(1000)
    page.locator("#panel-portfolio").screenshot(path=str(SHOTS / "customer-360-portfolio-zh-CN.png"))
    navigate(page, "#panel-allocation a[data-print-link]")
    expect(page.locator("button[data-print]")).to_be_visible()
    expect(page.locator(".panel-footer")).to_contain_text("仅供参考")
    page.screenshot(path=str(SHOTS / "allocation-print-zh-CN.png"), full_page=True)
    assert not page.errors


def _system():
    from engine.security import Actor
    return Actor.system("tests")


def _params(where):
    from engine.records.query import ListRequest
    return ListRequest.from_params(where)
