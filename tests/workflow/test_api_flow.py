"""End to end through the API: start, inbox by role, form validation, gateway, service task, SLA."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from freezegun import freeze_time as _freeze_time


def freeze_time(when):
    # the model-reload clock stays real: a frozen jump would reload the model mid-request
    return _freeze_time(when, ignore=["engine.runtime.loom"])

from engine.workflow.tables import notifications


def _start_kyc(clients):
    r = clients["alice"].post("/api/v1/processes/flow.kyc/start", json={"data": {}})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def test_kyc_runs_end_to_end_with_roles_forms_scripts_and_service_task(flow, clients):
    inst = _start_kyc(clients)
    assert inst["status"] == "waiting"
    # the advisor sees the task in the group queue, compliance does not
    group = clients["alice"].get("/api/v1/tasks?view=group").get_json()["items"]
    assert [t["bpmn_id"] for t in group] == ["fill_kyc"]
    assert clients["carol"].get("/api/v1/tasks?view=group").get_json()["items"] == []
    tid = group[0]["id"]
    task = clients["alice"].get(f"/api/v1/tasks/{tid}").get_json()
    assert [f["key"] for f in task["form_definition"]["fields"]] == ["name", "risk_level", "email", "notes"]
    assert task["priority"] == 70 and task["due_at"]
    # compliance may not complete the advisor's task
    r = clients["carol"].post(f"/api/v1/tasks/{tid}/complete", json={"data": {"name": "x", "risk_level": "C1"}})
    assert r.status_code == 403
    # bad form data: field-level problems, nothing changes
    r = clients["alice"].post(f"/api/v1/tasks/{tid}/complete", json={"data": {"name": "张三", "risk_level": "C9"}})
    assert r.status_code == 422 and any(e.get("field") == "risk_level" for e in r.get_json()["errors"])
    r = clients["alice"].post(f"/api/v1/tasks/{tid}/complete", json={"data": {"name": "张三", "salary": 1}})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "salary"
    assert flow.query is not None
    with flow.db.connect() as conn:
        assert conn.execute(sa.text("select count(*) from flow_customer")).scalar() == 0
    r = clients["alice"].post(f"/api/v1/tasks/{tid}/complete",
                              json={"data": {"name": "张三", "risk_level": "C4"}, "variables": {"risk": "C4"}})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert [t["bpmn_id"] for t in body["tasks"]] == ["review"]
    review = body["tasks"][0]
    # the review is compliance's (lane) or a manager's (candidate role), not the advisor's
    assert [t["bpmn_id"] for t in clients["carol"].get("/api/v1/tasks?view=group").get_json()["items"]] == ["review"]
    assert [t["bpmn_id"] for t in clients["mike"].get("/api/v1/tasks?view=group").get_json()["items"]] == ["review"]
    assert clients["alice"].get("/api/v1/tasks?view=group").get_json()["items"] == []
    # claim: then it is carol's, and mike can no longer take it
    assert clients["carol"].post(f"/api/v1/tasks/{review['id']}/claim").status_code == 200
    assert [t["id"] for t in clients["carol"].get("/api/v1/tasks?view=mine").get_json()["items"]] == [review["id"]]
    r = clients["mike"].post(f"/api/v1/tasks/{review['id']}/claim")
    assert r.status_code == 409 and "carol" in r.get_json()["detail"]
    r = clients["carol"].post(f"/api/v1/tasks/{review['id']}/complete", json={"data": {"approved": True}})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "completed"
    detail = clients["alice"].get(f"/api/v1/processes/instances/{inst['id']}").get_json()
    assert {"fill_kyc", "score", "review", "open_ticket"} <= set(detail["completed"])
    # the form wrote the customer record (process data keeps the id only); the service task a ticket
    cid = detail["data"]["customer_id"]
    assert isinstance(cid, int) and "name" not in detail["data"]
    with flow.db.connect() as conn:
        row = conn.execute(sa.text("select name, approved from flow_customer where id = :i"), {"i": cid}).one()
        assert row.name == "张三" and row.approved
        assert conn.execute(sa.text("select customer from flow_ticket")).scalar() == cid
    actions = [(e["actor"], e["action"]) for e in detail["events"]]
    assert ("alice", "task_completed") in actions and ("carol", "task_completed") in actions
    assert ("carol", "claimed") in actions


def test_second_completion_gets_a_clear_conflict(flow, clients):
    inst = _start_kyc(clients)
    tid = inst["tasks"][0]["id"]
    results = []

    def go():
        results.append(clients["alice"].post(f"/api/v1/tasks/{tid}/complete",
                                             json={"data": {"name": "李四", "risk_level": "C1"},
                                                   "variables": {"risk": "C1"}}))
    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 409], [r.get_json() for r in results]
    loser = next(r for r in results if r.status_code == 409).get_json()
    assert "already completed by alice" in loser["detail"]
    with flow.db.connect() as conn:
        assert conn.execute(sa.text("select count(*) from flow_customer")).scalar() == 1


def test_sla_boundary_timer_escalates_without_cancelling_the_review(flow, clients):
    t0 = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    deadline = (t0 + timedelta(hours=48)).isoformat()[:16]
    with freeze_time(t0):
        inst = _start_kyc(clients)
        tid = inst["tasks"][0]["id"]
        body = clients["alice"].post(f"/api/v1/tasks/{tid}/complete", json={
            "data": {"name": "王五", "risk_level": "C4"}, "variables": {"risk": "C4"}}).get_json()
        assert body["next_timer_at"].startswith(deadline)
        assert body["tasks"][0]["due_at"].startswith(deadline)
    with freeze_time(t0 + timedelta(hours=47)):
        assert flow.workflow.tick()["fired"] == 0
        assert clients["carol"].get("/api/v1/tasks?view=overdue").get_json()["items"] == []
    with freeze_time(t0 + timedelta(hours=49)):
        assert [t["bpmn_id"] for t in clients["carol"].get("/api/v1/tasks?view=overdue").get_json()["items"]] == ["review"]
        assert flow.workflow.tick()["fired"] == 1
        with flow.db.connect() as conn:
            n = conn.execute(sa.select(notifications.c.title, notifications.c.role)).all()
        assert len(n) == 1 and n[0].role == "flow.manager" and "overdue" in n[0].title
        detail = flow.workflow.instance(inst["id"], detail=True)
        assert detail["status"] == "waiting" and [t["bpmn_id"] for t in detail["tasks"]] == ["review"]
        assert flow.workflow.tick()["fired"] == 0     # fired once, not again


def test_reassign_and_delegate(flow, clients, actors):
    inst = _start_kyc(clients)
    tid = inst["tasks"][0]["id"]
    r = clients["alice"].post(f"/api/v1/tasks/{tid}/reassign", json={"to": "mike"})
    assert r.status_code == 403
    r = clients["mike"].post(f"/api/v1/tasks/{tid}/reassign", json={"to": "alice"})
    assert r.status_code == 200 and r.get_json()["assignee"] == "alice"
    r = clients["alice"].post(f"/api/v1/tasks/{tid}/delegate", json={"to": "nobody"})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "to"
    r = clients["alice"].post(f"/api/v1/tasks/{tid}/delegate", json={"to": "mike"})
    assert r.status_code == 200
    assert clients["alice"].get("/api/v1/tasks?view=mine").get_json()["items"] == []
    assert [t["id"] for t in clients["mike"].get("/api/v1/tasks?view=mine").get_json()["items"]] == [tid]
    r = clients["alice"].post(f"/api/v1/tasks/{tid}/complete", json={"data": {"name": "a", "risk_level": "C1"}})
    assert r.status_code == 409 and "mike" in r.get_json()["detail"]



def test_an_instance_is_visible_only_to_those_with_a_part_in_it(flow, clients, actors):
    from engine.security.users import create_user, issue_token
    from tests.workflow.conftest import Client
    with flow.db.begin() as conn:
        uid = create_user(conn, "outsider", "secret-pass-1", roles=[], locale="en")
        outsider = Client(clients["alice"].client, issue_token(conn, uid, "tests"))
    inst = _start_kyc(clients)
    assert clients["alice"].get(f"/api/v1/processes/instances/{inst['id']}").status_code == 200   # the starter
    r = outsider.get(f"/api/v1/processes/instances/{inst['id']}")
    assert r.status_code == 403 and r.content_type == "application/problem+json"
    assert outsider.get(f"/api/v1/processes/instances/{inst['id']}/diagram").status_code == 403
