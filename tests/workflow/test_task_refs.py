"""Which records an open task is about (``loom_task_ref``) and what its form is prefilled with,
on the `flow` bundle's KYC process: the first task creates the customer, the review after it is
about that customer, and closing a task takes it off the record's list."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from engine.security import Actor
from engine.workflow.service import _record_id
from engine.workflow.tables import task_refs

SYS = Actor.system("test")


def test_open_tasks_about_a_record_follow_the_process(flow):
    inst = flow.workflow.start("flow.kyc", SYS, {"risk": "C4"})
    fill = inst["tasks"][0]
    with flow.db.connect() as conn:       # the first task knows no record yet
        assert conn.execute(sa.select(task_refs).where(task_refs.c.task_id == fill["id"])).all() == []
    done = flow.workflow.complete(fill["id"], SYS, {"name": "张三", "risk_level": "C4"})
    review = done["tasks"][0]
    assert review["bpmn_id"] == "review"
    cid = flow.workflow.task_data(review["id"])["customer_id"]
    about = flow.workflow.open_tasks_about("flow.customer", [cid])
    assert [(t["id"], t["variable"], t["record_id"]) for t in about] == [(review["id"], "customer_id", cid)]
    assert flow.workflow.open_tasks_about("flow.customer", [cid + 1000]) == []
    assert flow.workflow.open_tasks_about("flow.ticket", [cid]) == []
    # the review form edits that customer: its own values are shown, nothing else is guessed
    assert flow.workflow.prefill(review["id"]) == {}
    flow.workflow.complete(review["id"], SYS, {"approved": True})
    assert flow.workflow.open_tasks_about("flow.customer", [cid]) == []


def test_a_record_started_process_is_about_its_subject(flow):
    a = flow.records.create(flow.model.entity("flow.customer"), {"name": "李四", "risk_level": "C2"}, SYS)
    inst = flow.workflow.start("flow.kyc", SYS, {"risk": "C2"}, subject=("flow.customer", a["id"]))
    about = flow.workflow.open_tasks_about("flow.customer", [a["id"]])
    assert [t["id"] for t in about] == [inst["tasks"][0]["id"]] and about[0]["variable"] == "subject"


@pytest.mark.parametrize("value, expected", [(7, 7), ("12", 12), ({"id": 3, "version": 1}, 3), (True, None),
                                             ("abc", None), (None, None), (2.5, None), ("9" * 30, None)])
def test_record_ids_in_process_data(value, expected):
    assert _record_id(value) == expected
