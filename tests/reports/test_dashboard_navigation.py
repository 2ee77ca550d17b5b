"""The app's dashboards are reachable from the navigation: a signed-in user finds their default
dashboard under the app, in their language, and it opens."""
from __future__ import annotations

import re

from engine.security.users import create_user


def _login(app, user):
    c = app.test_client()
    token = re.search(r'name="csrf-token" content="([^"]+)"', c.get("/login").get_data(as_text=True)).group(1)
    r = c.post("/login", data={"username": user, "password": "secret-pass-1", "csrf_token": token})
    assert r.status_code == 302
    return c


def test_the_navigation_leads_to_the_default_dashboard(sales):
    from engine.runtime.app import create_app
    with sales.db.begin() as conn:
        create_user(conn, "wang", "secret-pass-1", roles=["advisor"], locale="zh-CN")
        create_user(conn, "west", "secret-pass-1", roles=["advisor"], locale="en")
    app = create_app(sales, {"TESTING": True})
    home = _login(app, "wang").get("/").get_data(as_text=True)
    assert 'href="/app/sales/dashboards">仪表板</a>' in home
    c = _login(app, "west")
    assert 'href="/app/sales/dashboards">Dashboards</a>' in c.get("/").get_data(as_text=True)
    r = c.get("/app/sales/dashboards")
    assert r.status_code == 302 and r.headers["Location"].endswith("/app/sales/dashboards/overview")
    page = c.get(r.headers["Location"])
    assert page.status_code == 200
    # the dashboard keeps the navigation: the way back to the records and the inbox
    assert '<nav class="sidebar"' in page.get_data(as_text=True) and "/inbox" in page.get_data(as_text=True)


def test_each_widget_exports_its_report_within_the_viewers_scope(sales):
    from io import BytesIO

    from openpyxl import load_workbook

    from engine.runtime.app import create_app
    with sales.db.begin() as conn:
        create_user(conn, "wang", "secret-pass-1", roles=["advisor"], locale="zh-CN")
    app = create_app(sales, {"TESTING": True})
    c = _login(app, "wang")
    page = c.get("/app/sales/dashboards/overview").get_data(as_text=True)
    links = re.findall(r'href="(/api/v1/reports/sales/[^"]+)"\s+data-export="(xlsx|csv)"', page)
    assert links and {fmt for _, fmt in links} == {"xlsx", "csv"}
    url = next(u for u, fmt in links if fmt == "xlsx").replace("&amp;", "&")
    r = c.get(url)
    assert r.status_code == 200 and r.mimetype.endswith("spreadsheetml.sheet")
    sheet = load_workbook(BytesIO(r.data)).active
    assert sheet.max_row >= 1 and any(isinstance(cell.value, str) and cell.value for cell in sheet[1])
    # wang is no advisor of any sale, so the scope leaves only the header; the manager gets it all
    with sales.db.begin() as conn:
        create_user(conn, "boss", "secret-pass-1", roles=["manager"], locale="zh-CN")
    mine = load_workbook(BytesIO(r.data)).active.max_row
    boss = load_workbook(BytesIO(_login(app, "boss").get(url).data)).active.max_row
    assert boss > mine
