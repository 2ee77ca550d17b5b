"""Record page ``script`` and ``tasks`` panels, and task forms prefilled from process data, on the
``followup`` test bundle (clients, their orders and follow-up tickets, a two-step process)."""
from __future__ import annotations

import html
import json
import re

import pytest

from engine.records import ListRequest
from engine.security import Actor
from engine.security.users import create_user
from tests.conftest import BUNDLES
from tests.runtime.test_record_pages import assert_panel_rejected
from tests.runtime.test_screens import FormClient

SYS = Actor.system("test")


@pytest.fixture
def fup(loom):
    loom.install(BUNDLES / "followup")
    ent = loom.model.entity

    def add(key, **values):
        return loom.records.create(ent(f"followup.{key}"), values, SYS)["id"]

    loom.clients = {n: add("client", name=n) for n in ("Acme", "Bolt")}
    a, b = loom.clients["Acme"], loom.clients["Bolt"]
    add("order", client=a, sku="A-1", amount="300.00", placed_on="2026-10-01")     # older snapshot
    add("order", client=a, sku="A-1", amount="600.00", placed_on="2026-11-01")
    add("order", client=a, sku="B-2", amount="200.00", placed_on="2026-11-01")
    add("order", client=a, sku="C-3", amount="200.00", placed_on="2026-11-01")
    add("order", client=b, sku="Z-9", amount="999.00", placed_on="2026-11-01")
    loom.add = add
    return loom


def _client(loom, username, roles=(), is_admin=False, locale="en"):
    from engine.runtime.app import create_app
    with loom.db.begin() as conn:
        create_user(conn, username, "pass-word-123", roles=list(roles), is_admin=is_admin, locale=locale)
    c = FormClient(create_app(loom, {"TESTING": True}).test_client())
    assert c.post("/login", data={"username": username, "password": "pass-word-123"}).status_code == 302
    return c


def _panel(page: str, key: str) -> str:
    m = re.search(rf'<section class="record-panel [^"]*" id="panel-{key}".*?</section>', page, re.S)
    return m.group(0) if m else ""


def _metrics(panel: str) -> dict[str, str]:
    return {k: html.unescape(v).strip() for k, v in re.findall(r'data-metric="([^"]+)"[^>]*>([^<]*)<', panel)}


