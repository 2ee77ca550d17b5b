"""The engine below the API: deploy checks, versions, restarts, pitfalls, service tasks, timers."""
from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import sqlalchemy as sa
from freezegun import freeze_time as _freeze_time

from engine.errors import InvalidInput
from engine.security import Actor
from engine.workflow import ProcessLimitExceeded
from engine.workflow.tables import outbox, process_effects, process_instances

SYS = Actor.system("test")


def freeze_time(when):
    return _freeze_time(when, ignore=["engine.runtime.loom"])


def _problems(loom, bundle):
    _, problems = loom.validate_bundle(bundle)
    return problems


def test_deploy_check_names_element_and_line(loom, bundle_copy):
    b = bundle_copy("flow")
    path = b / "workflows" / "kyc.bpmn"
    xml = path.read_text()
    xml = xml.replace('<bpmn:timeDuration>"PT48H"</bpmn:timeDuration>', "<bpmn:timeDuration>PT48H</bpmn:timeDuration>")
    xml = xml.replace("score = len(str(risk)) * 10", "import os")
    xml = xml.replace('value="review_form"', 'value="no_such_form"')
    xml = xml.replace('id="record.create"', 'id="record.explode"')
    xml = xml.replace('name="compliance"', 'name="auditors"')
    path.write_text(xml)
    lines = xml.splitlines()
    problems = _problems(loom, b)
    by_code = {p.code: p for p in problems}
    assert set(by_code) >= {"timer", "expression", "form", "action", "role"}, problems
    timer = by_code["timer"]
    assert timer.path == "sla" and '"PT48H"' in timer.message and "PT48H" in lines[timer.line - 1]
    assert "import os" in lines[by_code["expression"].line - 1] and by_code["expression"].path == "score"
    assert by_code["form"].path == "review" and "no_such_form" in by_code["form"].message
    assert "record.explode" in by_code["action"].message
    assert "auditors" in by_code["role"].message
    assert all(p.file == "workflows/kyc.bpmn" for p in problems)
    with pytest.raises(InvalidInput):
        loom.install(b)


def test_xsd_rejects_unknown_elements(loom, bundle_copy):
    b = bundle_copy("flow")
    path = b / "workflows" / "loop.bpmn"
    path.write_text(path.read_text().replace('<bpmn:endEvent id="l_end">', '<bpmn:bogus id="x"/><bpmn:endEvent id="l_end">'))
    problems = _problems(loom, b)
    assert problems and problems[0].file == "workflows/loop.bpmn" and problems[0].line


def test_running_instances_keep_their_version_and_survive_a_restart(flow, settings, bundle_copy):
    from engine.runtime.loom import Loom
    old = flow.workflow.start("flow.loop", SYS, {"i": 0, "n": 1})
    assert old["status"] == "completed"
    first = flow.workflow.start("flow.kyc", SYS, {})
    b = bundle_copy("flow")
    (b / "app.yaml").write_text((b / "app.yaml").read_text().replace("1.0.0", "1.1.0"))
    kyc = b / "workflows" / "kyc.bpmn"
    kyc.write_text(kyc.read_text().replace('name="Fill KYC"', 'name="Fill KYC v2"'))
    flow.install(b)
    flow.dispose()
    again = Loom(settings)        # a new process on the same database
    try:
        second = again.workflow.start("flow.kyc", SYS, {})
        assert (first["version"], second["version"]) == (1, 2)
        assert second["tasks"][0]["name"] == "Fill KYC v2"
        done = again.workflow.complete(first["tasks"][0]["id"], SYS, {"name": "赵六", "risk_level": "C1"}, {"risk": "C1"})
        assert done["status"] == "completed" and done["version"] == 1
    finally:
        again.dispose()


def test_long_loops_are_refused_with_a_clear_error_not_silently_completed(flow):
    assert flow.workflow.start("flow.loop", SYS, {"i": 0, "n": 50})["status"] == "completed"
    with pytest.raises(ProcessLimitExceeded) as exc:
        flow.workflow.start("flow.loop", SYS, {"i": 0, "n": 1000})
    assert "loop" in exc.value.message and ("`more`" in exc.value.message or "`inc`" in exc.value.message)
    with flow.db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(process_instances)).scalar() == 1


class _Hook(BaseHTTPRequestHandler):
    calls: list = []
    fail = True

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.calls.append((self.headers["Idempotency-Key"], json.loads(body)))
        self.send_response(500 if _Hook.fail else 200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"ok": true}')

    def log_message(self, *a):
        pass


