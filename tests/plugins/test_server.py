"""A runaway endpoint script is stopped by its budget while the server keeps answering others."""
from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.plugins.helpers import ADMIN, make_plugin

SRC = '''
def spin(request):
    n = 0
    while True:
        n += 1


def ping(request):
    return {"pong": True}
'''


@pytest.fixture
def server(mini, tmp_path):
    from werkzeug.serving import make_server
    from engine.runtime.app import create_app
    from tests.runtime.conftest import make_token
    folder = make_plugin(tmp_path, "busy", {"busy.py": SRC}, hooks=[
        {"point": "endpoint", "name": "spin", "script": "busy.py", "function": "spin", "budget": {"seconds": 3.0}},
        {"point": "endpoint", "name": "ping", "script": "busy.py", "function": "ping"}])
    mini.extensions["plugins"].install(folder, ADMIN, enable=True)
    srv = make_server("127.0.0.1", 0, create_app(mini, {"TESTING": True}), threaded=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}", {"Authorization": f"Bearer {make_token(mini)}"}
    srv.shutdown()


def _spin_beside_pings(base, h) -> tuple[dict, list]:
    """Call the spinning endpoint in a thread and ping meanwhile; (hostile result, [(status, end)])."""
    result = {}

    def hostile():
        t0 = time.monotonic()
        result["r"] = requests.get(base + "/api/v1/x/busy/spin", headers=h, timeout=30)
        result["ended"] = time.monotonic()
        result["took"] = result["ended"] - t0
    t = threading.Thread(target=hostile)
    t.start()
    time.sleep(0.2)
    quick = []
    while t.is_alive() and len(quick) < 5:
        r = requests.get(base + "/api/v1/x/busy/ping", headers=h, timeout=10)
        quick.append((r.status_code, time.monotonic()))
    t.join(30)
    return result, quick


def test_while_true_endpoint_is_stopped_and_others_are_served_meanwhile(server):
    base, h = server
    # pings must be answered while the hostile script still spins (it may spin for 3 s), not only
    # after it; on a loaded CI machine one ping can queue behind the spinning thread for the whole
    # window, so up to three windows are tried -- a server the script blocks fails all three
    for _ in range(3):
        result, quick = _spin_beside_pings(base, h)
        assert quick and all(code == 200 for code, _ in quick)
        r = result["r"]
        assert r.status_code == 422 and r.headers["Content-Type"].startswith("application/problem+json")
        # stopped by its budget -- time, or the iteration cap when the machine is fast enough to reach it first
        assert "stopped" in r.json()["detail"] and "busy.py, line" in r.json()["detail"]
        assert result["took"] < 8
        if min(done for _, done in quick) < result["ended"]:
            break
    else:
        raise AssertionError("no ping was answered while the hostile script was spinning, in three tries")
    assert requests.get(base + "/api/v1/x/busy/ping", headers=h, timeout=10).json() == {"pong": True}
