"""The designer in headless Chromium, as an analyst uses it: drag a field onto the customer form
and publish it, then create a record with it on the staff screen; add a user task to a process in
the BPMN modeler (errors shown on the element, then deployed); build a bar chart report and see it
on a dashboard. Reuses the live server and Chromium of tests/browser/conftest.py."""
from __future__ import annotations

import sqlalchemy as sa
import pytest

pytestmark = pytest.mark.browser


def login(page):
    page.goto(page.base + "/login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "alice-pass-1")
    with page.expect_navigation():
        page.click("button[type=submit].btn-primary")


def drag(page, source, target, dy=0):
    """A SortableJS drag (forceFallback) driven by the mouse."""
    a, b = source.bounding_box(), target.bounding_box()
    page.mouse.move(a["x"] + a["width"] / 2, a["y"] + a["height"] / 2)
    page.mouse.down()
    page.mouse.move(a["x"] + a["width"] / 2 + 8, a["y"] + a["height"] / 2 + 8, steps=4)
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2 + dy, steps=20)
    page.wait_for_timeout(150)
    page.mouse.up()


def test_drag_a_field_publish_and_use_it_on_the_staff_screen(page, live_server):
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    login(page)
    page.goto(page.base + "/designer/mini/form/customer")
    page.wait_for_selector("#form-designer[data-ready='1']")
    first = page.locator(".section-fields[data-section='0']")
    before = first.locator(".canvas-field").count()
    drag(page, page.locator("#palette [data-type='text']"), first)
    page.wait_for_function(f"document.querySelectorAll(\".section-fields[data-section='0'] .canvas-field\").length == {before + 1}")
    # the new field is selected: name it in the property panel
    page.fill("#prop-key", "wechat")
    page.locator("#prop-key").dispatch_event("change")
    page.fill("#prop-label_zh", "微信号")
    page.locator("#prop-label_zh").dispatch_event("change")
    assert page.evaluate("window.loomFormDesigner.state().entity.fields.some(f => f.key === 'wechat')")
    # undo removes the label change, redo brings it back
    page.click("[data-action='undo']")
    assert page.evaluate("window.loomFormDesigner.state().entity.fields.find(f => f.key === 'wechat').label['zh-CN']") != "微信号"
    page.click("[data-action='redo']")
    # the live preview is the staff screens' own markup
    page.wait_for_selector("#designer-preview .field[data-path='wechat'] input[name='wechat']")
    assert "微信号" in page.inner_text("#designer-preview .field[data-path='wechat']")
    page.click("[data-action='publish']")
    page.wait_for_selector("#publish-dialog[open]")
    assert "wechat" in page.inner_text("#publish-dialog [data-plan]")
    page.click("[data-action='confirm-publish']")
    page.wait_for_selector("#form-designer[data-published]")
    # staff see the field at once, no restart
    page.goto(page.base + "/r/mini/customer/new")
    page.fill("input[name=name]", "赵六")
    page.select_option("select[name=risk_level]", "C3")
    page.fill("input[name=wechat]", "zhao6")
    with page.expect_navigation():
        page.click("button[data-save]")
    assert "zhao6" in page.inner_text("main")
    assert not errors, errors


def test_add_a_user_task_and_deploy_the_process(page, live_server, mini):
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    login(page)
    page.goto(page.base + "/designer/mini/workflow/approval")
    page.wait_for_selector("#bpmn-designer[data-ready='1']")
    # the bpmn.io watermark stays visible beside our panel
    assert page.locator("a.bjs-powered-by").is_visible()
    # palette in Chinese
    assert page.locator(".djs-palette .entry[aria-label='创建任务']").count() == 1
    # append a task to the start event through the context pad, then make it a user task
    page.click(".djs-element[data-element-id='start']")
    page.click(".djs-context-pad .entry[data-action='append.append-task']")
    task_id = page.evaluate("window.loomModeler.get('selection').get()[0].id")
    page.click(".djs-context-pad .entry[data-action='replace']")
    page.click(".djs-popup [data-id='replace-with-user-task']")
    task_id = page.evaluate("window.loomModeler.get('selection').get()[0].id")
    assert page.evaluate("window.loomModeler.get('selection').get()[0].type") == "bpmn:UserTask"
    # validating as deploy does: the user task has no form -> a marker on that element
    page.click("[data-action='validate']")
    page.wait_for_selector(f".loom-error-badge[data-problem-for='{task_id}']")
    assert "form" in page.inner_text("#designer-messages")
    # the task is still selected: pick its form in our side panel, then deploy
    assert page.get_attribute("#bpmn-panel", "data-element") == task_id
    page.select_option("#bpmn-panel select[name=formKey]", "customer_form")
    page.fill("#bpmn-panel input[name=name]", "经理审批")
    page.locator("#bpmn-panel input[name=name]").dispatch_event("change")
    page.click("[data-action='publish']")
    page.wait_for_selector("#bpmn-designer[data-published='1']")
    from engine.meta import store
    from engine.workflow.tables import process_definitions
    with mini.db.connect() as conn:
        body = store.get(conn, "mini", "workflow", "approval").body
        deployed = conn.execute(sa.select(process_definitions.c.key, process_definitions.c.meta)).all()
    assert 'spiffworkflow:property name="formKey" value="customer_form"' in body["xml"]
    assert [d.key for d in deployed] == ["mini.approval"]
    assert any(t["form"] == "customer_form" for t in deployed[0].meta["tasks"].values())
    assert not errors, errors


def test_build_a_bar_chart_report_and_see_it_on_a_dashboard(page, live_server):
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    login(page)
    page.goto(page.base + "/designer/mini/report/by_risk")
    page.wait_for_selector("#report-designer[data-ready='1']")
    page.select_option("#report-source", "customer")
    page.fill("#report-label-zh", "风险等级分布")
    drag(page, page.locator("#report-fields [data-path='risk_level']"), page.locator("#report-dimensions"))
    drag(page, page.locator("#report-fields [data-path='']"), page.locator("#report-measures"))
    page.select_option("#report-chart", "bar")
    page.wait_for_selector("#report-designer[data-preview='ready']")
    assert page.evaluate("window.loomReportChart.getOption().series[0].type") == "bar"
    assert sum(page.evaluate("window.loomReportChart.getOption().series[0].data")) > 0
    page.fill("input[name=dashboard]", "overview")
    page.click("[data-action='publish']")
    page.click("a[data-dashboard-link]")
    page.wait_for_selector('.loom-chart[data-chart="by_risk"][data-ready="1"]')
    assert page.evaluate("window.loomCharts.by_risk.getOption().series[0].type") == "bar"
    assert not errors, errors
