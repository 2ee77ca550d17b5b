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
    assert c.get(r.headers["Location"]).status_code == 200
