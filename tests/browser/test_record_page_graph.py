"""The record page's relationship graph in headless Chromium: graph.js draws the server-built
ECharts graph (no inline script under the CSP) and a click on a node opens that record's page.

Reuses tests/browser/conftest.py: its live server serves whatever `mini` fixture is in scope, so
this module points `mini` at the `pages` test bundle (tests/runtime/test_record_pages.py).
"""
from __future__ import annotations

import pytest

from tests.runtime.test_record_pages import pages  # noqa: F401 -- the fixture, reused

pytestmark = pytest.mark.browser


@pytest.fixture
def mini(pages):  # noqa: F811
    return pages


def test_graph_panel_draws_and_links_to_records(page, mini):
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(page.base + "/login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "alice-pass-1")
    with page.expect_navigation():
        page.click("button[type=submit].btn-primary")
    ann, bob = mini.people["Ann"], mini.people["Bob"]
    page.goto(f"{page.base}/r/pages/person/{ann}", wait_until="domcontentloaded")
    # data-ready is set by graph.js on ECharts' `finished` event
    page.wait_for_selector('#panel-network .loom-graph[data-ready="1"]')
    names = page.evaluate("window.loomGraphs[0].getOption().series[0].data.map(function (n) { return n.name; })")
    assert sorted(names) == ["Acme Ltd", "Ann", "Bob", "Cat"]
    assert page.locator("#panel-network .loom-graph canvas").count() >= 1
    # the report panel drawn as a chart too (same script, options from the dashboards builder)
    page.wait_for_selector('#panel-totals_chart .loom-graph[data-ready="1"]')
    # clicking Bob's node opens Bob's page
    page.wait_for_timeout(500)
    box = page.locator("#panel-network .loom-graph").bounding_box()
    x, y = page.evaluate("""() => { var c = window.loomGraphs[0];
        var d = c.getModel().getSeriesByIndex(0).getData();
        var p = d.getItemLayout(d.indexOfName('Bob'));
        return c.convertToPixel({seriesIndex: 0}, [p[0], p[1]]); }""")
    with page.expect_navigation():
        page.mouse.click(box["x"] + x, box["y"] + y)
    assert page.url.endswith(f"/r/pages/person/{bob}")
    assert not errors
