"""A script task may declare its own sandbox time budget (``budget.seconds``, at most 30 s): batch
scripts over many records get the time they need, and the deploy check refuses a bad value."""
from __future__ import annotations

import pytest

from engine.errors import InvalidInput
from engine.security import Actor

SYS = Actor.system("test")

SLOW = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="defs" targetNamespace="http://loom.example/bpmn">
  <bpmn:process id="slow" name="Slow" isExecutable="true">
    <bpmn:startEvent id="s0"><bpmn:outgoing>s1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:scriptTask id="count">BUDGET<bpmn:incoming>s1</bpmn:incoming><bpmn:outgoing>s2</bpmn:outgoing><bpmn:script>t = 0
for k in range(200000):
    t = t + k
k = None
del k
</bpmn:script></bpmn:scriptTask>
    <bpmn:endEvent id="s_end"><bpmn:incoming>s2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="s1" sourceRef="s0" targetRef="count"/>
    <bpmn:sequenceFlow id="s2" sourceRef="count" targetRef="s_end"/>
  </bpmn:process>
</bpmn:definitions>
"""


def prop(value):
    return ('<bpmn:extensionElements><spiffworkflow:properties><spiffworkflow:property name="budget.seconds" '
            f'value="{value}"/></spiffworkflow:properties></bpmn:extensionElements>')


def with_slow(bundle_copy, budget):
    b = bundle_copy("flow")
    (b / "workflows" / "slow.bpmn").write_text(SLOW.replace("BUDGET", budget), "utf-8")
    return b


def test_the_declared_budget_is_the_one_the_script_runs_with(loom, bundle_copy):
    # 200,000 iterations fit the default second easily, never a millisecond
    loom.install(with_slow(bundle_copy, ""))
    assert loom.workflow.start("flow.slow", SYS, {})["status"] == "completed"
    loom.install(with_slow(bundle_copy, prop("0.001")))
    inst = loom.workflow.start("flow.slow", SYS, {})
    assert inst["status"] == "error"
    assert "time budget" in str(loom.workflow.instance(inst["id"])["error"])


@pytest.mark.parametrize("value", ["abc", "0", "31"])
def test_a_bad_budget_is_refused_at_deploy(loom, bundle_copy, value):
    b = with_slow(bundle_copy, prop(value))
    _, problems = loom.validate_bundle(b)
    budget = [p for p in problems if p.code == "budget"]
    assert budget and budget[0].file == "workflows/slow.bpmn" and budget[0].path == "count"
    assert "budget.seconds" in budget[0].message
    with pytest.raises(InvalidInput):
        loom.install(b)