@pytest.fixture
def webhook():
    _Hook.calls, _Hook.fail = [], True
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server, _Hook
    server.shutdown()


@pytest.fixture
def smtp():
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    class Keep(Sink):
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            self.messages.append(envelope)
            return "250 OK"
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    handler = Keep()
    ctl = Controller(handler, hostname="127.0.0.1", port=port)
    ctl.start()
    yield ctl, handler
    ctl.stop()


def test_failed_service_task_waits_for_retry_without_repeating_the_mail(flow, smtp, webhook):
    ctl, mails = smtp
    server, hook = webhook
    object.__setattr__(flow.settings, "smtp_url", f"smtp://127.0.0.1:{ctl.port}")
    inst = flow.workflow.start("flow.notify", SYS, {"email": "kh@example.com",
                                                    "url": f"http://127.0.0.1:{server.server_port}/hook"})
    assert inst["status"] == "error"
    assert inst["error"]["bpmn_id"] == "hook" and "500" in inst["error"]["message"]
    assert len(mails.messages) == 1 and len(hook.calls) == 1
    admin_view = flow.workflow.instances(status="error")
    assert [i["id"] for i in admin_view] == [inst["id"]]
    # retry while the receiver still fails: the mail is not sent again, the same key is reused
    assert flow.workflow.retry(inst["id"], SYS)["status"] == "error"
    hook.fail = False
    done = flow.workflow.retry(inst["id"], SYS)
    assert done["status"] == "completed"
    assert len(mails.messages) == 1
    keys = {k for k, _ in hook.calls}
    assert len(hook.calls) == 3 and len(keys) == 1
    with flow.db.connect() as conn:
        effects = conn.execute(sa.select(process_effects.c.action)).scalars().all()
    assert sorted(effects) == ["notify.email", "webhook.call"]


def test_mail_without_smtp_goes_to_the_outbox(flow, webhook):
    server, hook = webhook
    hook.fail = False
    flow.workflow.start("flow.notify", SYS, {"email": "a@example.com", "url": f"http://127.0.0.1:{server.server_port}/"})
    with flow.db.connect() as conn:
        rows = conn.execute(sa.select(outbox.c.channel, outbox.c.payload)).all()
    assert rows[0].channel == "email" and rows[0].payload["to"] == ["a@example.com"]


def test_intermediate_and_interrupting_timers(flow):
    t0 = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=1)
    with freeze_time(t0):
        inst = flow.workflow.start("flow.deadline", SYS, {})
        assert inst["tasks"] == [] and inst["next_timer_at"]
    with freeze_time(t0 + timedelta(minutes=61)):
        flow.workflow.tick()
        tasks = flow.workflow.instance(inst["id"])["tasks"]
        assert [t["bpmn_id"] for t in tasks] == ["approve"]
    with freeze_time(t0 + timedelta(minutes=61 + 121)):
        flow.workflow.tick()
        detail = flow.workflow.instance(inst["id"], detail=True)
        assert detail["status"] == "completed" and detail["data"].get("timed_out") is True
        assert [h["status"] for h in detail["history"]] == ["cancelled"]


def test_timer_start_event_starts_a_new_instance_each_cycle(flow):
    t0 = datetime.now(timezone.utc).replace(microsecond=0)
    with freeze_time(t0 + timedelta(minutes=90)):
        assert flow.workflow.tick()["started"] == 1
        assert flow.workflow.tick()["started"] == 0
    with freeze_time(t0 + timedelta(minutes=190)):
        assert flow.workflow.tick()["started"] == 1
    done = flow.workflow.instances(process="flow.hourly")
    assert len(done) == 2 and {i["status"] for i in done} == {"completed"}


def test_record_trigger_starts_a_process_and_messages_correlate(flow):
    rec = flow.records.create("flow.customer", {"name": "钱七", "risk_level": "C2"}, SYS)
    assert flow.workflow.instances(process="flow.onrisk") == []
    flow.records.update("flow.customer", rec["id"], {"risk_level": "C5"}, SYS)
    started = flow.workflow.instances(process="flow.onrisk")
    assert len(started) == 1 and started[0]["correlation_key"] == str(rec["id"])
    flow.records.update("flow.customer", rec["id"], {"notes": "x"}, SYS)
    assert len(flow.workflow.instances(process="flow.onrisk")) == 1   # condition needs a risk change
