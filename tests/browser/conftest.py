"""Browser-test fixtures: a live Loom server (werkzeug, in a thread) and headless Debian Chromium.

Skipped with a reason when /usr/bin/chromium or Playwright is missing (no `playwright install`:
the system browser is used).
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]


@pytest.fixture(scope="session")
def chromium():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium fonts-wqy-microhei)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


@contextmanager
def serve(loom):
    """Serve a Loom's app on 127.0.0.1:<free port> in a thread; yields the base URL."""
    from werkzeug.serving import make_server

    from engine.runtime.app import create_app
    server = make_server("127.0.0.1", 0, create_app(loom, {"TESTING": True}), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


@pytest.fixture
def live_server(mini):
    """The app over the `mini` bundle, with user `alice` / `alice-pass-1`."""
    from engine.security.users import create_user
    with mini.db.begin() as conn:
        create_user(conn, "alice", "alice-pass-1", is_admin=True, locale="zh-CN", display_name="Alice")
    with serve(mini) as url:
        yield url


@pytest.fixture
def page(chromium, live_server):
    context = chromium.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
    pg = context.new_page()
    pg.set_default_timeout(8000)
    pg.base = live_server
    yield pg
    context.close()
