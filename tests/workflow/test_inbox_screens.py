"""The inbox, task, process and failed-process screens through the Flask test client."""
from __future__ import annotations

import re

import pytest

from engine.security import Actor

SYS = Actor.system("test")


def _csrf(page: str) -> str | None:
    m = re.search(r'name="csrf-token" content="([^"]+)"', page)
    return m.group(1) if m else None


class Browser:
    """A logged-in test client whose POSTs carry the page's CSRF token, as the forms do."""

    def __init__(self, app, user, password="secret-pass-1"):
        self.c = app.test_client()
        self.token = _csrf(self.c.get("/login").get_data(as_text=True))
        r = self.post("/login", {"username": user, "password": password})
        assert r.status_code == 302, r.get_data(as_text=True)[:500]
        self.get("/")

    def get(self, url):
        r = self.c.get(url)
        self.token = _csrf(r.get_data(as_text=True)) or self.token
        return r

    def post(self, url, data=None):
        data = dict(data or {})
        data.setdefault("csrf_token", self.token)
        return self.c.post(url, data=data)


@pytest.fixture
def browse(app):
    return lambda user: Browser(app, user)


def _kyc(flow, risk="C4"):
    return flow.workflow.start("flow.kyc", SYS, {"risk": risk})


def test_inbox_tabs_and_task_form_with_field_errors_then_completion(flow, browse):
    inst = _kyc(flow)
    alice = browse("alice")
    page = alice.get("/inbox?view=group").get_data(as_text=True)
    assert "Fill KYC" in page and 'data-task="fill_kyc"' in page
    assert "Fill KYC" not in browse("carol").get("/inbox?view=group").get_data(as_text=True)
    tid = inst["tasks"][0]["id"]
    page = alice.get(f"/inbox/tasks/{tid}").get_data(as_text=True)
    # the kyc_form's fields, rendered by the record screens' widgets
    for name in ("name", "risk_level", "email", "notes"):
        assert f'name="{name}"' in page
    r = alice.post(f"/inbox/tasks/{tid}/complete", {"name": "张三", "risk_level": "C4", "email": "not-an-email"})
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    assert re.search(r'data-path="email">.*?field-error', page, re.S)
    assert 'value="张三"' in page                       # the input is kept
    assert flow.workflow.instance(inst["id"])["tasks"][0]["bpmn_id"] == "fill_kyc"
    r = alice.post(f"/inbox/tasks/{tid}/complete", {"name": "张三", "risk_level": "C4", "email": "zs@example.com"})
    assert r.status_code == 302 and "/inbox" in r.location
    assert [t["bpmn_id"] for t in flow.workflow.instance(inst["id"])["tasks"]] == ["review"]
    carol_page = browse("carol").get("/inbox?view=group").get_data(as_text=True)
    assert "Compliance review" in carol_page


def test_a_task_completed_by_someone_else_first_says_so(flow, browse):
    inst = _kyc(flow)
    tid = inst["tasks"][0]["id"]
    alice, mike = browse("alice"), browse("mike")
    alice.get(f"/inbox/tasks/{tid}")
    form = {"name": "李四", "risk_level": "C1"}
    assert mike.post(f"/inbox/tasks/{tid}/complete", form).status_code == 302
    r = alice.post(f"/inbox/tasks/{tid}/complete", form)
    assert r.status_code == 409
    page = r.get_data(as_text=True)
    assert "mike completed this task first." in page and "data-complete" not in page


def test_claim_release_and_delegate_buttons(flow, browse):
    inst = _kyc(flow)
    tid = inst["tasks"][0]["id"]
    alice = browse("alice")
    page = alice.get(f"/inbox/tasks/{tid}").get_data(as_text=True)
    assert 'data-action="claim"' in page
    assert alice.post(f"/inbox/tasks/{tid}/claim").status_code == 302
    assert "Fill KYC" in alice.get("/inbox?view=mine").get_data(as_text=True)
    page = alice.get(f"/inbox/tasks/{tid}").get_data(as_text=True)
    assert 'data-action="unclaim"' in page and 'data-action="claim"' not in page
    assert alice.post(f"/inbox/tasks/{tid}/delegate", {"to": "mike"}).status_code == 302
    assert flow.workflow.instance(inst["id"])["tasks"][0]["assignee"] == "mike"
    page = alice.get(f"/inbox/tasks/{tid}").get_data(as_text=True)
    assert "mike is working on this task." in page and "data-complete" not in page


def test_instance_page_has_diagram_trail_and_record_links(flow, browse):
    inst = _kyc(flow, risk="C1")
    flow.workflow.complete(inst["tasks"][0]["id"], SYS, {"name": "王五", "risk_level": "C1"})
    alice = browse("alice")
    # alice started nothing and holds no task of this instance: not hers to see
    assert alice.get(f"/processes/{inst['id']}").status_code == 403
    mike = browse("mike")
    r = mike.get(f"/processes/{inst['id']}")
    page = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "bpmn-navigated-viewer.production.min.js" in page and 'id="bpmn-canvas"' in page
    completed = re.search(r"data-completed='([^']*)'", page).group(1)
    assert "fill_kyc" in completed and "open_ticket" in completed
    assert 'data-action="task_completed"' in page and "王五" in page and "data-record-link" in page
    xml = mike.get(f"/processes/{inst['id']}/diagram.bpmn")
    assert xml.status_code == 200 and b"bpmndi:BPMNShape" in xml.data


def test_failed_processes_list_with_retry(flow, browse):
    inst = flow.workflow.start("flow.notify", SYS, {"email": "a@example.com", "url": "http://127.0.0.1:9/nothing"})
    assert inst["status"] == "error"
    assert browse("alice").get("/processes/failed").status_code == 403
    mike = browse("mike")
    page = mike.get("/processes/failed").get_data(as_text=True)
    assert f'data-instance="{inst["id"]}"' in page and "hook" in page
    r = mike.post(f"/processes/{inst['id']}/retry")
    assert r.status_code == 302 and "still=" in r.location          # the receiver is still down


def test_screens_speak_chinese(flow, browse):
    _kyc(flow)
    alice = browse("alice")
    alice.post("/locale/zh-CN", {"next": "/inbox"})
    page = alice.get("/inbox?view=group").get_data(as_text=True)
    assert "我所在组的待办" in page and "截止时间" in page
