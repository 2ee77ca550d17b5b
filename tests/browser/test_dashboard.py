"""A manager's dashboard in headless Chromium: ECharts draws the org bar chart, and a click on the
first bar (北京营业部) drills one level down to its teams.

Reuses the browser fixtures of tests/browser/conftest.py (the session Chromium); the live server
here serves the `sales` bundle with the reports tests' policy.
"""
from __future__ import annotations


import pytest

from tests.conftest import BUNDLES
from tests.reports.conftest import use_policy

pytestmark = pytest.mark.browser


@pytest.fixture
def sales_server(loom):
    from tests.browser.conftest import serve

    from engine.runtime.app import create_app
    from engine.security.users import create_user
    loom.install(BUNDLES / "sales")
    use_policy(loom)
    with loom.db.begin() as conn:
        create_user(conn, "boss", "boss-pass-123", roles=["manager"], locale="zh-CN")
    with serve(loom) as url:
        yield url


def test_dashboard_renders_and_drills_down(chromium, sales_server):
    context = chromium.new_context(viewport={"width": 1360, "height": 1000}, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(15000)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(sales_server + "/login")
        page.fill("input[name=username]", "boss")
        page.fill("input[name=password]", "boss-pass-123")
        with page.expect_navigation():
            page.click("button[type=submit].btn-primary")
        page.goto(f"{sales_server}/app/sales/dashboards/overview", wait_until="domcontentloaded")
        chart = page.locator('.loom-chart[data-chart="org_bar"]')
        # data-ready is set by dashboard.js on ECharts' `finished` event
        page.wait_for_selector('.loom-chart[data-chart="org_bar"][data-ready="1"]')
        assert chart.get_attribute("data-level") == "branch"
        assert page.evaluate("window.loomCharts.org_bar.getOption().xAxis[0].data") == ["北京营业部", "上海营业部"]
        box = chart.bounding_box()
        x, y = page.evaluate("""() => window.loomCharts.org_bar.convertToPixel({seriesIndex: 0},
                                                                                ['北京营业部', 50000])""")
        page.mouse.click(box["x"] + x, box["y"] + y)
        page.wait_for_selector('.loom-chart[data-chart="org_bar"][data-level="team"][data-ready="1"]')
        assert page.evaluate("window.loomCharts.org_bar.getOption().xAxis[0].data") == ["北京一组", "北京二组"]
        assert page.locator('[data-widget="org_bar"] .loom-drill-up').is_visible()
        assert not errors
    finally:
        context.close()
