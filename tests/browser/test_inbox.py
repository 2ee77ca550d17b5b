"""A user works through the task inbox in headless Chromium: opens a task, sees a validation error
at the field, fixes it, completes; the next task appears for the compliance role; the process page
draws the diagram with bpmn-js, the completed step highlighted and the bpmn.io watermark visible."""
from __future__ import annotations


import pytest

from engine.security import Actor
from tests.conftest import BUNDLES

expect = pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package").expect

pytestmark = pytest.mark.browser
USERS = {"alice": ["flow.advisor"], "carol": ["flow.compliance"]}


@pytest.fixture
def flow_server(loom):
    """The app over the `flow` bundle, with an advisor (alice) and a compliance officer (carol)."""
    from engine.security.users import create_user
    from tests.browser.conftest import serve
    loom.install(BUNDLES / "flow")
    with loom.db.begin() as conn:
        for name, roles in USERS.items():
            create_user(conn, name, f"{name}-pass-1", roles=roles, locale="zh-CN", display_name=name.title())
    with serve(loom) as url:
        yield loom, url


@pytest.fixture
def flow_page(chromium, flow_server):
    context = chromium.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
    pg = context.new_page()
    pg.set_default_timeout(10000)
    errors = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    # the 422 answer to the invalid submission is expected; any other console error is not
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" and "status of 422" not in m.text else None)
    pg.errors = errors
    yield pg
    context.close()


def login(page, base, user):
    page.goto(base + "/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", f"{user}-pass-1")
    with page.expect_navigation():
        page.click("button[type=submit].btn-primary")


def navigate(page, selector):
    with page.expect_navigation():
        page.click(selector)


def test_task_through_the_inbox_to_the_next_role_and_the_diagram(flow_page, flow_server):
    loom, base = flow_server
    page = flow_page
    inst = loom.workflow.start("flow.kyc", Actor.system("test"), {"risk": "C4"})
    login(page, base, "alice")
    navigate(page, "nav a:text-is('待办')")
    navigate(page, "a[data-view=group]")
    row = page.locator("tr[data-task=fill_kyc]")
    expect(row).to_have_count(1)
    navigate(page, "tr[data-task=fill_kyc] td:first-child a")
    # the task's form (kyc_form) drawn by the record screens' widgets
    page.fill("#f-name", "张三")
    page.select_option("#f-risk_level", "C4")
    page.fill("#f-email", "不是邮箱")
    navigate(page, "button[data-complete]")
    err = page.locator("[data-path=email] .field-error")
    expect(err).to_be_visible()
    assert page.input_value("#f-name") == "张三"                 # what was typed is kept
    page.fill("#f-email", "zhangsan@example.com")
    navigate(page, "button[data-complete]")
    assert "/inbox" in page.url
    expect(page.locator(".alert-ok")).to_contain_text("Fill KYC")
    expect(page.locator("tr[data-task=fill_kyc]")).to_have_count(0)
    # the advisor has nothing more; the compliance officer now has the review
    navigate(page, "a[data-view=group]")
    expect(page.locator("tr[data-task=review]")).to_have_count(0)
    page.context.clear_cookies()
    login(page, base, "carol")
    page.goto(base + "/inbox?view=group")
    expect(page.locator("tr[data-task=review]")).to_have_count(1)
    # the process page: diagram with the completed step highlighted, the watermark, the trail
    navigate(page, "tr[data-task=review] td:nth-child(2) a")
    assert page.url.endswith(f"/processes/{inst['id']}")
    page.wait_for_selector("#bpmn-canvas[data-ready=true]")
    expect(page.locator(".djs-element.loom-done[data-element-id=fill_kyc]")).to_have_count(1)
    expect(page.locator(".djs-element.loom-current[data-element-id=review]")).to_have_count(1)
    expect(page.locator("a.bjs-powered-by")).to_be_visible()
    fill = page.locator(".djs-element[data-element-id=fill_kyc] .djs-visual > rect").first
    assert fill.evaluate("el => getComputedStyle(el).fill") == "rgb(216, 240, 223)"
    assert "alice" in page.inner_text(".trail")
    expect(page.locator("a[data-record-link]")).to_contain_text("张三")
    assert page.errors == []
