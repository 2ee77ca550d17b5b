"""The definition-driven record page (an entity's ``page:`` panels) on the detail screen."""
from __future__ import annotations

import html
import json
import re

import pytest

from engine.errors import LoomError
from engine.records import ListRequest
from engine.security import Actor
from engine.security.users import create_user
from tests.conftest import BUNDLES
from tests.runtime.test_screens import FormClient


@pytest.fixture
def pages(loom):
    loom.install(BUNDLES / "pages")
    sysa = Actor.system()
    ent = loom.model.entity

    def add(key, **values):
        return loom.records.create(ent(f"pages.{key}"), values, sysa)["id"]

    people = {n: add("person", name=n) for n in ("Ann", "Bob", "Cat", "Dan", "Eve")}
    add("tie", person=people["Ann"], other=people["Bob"], kind="spouse")
    add("tie", person=people["Bob"], other=people["Cat"], kind="friend")      # 2 hops from Ann
    add("tie", person=people["Cat"], other=people["Dan"], kind="friend")      # 3 hops: not drawn
    add("tie", person=people["Ann"], kind="employer", party="Acme Ltd")
    add("note", person=people["Ann"], subject="Called", noted_on="2026-01-05", amount="10.50")
    add("note", person=people["Ann"], subject="Visited", noted_on="2026-03-01", amount="5")
    add("note", person=people["Bob"], subject="Bob only", noted_on="2026-02-01", amount="1")
    add("secret", person=people["Ann"], code="TOP-SECRET-7", seen_on="2026-02-10")
    loom.people = people
    return loom


def _client(loom, username, roles=(), is_admin=False):
    from engine.runtime.app import create_app
    with loom.db.begin() as conn:
        create_user(conn, username, "pass-word-123", roles=list(roles), is_admin=is_admin, locale="en")
    c = FormClient(create_app(loom, {"TESTING": True}).test_client())
    assert c.post("/login", data={"username": username, "password": "pass-word-123"}).status_code == 302
    return c


def _panel(page: str, key: str) -> str:
    m = re.search(rf'<section class="record-panel [^"]*" id="panel-{key}".*?</section>', page, re.S)
    return m.group(0) if m else ""


def _graph(page: str) -> dict:
    m = re.search(r"data-option='([^']*)'", page)
    assert m, "no graph on the page"
    return json.loads(html.unescape(m.group(1)))


def test_panels_render_for_a_reader_of_everything(pages):
    c = _client(pages, "keeper", roles=["pages.keeper"])
    r = c.get(f"/r/pages/person/{pages.people['Ann']}")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    notes = _panel(page, "notes")
    # newest first (sort -noted_on), only Ann's notes, amounts formatted
    assert notes.index("Visited") < notes.index("Called") and "Bob only" not in notes
    assert "10.50" in notes
    assert "TOP-SECRET-7" in _panel(page, "secrets")
    timeline = _panel(page, "activity")
    # merged by date across entities, newest first: Visited (03-01) > secret (02-10) > Called (01-05)
    assert timeline.index("Visited") < timeline.index("TOP-SECRET-7") < timeline.index("Called")
    totals = _panel(page, "totals")
    assert "Called" in totals and "Visited" in totals and "Bob only" not in totals
    assert "echarts.min.js" in page and "records/graph.js" in page
    # the report as a chart: the dashboards' bar options, one bar per subject of Ann's notes
    chart = json.loads(html.unescape(re.search(r"data-option='([^']*)'", _panel(page, "totals_chart")).group(1)))
    assert chart["series"][0]["type"] == "bar"
    assert dict(zip(chart["xAxis"]["data"], chart["series"][0]["data"])) == {"Called": 10.5, "Visited": 5.0}


def test_a_user_who_cannot_read_an_entity_does_not_see_its_rows(pages):
    c = _client(pages, "viewer", roles=["pages.viewer"])
    page = c.get(f"/r/pages/person/{pages.people['Ann']}").get_data(as_text=True)
    assert "Called" in _panel(page, "notes")
    assert _panel(page, "secrets") == ""
    assert "TOP-SECRET-7" not in page
    assert "Called" in _panel(page, "activity")


def test_graph_options_hold_the_network_two_hops_deep(pages):
    c = _client(pages, "viewer2", roles=["pages.viewer"])
    p = pages.people
    option = _graph(c.get(f"/r/pages/person/{p['Ann']}").get_data(as_text=True))
    series = option["series"][0]
    assert series["type"] == "graph"
    names = {n["name"] for n in series["data"]}
    assert names == {"Ann", "Bob", "Cat", "Acme Ltd"}          # Dan is three hops away
    centre = next(n for n in series["data"] if n["name"] == "Ann")
    assert centre["category"] == 0 and centre["value"].endswith(f"/r/pages/person/{p['Ann']}")
    edges = {(e["source"], e["target"], e["value"]) for e in series["links"]}
    ids = {n["name"]: n["id"] for n in series["data"]}
    assert (ids["Ann"], ids["Bob"], "Spouse") in edges
    assert (ids["Bob"], ids["Cat"], "Friend") in edges
    assert (ids["Ann"], ids["Acme Ltd"], "Employer") in edges
    assert len(edges) == 3


def test_a_page_without_panels_keeps_the_plain_detail_screen(pages):
    c = _client(pages, "admin", is_admin=True)
    note_id = pages.query.list(pages.model.entity("pages.note"), Actor.system(), ListRequest())["items"][0]["id"]
    page = c.get(f"/r/pages/note/{note_id}").get_data(as_text=True)
    assert "record-panels" not in page and "graph.js" not in page


@pytest.mark.parametrize("panel, message", [
    ("{key: bad, kind: related, entity: note, link: subject}", "is not a link to `person`"),
    ("{key: bad, kind: related, entity: nothing, link: person}", "entity `nothing` does not exist"),
    ("{key: bad, kind: graph, entity: tie, from: person, to: other, type: colour}", "has no such field"),
    ("{key: bad, kind: report, report: nope, param: person}", "report `nope` does not exist"),
    ("{key: bad, kind: related, entity: note}", "link"),
])
def test_a_bad_panel_is_rejected_at_install_with_file_and_line(loom, bundle_copy, panel, message):
    assert_panel_rejected(loom, bundle_copy("pages"), "person", panel, message)
    assert "pages.person" not in loom.model.entities


def assert_panel_rejected(loom, src, entity: str, panel: str, message: str) -> None:
    """Append ``panel`` to the last page of ``entities/<entity>.yaml`` in the bundle copy ``src``:
    the install must fail with a problem containing ``message`` at that file and line."""
    path = src / "entities" / f"{entity}.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text + f"    - {panel}\n", encoding="utf-8")
    line = text.count("\n") + 1
    with pytest.raises(LoomError) as exc:
        loom.install(src)
    probs = [p for p in exc.value.problems if message in p.message]
    assert probs, [p.message for p in exc.value.problems]
    assert probs[0].file.endswith(f"{entity}.yaml") and probs[0].line == line