def _text(fragment: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", fragment)))


# -- the script panel -------------------------------------------------------------------------------

def test_script_panel_shows_the_figures_and_chart_of_this_records_newest_rows(fup):
    c = _client(fup, "agent1", roles=["followup.agent"])
    page = c.get(f"/r/followup/client/{fup.clients['Acme']}").get_data(as_text=True)
    panel = _panel(page, "mix")
    assert panel, "no script panel"
    m = _metrics(panel)
    # newest date only: 600 + 200 + 200 (the 300 of October and Bolt's 999 are not in it)
    assert m["total"] == "1,000.00"
    assert m["top_share"] == "60.00%"
    assert m["days"] == "2"                 # the series: one summed point per date
    assert m["missing"] == "—"              # what the data does not allow is shown as such
    assert "One SKU dominates".lower() in _text(panel).lower()
    option = json.loads(html.unescape(re.search(r"data-option='([^']*)'", panel).group(1)))
    assert option["series"][0]["type"] == "pie" and option["title"]["text"] == "By SKU"
    assert {d["name"]: d["value"] for d in option["series"][0]["data"]} == {"A-1": 600.0, "B-2": 200.0, "C-3": 200.0}
    assert "echarts.min.js" in page and "records/graph.js" in page


def test_script_panel_speaks_chinese_to_a_chinese_user(fup):
    c = _client(fup, "agent_zh", roles=["followup.agent"], locale="zh-CN")
    page = c.get(f"/r/followup/client/{fup.clients['Acme']}").get_data(as_text=True)
    panel = _text(_panel(page, "mix"))
    assert "按货号" in _panel(page, "mix")
    assert "订单构成" in panel and "合计" in panel and "最大占比" in panel and "单一货号占比过高" in panel
    tasks = _text(_panel(page, "open_tasks"))
    assert "待办" in tasks and "暂无待办任务" in tasks


def test_script_panel_is_left_out_when_an_input_is_unreadable(fup):
    # auditors may not read orders: a figure over part of the data would mislead, so no panel
    c = _client(fup, "aud", roles=["followup.auditor"])
    page = c.get(f"/r/followup/client/{fup.clients['Acme']}").get_data(as_text=True)
    assert _panel(page, "mix") == "" and "1,000.00" not in page


# -- the tasks panel --------------------------------------------------------------------------------

def test_tasks_panel_lists_open_tasks_about_this_record_with_links_to_their_forms(fup):
    a, b = fup.clients["Acme"], fup.clients["Bolt"]
    inst = fup.workflow.start("followup.followup", SYS, {"client_id": a})
    tid = inst["tasks"][0]["id"]
    agent = _client(fup, "agent2", roles=["followup.agent"])
    page = agent.get(f"/r/followup/client/{a}").get_data(as_text=True)
    panel = _panel(page, "open_tasks")
    assert "Open a follow-up ticket" in panel and f'href="/inbox/tasks/{tid}"' in panel
    assert panel.count("data-task-row") == 1
    # Bolt's page: nothing of Acme's process
    assert "Open a follow-up ticket" not in _panel(agent.get(f"/r/followup/client/{b}").get_data(as_text=True),
                                                    "open_tasks")
    # someone who may not open the task (not in its lane) does not see it listed
    other = _client(fup, "aud2", roles=["followup.auditor"])
    assert "Open a follow-up ticket" not in _panel(other.get(f"/r/followup/client/{a}").get_data(as_text=True),
                                                    "open_tasks")
    # the task is done: it leaves the panel, the next one (about the new ticket and the client) comes
    r = agent.post(f"/inbox/tasks/{tid}/complete", {"client": str(a), "title": "Call back", "channel": "phone"})
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    panel = _panel(agent.get(f"/r/followup/client/{a}").get_data(as_text=True), "open_tasks")
    assert "Open a follow-up ticket" not in panel and "Check the ticket" in panel


def test_tasks_panel_finds_tasks_about_records_linking_here(fup):
    a = fup.clients["Acme"]
    ticket = fup.add("ticket", client=a, title="Broken widget")
    inst = fup.workflow.start("followup.followup", SYS, {"ticket_id": ticket})     # no client_id in the data
    c = _client(fup, "boss", is_admin=True)
    panel = _panel(c.get(f"/r/followup/client/{a}").get_data(as_text=True), "open_tasks")
    assert f'/inbox/tasks/{inst["tasks"][0]["id"]}' in panel
    assert "To do" in panel                                     # the panel's own label


# -- task forms prefilled from process data ---------------------------------------------------------

def test_task_form_shows_values_the_process_already_holds(fup):
    a = fup.clients["Acme"]
    inst = fup.workflow.start("followup.followup", SYS, {"client_id": a, "title": "Ring Acme", "channel": "email",
                                                         "unrelated": 5})
    tid = inst["tasks"][0]["id"]
    assert fup.workflow.prefill(tid) == {"client": a, "title": "Ring Acme", "channel": "email"}
    agent = _client(fup, "agent3", roles=["followup.agent"])
    page = agent.get(f"/inbox/tasks/{tid}").get_data(as_text=True)
    assert re.search(rf'name="client" value="{a}"', page)
    assert 'value="Acme"' in page                           # the link shows its record's title
    assert 'value="Ring Acme"' in page
    assert re.search(r'<option value="email"[^>]*selected', page)
    # submitting the prefilled form creates the record with those values
    r = agent.post(f"/inbox/tasks/{tid}/complete", {"client": str(a), "title": "Ring Acme", "channel": "email"})
    assert r.status_code == 302
    tickets = fup.query.list(fup.model.entity("followup.ticket"), SYS, ListRequest())["items"]
    assert [(t["client"], t["title"]) for t in tickets] == [(a, "Ring Acme")]
    # the next task edits that ticket: its own values win over the process data
    nxt = fup.workflow.instance(inst["id"])["tasks"][0]["id"]
    fup.records.update("followup.ticket", tickets[0]["id"], {"title": "Renamed"}, SYS,
                       expected_version=tickets[0]["version"])
    page = agent.get(f"/inbox/tasks/{nxt}").get_data(as_text=True)
    assert 'value="Renamed"' in page and 'value="Ring Acme"' not in page


def test_prefill_takes_a_link_from_the_instance_subject(fup):
    b = fup.clients["Bolt"]
    inst = fup.workflow.start("followup.followup", SYS, {}, subject=("followup.client", b))
    assert fup.workflow.prefill(inst["tasks"][0]["id"]) == {"client": b}


# -- definitions are checked ------------------------------------------------------------------------

@pytest.mark.parametrize("panel, message", [
    ("{key: bad, kind: script, script: nope, inputs: {o: {entity: order, link: client}}}", "script `nope` does not exist"),
    ("{key: bad, kind: script, script: order_mix, inputs: {o: {entity: order, link: sku}}}", "is not a link to `client`"),
    ("{key: bad, kind: script, script: order_mix, inputs: {o: {entity: client, ids_from: t.client}}}",
     "names no earlier input"),
    ("{key: bad, kind: script, script: order_mix, inputs: {o: {entity: order, link: client, fields: [colour]}}}",
     "has no such field"),
    ("{key: bad, kind: script, script: order_mix, inputs: {me: {record: true, fields: [colour]}}}", "has no such field"),
    ("{key: bad, kind: script, script: order_mix, inputs: {o: {entity: order}}, from_record: {x: colour}}",
     "has no such field"),
    ("{key: bad, kind: script, script: order_mix, inputs: {o: {entity: order, where: {colour: red}}}}",
     "filter field `colour`"),
    ("{key: bad, kind: script, script: order_mix, inputs: {me: {record: true, link: client}}}", "`me`"),
    ("{key: bad, kind: tasks, via: [{entity: order, link: sku}]}", "is not a link to `client`"),
    ("{key: bad, kind: tasks, colour: red}", "colour"),
])
def test_a_bad_script_or_tasks_panel_is_rejected_with_file_and_line(loom, bundle_copy, panel, message):
    assert_panel_rejected(loom, bundle_copy("followup"), "client", panel, message)
