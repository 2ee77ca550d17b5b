"""The webhook/SMS channel plugin drains the outbox with signed, idempotent JSON POSTs."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from tests.plugins.helpers import ADMIN, PLUGINS

SECRET = "0123456789abcdef-shared"


@pytest.fixture
def gateway():
    received, fail_first = [], {"left": 1}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "headers": dict(self.headers), "body": body})
            status = 200
            if self.path == "/hook" and fail_first["left"]:
                fail_first["left"] -= 1
                status = 503
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"ok": true}')

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def test_outbox_messages_are_delivered_signed_once_and_retried_after_a_failure(loom, gateway):
    from engine.workflow.tables import outbox
    base, received = gateway
    ext = loom.extensions["plugins"]
    ext.install(PLUGINS / "webhook_channel", ADMIN, enable=True)
    ext.configure("webhook_channel", {"url": base + "/hook", "sms_url": base + "/sms", "secret": SECRET}, ADMIN)
    ext.run_script("a = notify.channel('webhook', {'event': 'kyc_done', 'customer': 7}, idempotency_key='kyc-7')\n"
                   "b = notify.channel('sms', {'to': '+8613812345678', 'text': '您好'})\n"
                   "c = notify.channel('sms', {'to': '12345', 'text': 'bad number'})", ADMIN)
    first = ext.tick()["sent"]
    assert first == {"sms": 1}                        # the webhook answered 503; the bad number is refused
    assert ext.tick()["sent"] == {"webhook": 1}       # retried on the next tick
    assert ext.tick().get("sent") == {}
    hooks = [r for r in received if r["path"] == "/hook"]
    assert len(hooks) == 2
    assert hooks[0]["headers"]["Idempotency-Key"] == hooks[1]["headers"]["Idempotency-Key"] == "kyc-7"
    for r in received:
        ts = r["headers"]["X-Loom-Timestamp"]
        expected = "sha256=" + hmac.new(SECRET.encode(), ts.encode() + b"." + r["body"], hashlib.sha256).hexdigest()
        assert r["headers"]["X-Loom-Signature"] == expected
    assert json.loads(hooks[1]["body"])["payload"] == {"event": "kyc_done", "customer": 7}
    sms = [json.loads(r["body"]) for r in received if r["path"] == "/sms"]
    assert sms == [{"to": "13812345678", "text": "您好", "sign": None}]
    with loom.db.connect() as conn:
        rows = {r.idempotency_key: r for r in conn.execute(sa.select(outbox))}
    assert rows["kyc-7"].sent_at is not None and rows["kyc-7"].attempts == 2
    bad = [r for r in rows.values() if r.payload.get("to") == "12345"][0]
    assert bad.sent_at is None


def test_the_channel_may_only_call_declared_hosts(loom, gateway):
    ext = loom.extensions["plugins"]
    ext.install(PLUGINS / "webhook_channel", ADMIN, enable=True)
    ext.configure("webhook_channel", {"url": "http://example.com/hook"}, ADMIN)
    ext.run_script("a = notify.channel('webhook', {'x': 1})", ADMIN)
    assert ext.tick()["sent"] == {}
    assert any("may not call http://example.com" in msg for _, msg in ext.errors)
