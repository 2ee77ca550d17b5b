"""Starting a process from the screens, and who may: the role of the start event's lane."""
from __future__ import annotations

from tests.workflow.test_inbox_screens import Browser


def test_a_person_starts_a_process_of_their_lane_and_lands_on_its_first_task(flow, app):
    alice = Browser(app, "alice")                  # flow.advisor: the kyc process starts in the advisor lane
    page = alice.get("/processes/start").get_data(as_text=True)
    assert 'data-process="flow.kyc"' in page
    # processes that start by themselves (a timer, a record trigger) are not offered
    assert 'data-process="flow.hourly"' not in page and 'data-process="flow.onrisk"' not in page
    assert "/processes/start" in alice.get("/").get_data(as_text=True)     # in the navigation
    r = alice.post("/processes/start/flow.kyc")
    assert r.status_code == 302 and "/inbox/tasks/" in r.headers["Location"]
    page = alice.get(r.headers["Location"]).get_data(as_text=True)
    assert "Fill KYC" in page and 'name="risk_level"' in page
    started = [i for i in flow.workflow.instances(process="flow.kyc")]
    assert len(started) == 1


def test_a_person_outside_the_start_lane_is_not_offered_it_and_is_refused(flow, app, clients):
    carol = Browser(app, "carol")                  # compliance only
    page = carol.get("/processes/start").get_data(as_text=True)
    assert 'data-process="flow.kyc"' not in page
    assert carol.post("/processes/start/flow.kyc").status_code == 403
    r = clients["carol"].post("/api/v1/processes/flow.kyc/start", json={"data": {}})
    assert r.status_code == 403 and "advisor" in r.get_json()["detail"]
    assert flow.workflow.instances(process="flow.kyc") == []
    # the start is refused without the page's CSRF token too
    assert Browser(app, "alice").c.post("/processes/start/flow.kyc").status_code == 400


def test_the_start_page_speaks_chinese(flow, app):
    from engine.security.users import create_user
    with flow.db.begin() as conn:
        create_user(conn, "li", "secret-pass-1", roles=["flow.advisor"], locale="zh-CN")
    page = Browser(app, "li").get("/processes/start").get_data(as_text=True)
    assert "发起流程" in page


def test_a_start_form_that_does_not_exist_is_refused_at_deploy_with_its_line():
    from engine.workflow.definitions import check_xml
    xml = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="t">
  <bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="s"><bpmn:extensionElements><spiffworkflow:properties>
      <spiffworkflow:property name="formKey" value="nowhere"/></spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:outgoing>f</bpmn:outgoing></bpmn:startEvent>
    <bpmn:endEvent id="e"><bpmn:incoming>f</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f" sourceRef="s" targetRef="e"/>
  </bpmn:process>
</bpmn:definitions>"""
    problems = check_xml("flow", xml, "workflows/p.bpmn", set(), {"flow.kyc_form"}, set())
    bad = [p for p in problems if "start form `nowhere` does not exist" in p.message]
    assert bad and bad[0].line == 4 and "`s`" in bad[0].message
