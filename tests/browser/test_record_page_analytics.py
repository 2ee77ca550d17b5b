"""The record page's script panel chart in headless Chromium: graph.js draws the server-built
ECharts options of a ``script`` panel (the customer 360 page's portfolio analytics use the same
kind) next to its figures, with no inline script under the CSP.

Points the browser conftest's `mini` fixture at the `followup` test bundle
(tests/runtime/test_record_page_tasks.py).
"""
from __future__ import annotations

import pytest

from tests.runtime.test_record_page_tasks import fup  # noqa: F401 -- the fixture, reused

pytestmark = pytest.mark.browser


@pytest.fixture
def mini(fup):  # noqa: F811
    return fup


def test_script_panel_chart_draws_with_its_figures(page, mini):
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(page.base + "/login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "alice-pass-1")
    with page.expect_navigation():
        page.click("button[type=submit].btn-primary")
    page.goto(f"{page.base}/r/followup/client/{mini.clients['Acme']}", wait_until="domcontentloaded")
    page.wait_for_selector('#panel-mix .loom-graph[data-ready="1"]')
    assert page.locator("#panel-mix .loom-graph canvas").count() >= 1
    slices = page.evaluate("""() => { var el = document.querySelector('#panel-mix .loom-graph');
        var c = echarts.getInstanceByDom(el);
        return c.getOption().series[0].data.map(function (d) { return [d.name, d.value]; }); }""")
    assert dict(slices) == {"A-1": 600.0, "B-2": 200.0, "C-3": 200.0}
    # the figures beside it, in the user's language (alice reads zh-CN)
    assert page.locator('#panel-mix [data-metric="total"]').inner_text().strip() == "1,000.00"
    assert "订单构成" in page.locator("#panel-mix h2").inner_text()
    assert not errors
