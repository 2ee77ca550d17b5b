"""The definition-driven record page: panels declared under an entity's ``page:`` key, rendered on
the detail screen after the profile sections.

Panel kinds (engine/meta/schemas/entity.schema.json ``$defs/panel``):

- ``related``  -- records of another entity whose link field points at this record;
- ``graph``    -- a relationship network (an edge entity with from/to link fields) around this
  record, 1-2 hops, as ECharts graph options built here (definitions never carry JavaScript);
- ``report``   -- an installed report run with one parameter bound to this record's id;
- ``timeline`` -- records of several entities linking to this one, merged by a date field;
- ``script``   -- a sandboxed bundle script computes figures from rows the viewer may read (rows
  linking to this record, records those rows link to, a summed series by date); the page shows the
  numbers the panel names and one chart of a list in the result, built here as ECharts options;
- ``tasks``    -- open workflow user tasks whose process data points at this record (or at records
  linking to it, ``via``), each linking to its task form; only tasks the viewer may open.

Every read goes through ``loom.query`` (row scopes, field rules) or the report service, which
scopes the same way; a panel over an entity the user may not read is left out, so the page of an
entity never leaks rows the list screens would not show.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime
from decimal import Decimal, InvalidOperation

from flask import Blueprint, render_template, url_for
from flask_babel import gettext as _

from engine.errors import LoomError, NotFound
from engine.forms import label_of
from engine.records import ListRequest
from engine.runtime.web.auth import current_actor, login_required
from engine.runtime.web.screens_format import format_value, to_local

log = logging.getLogger(__name__)


def _loom():
    from engine.runtime.app import get_loom
    return get_loom()


def _other(loom, ent, key: str):
    return loom.model.entities.get(key if "." in key else f"{ent.app}.{key}")


def _readable(loom, actor, other) -> bool:
    return other is not None and (actor.is_system or loom.policy.can(actor, other, "read"))


def _sort(spec: str | None) -> list[tuple[str, bool]]:
    return [(spec.lstrip("-"), spec.startswith("-"))] if spec else []


def _url(other, ident) -> str:
    return url_for("screens.detail", app=other.app, entity=other.key, record_id=int(ident))


class _Titles:
    """Link titles, fetched once per (entity, id) through the scoped query."""

    def __init__(self, loom, actor):
        self.loom, self.actor, self.cache = loom, actor, {}

    def get(self, target_key: str, ident) -> str:
        if ident in (None, ""):
            return ""
        ident = int(ident.get("id") if isinstance(ident, dict) else ident)
        key = (target_key, ident)
        if key not in self.cache:
            target = self.loom.model.entities.get(target_key)
            try:
                self.cache[key] = self.loom.query.titles(target, self.actor, {ident}).get(ident, f"#{ident}")
            except Exception:  # noqa: BLE001 -- unreadable target: show the id
                self.cache[key] = f"#{ident}"
        return self.cache[key]


def _cell(loom, actor, other, rules, titles, key: str, row: dict) -> dict:
    f = other.fields.get(key)
    value = row.get(key)
    if f is not None and f.type == "link" and rules.get(key) not in {"hidden", "masked"}:
        target = loom.model.entities.get(f.target)
        return {"display": titles.get(f.target, value), "numeric": False,
                "link": _url(target, value.get("id") if isinstance(value, dict) else value)
                if value not in (None, "") and target is not None else None}
    if f is None:
        return {"display": "" if value is None else str(value), "numeric": False, "link": None}
    return {"display": format_value(f, value, actor.locale, rule=rules.get(key)), "link": None,
            "numeric": f.value_type in {"decimal", "integer"}}


def related_panel(loom, actor, ent, record_id: int, p: dict, titles) -> dict | None:
    other = _other(loom, ent, p["entity"])
    if not _readable(loom, actor, other):
        return None
    rules = loom.records._rules(actor, other)
    if rules.get(p["link"]) in {"hidden", "masked"}:
        return None
    cols = [c for c in (p.get("columns") or other.spec.get("list", {}).get("columns") or
                        [other.title_field or "id"]) if rules.get(c) != "hidden" and c != p["link"]]
    res = loom.query.list(other, actor, ListRequest(filters=[(p["link"], "eq", record_id)], sort=_sort(p.get("sort")),
                                                   page_size=int(p.get("limit") or 10)))
    rows = []
    for item in res["items"]:
        rows.append({"url": _url(other, item["id"]),
                     "cells": [_cell(loom, actor, other, rules, titles, c, item) for c in cols]})
    return {"kind": "related", "total": res["total"], "rows": rows,
            "columns": [{"label": (other.fields[c].title(actor.locale) if c in other.fields else c),
                         "numeric": c in other.fields and other.fields[c].value_type in {"decimal", "integer"}}
                        for c in cols],
            "label": label_of(p.get("label"), actor.locale) or other.title(actor.locale),
            "more_url": url_for("screens.list_view", app=other.app, entity=other.key, **{p["link"]: record_id})}


def graph_option(loom, actor, ent, record_id: int, p: dict, titles) -> dict | None:
    """ECharts options for the network around ``record_id``: nodes are records of ``ent`` (or
    named parties that are not records), edges the rows of the edge entity the user may read."""
    edges_ent = _other(loom, ent, p["entity"])
    if not _readable(loom, actor, edges_ent):
        return None
    rules = loom.records._rules(actor, edges_ent)
    src, dst, typ, name = p["from"], p["to"], p.get("type"), p.get("name")
    if rules.get(src) in {"hidden", "masked"} or rules.get(dst) in {"hidden", "masked"}:
        return None
    limit = int(p.get("limit") or 100)
    frontier, seen_nodes, edges = {record_id}, {record_id: 0}, {}
    for hop in range(int(p.get("depth") or 1)):
        ids = sorted(frontier)
        found = []
        for col in (src, dst):
            res = loom.query.list(edges_ent, actor, ListRequest(filters=[(col, "in", ids)], page_size=limit,
                                                                with_total=False))
            found.extend(res["items"])
        frontier = set()
        for row in found:
            if row["id"] in edges or len(edges) >= limit:
                continue
            edges[row["id"]] = row
            for col in (src, dst):
                v = row.get(col)
                v = v.get("id") if isinstance(v, dict) else v
                if v is not None and int(v) not in seen_nodes:
                    seen_nodes[int(v)] = hop + 1
                    frontier.add(int(v))
        if not frontier:
            break
    typ_f = edges_ent.fields.get(typ) if typ else None
    nodes, links = {}, []

    def node(key: str, label: str, cat: int, url: str | None, ident=None):
        if key not in nodes:
            nodes[key] = {"id": key, "name": label, "category": cat, "symbolSize": 46 if cat == 0 else 30,
                          "value": url or "", "draggable": True}
            if ident is not None:
                nodes[key]["recordId"] = ident
        return key

    for ident, hop in seen_nodes.items():
        node(f"r{ident}", titles.get(ent.full_key, ident), 0 if ident == record_id else min(hop, 2),
             _url(ent, ident), ident)
    for row in edges.values():
        a = row.get(src)
        a = a.get("id") if isinstance(a, dict) else a
        b = row.get(dst)
        b = b.get("id") if isinstance(b, dict) else b
        if a is None:
            continue
        if b is not None:
            target = f"r{int(b)}"
        elif name and row.get(name) and rules.get(name) != "hidden":
            target = node(f"n{row['id']}", format_value(edges_ent.fields.get(name), row.get(name), actor.locale,
                                                        rule=rules.get(name)), 3, None)
        else:
            continue
        label = format_value(typ_f, row.get(typ), actor.locale, rule=rules.get(typ)) if typ_f else ""
        links.append({"source": f"r{int(a)}", "target": target, "value": label, "edgeId": row["id"],
                      "label": {"show": bool(label), "formatter": label}})
    cats = {"zh-CN": ["本人", "直接关联", "二度关联", "外部关联方"], "en": ["This record", "Direct", "Second degree", "Outside party"]}
    names = cats.get(actor.locale, cats["en"])
    return {"tooltip": {}, "legend": [{"data": names}],
            "series": [{"type": "graph", "layout": "force", "roam": True, "draggable": True,
                        "force": {"repulsion": 220, "edgeLength": 110, "layoutAnimation": False},
                        "label": {"show": True, "position": "right"}, "edgeSymbol": ["none", "arrow"],
                        "categories": [{"name": n} for n in names],
                        "data": list(nodes.values()), "links": links}]}


def report_panel(loom, actor, ent, record_id: int, p: dict) -> dict | None:
    reports = loom.extensions.get("reports")
    if reports is None:
        return None
    try:
        res = reports.reports.run(p["report"], actor, {p["param"]: record_id}, app=ent.app)
        rep = reports.reports.definition(ent.app, p["report"])
    except LoomError as exc:
        log.info("record page: report panel %s skipped: %s", p["key"], exc)
        return None
    cols = res.get("columns") or []
    dims = [c["key"] for c in cols if c.get("kind") == "dimension"]
    if dims and res.get("rows"):
        # an empty dimension value is a group of its own ("no industry"), not the text "None"
        unset = _("(not set)")
        res = dict(res, rows=[{**r, **{d: unset for d in dims if r.get(d) in (None, "")}} for r in res["rows"]])
    option = None
    if p.get("show") == "chart" and res.get("rows"):
        from engine.reports.charts import chart_option     # the dashboards' own option builder
        chart = rep.chart or {}
        measures = chart.get("measures") or [c["key"] for c in cols if c.get("kind") == "measure"][:1]
        option = chart_option(chart.get("type") or "bar", res, chart.get("dimension") or (dims[0] if dims else None),
                              measures)
    return {"kind": "report", "label": label_of(p.get("label"), actor.locale) or rep.title(actor.locale),
            "option": option,
            "columns": [{"key": c.get("key"), "label": c.get("label") or c.get("key"),
                         "numeric": c.get("kind") == "measure"} for c in cols],
            "rows": [[("" if r.get(c.get("key")) is None else r.get(c.get("key"))) for c in cols]
                     for r in res.get("rows") or []],
            "report_url": url_for("reports_screens.home", app=ent.app)}


def timeline_panel(loom, actor, ent, record_id: int, p: dict, titles) -> dict | None:
    limit = int(p.get("limit") or 20)
    entries = []
    for s in p["sources"]:
        other = _other(loom, ent, s["entity"])
        if not _readable(loom, actor, other):
            continue
        rules = loom.records._rules(actor, other)
        if rules.get(s["link"]) in {"hidden", "masked"} or rules.get(s["date"]) == "hidden":
            continue
        res = loom.query.list(other, actor, ListRequest(filters=[(s["link"], "eq", record_id)],
                                                       sort=[(s["date"], True)], page_size=limit, with_total=False))
        texts = [t for t in (s.get("text") or [other.title_field or "id"]) if rules.get(t) != "hidden"]
        for item in res["items"]:
            when = item.get(s["date"])
            if when in (None, ""):
                continue
            entries.append({"sort": str(when), "when": format_value(other.fields.get(s["date"]), when, actor.locale),
                            "entity": other.title(actor.locale), "url": _url(other, item["id"]),
                            "text": " · ".join(c["display"] for t in texts
                                               if (c := _cell(loom, actor, other, rules, titles, t, item))["display"])})
    entries.sort(key=lambda e: e["sort"], reverse=True)
    return {"kind": "timeline", "label": label_of(p.get("label"), actor.locale) or p["key"], "entries": entries[:limit]}


# -- script panels --------------------------------------------------------------------------------------

_SCRIPTS: dict[tuple, object] = {}
_SCRIPTS_LOCK = threading.Lock()
SCRIPT_ROWS = 2000          # rows per input; a panel is a summary of one record's rows, not a report


def _script(loom, app: str, key: str):
    """The bundle script ``key`` compiled once per published version."""
    from engine.meta import store
    from engine.sandbox import compile_script
    with loom.db.connect() as conn:
        d = store.get(conn, app, "script", key)
    if d is None:
        raise LoomError(f"script `{key}` is not installed in `{app}`")
    ck = (app, key, d.version)
    with _SCRIPTS_LOCK:
        code = _SCRIPTS.get(ck)
        if code is None:
            code = _SCRIPTS[ck] = compile_script(d.body.get("source") or "", f"{app}/scripts/{key}.py")
    return code


def _plain(row: dict, fields) -> dict:
    out = {}
    for k in fields or row.keys():
        v = row.get(k)
        out[k] = v.get("id") if isinstance(v, dict) and "id" in v else v
    return out


def _script_input(loom, actor, ent, record_id: int, name: str, spec: dict, done: dict):
    """One input of a script panel, read through the scoped query (row scopes, field rules):
    this record itself (``record: true``, an object), the rows linking to it (``link``), the
    records earlier rows point at (``ids_from``), or the rows of a reference entity (neither,
    with optional ``where`` equality filters)."""
    if spec.get("record"):
        rec = loom.records.get(ent, record_id, actor)
        rules = loom.records._rules(actor, ent)
        if any(rules.get(f) == "hidden" for f in spec.get("fields") or []):
            return None
        return _plain(rec, spec.get("fields") or None)
    other = _other(loom, ent, spec["entity"])
    if not _readable(loom, actor, other):
        return None
    rules = loom.records._rules(actor, other)
    limit = min(int(spec.get("limit") or SCRIPT_ROWS), SCRIPT_ROWS)
    if spec.get("ids_from"):
        src, col = spec["ids_from"].split(".", 1)
        ids = sorted({int(r[col]) for r in done.get(src) or [] if isinstance(r.get(col), int)})
        if not ids:
            return []
        filters = [("id", "in", ids)]
    elif spec.get("link"):
        if rules.get(spec["link"]) in {"hidden", "masked"}:
            return None
        filters = [(spec["link"], "eq", record_id)]
    else:
        filters = [(k, "eq", v) for k, v in (spec.get("where") or {}).items()]
    series = spec.get("series")
    fields = list(spec.get("fields") or [])
    if series:
        fields = [series["date"], series["value"]]
    if any(rules.get(f) == "hidden" for f in fields):
        return None
    rows = loom.query.list(other, actor, ListRequest(filters=filters, page_size=limit, with_total=False))["items"]
    rows = [_plain(r, fields or None) for r in rows]
    if spec.get("latest"):
        newest = max((str(r.get(spec["latest"])) for r in rows if r.get(spec["latest"]) not in (None, "")), default=None)
        rows = [r for r in rows if str(r.get(spec["latest"])) == newest]
    if series:
        sums: dict[str, Decimal] = {}
        for r in rows:
            when, v = r.get(series["date"]), r.get(series["value"])
            if when in (None, "") or v in (None, ""):
                continue
            sums[str(when)] = sums.get(str(when), Decimal(0)) + Decimal(str(v))
        rows = [{"date": k, "value": str(v)} for k, v in sorted(sums.items())]
    return rows


def _path(result, path: str):
    cur = result
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _number(value, fmt: str | None, scale: int | None) -> str:
    """A figure from a script result as text; "—" when the data did not allow it."""
    if value is None or value == "":
        return "—"
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    if fmt == "percent":
        return f"{(d * 100).quantize(Decimal(1).scaleb(-(2 if scale is None else scale))):,}%"
    if fmt == "integer":
        return f"{d.quantize(Decimal(1)):,}"
    places = 2 if fmt == "money" and scale is None else (4 if scale is None else scale)
    return f"{d.quantize(Decimal(1).scaleb(-places)):,}"


def _script_chart(result, chart: dict | None, locale: str) -> dict | None:
    if not chart:
        return None
    rows = _path(result, chart["rows"])
    if not isinstance(rows, list) or not rows:
        return None
    data = []
    for r in rows:
        if not isinstance(r, dict):
            continue
        name, value = r.get(chart["name"]), r.get(chart["value"])
        try:
            num = float(Decimal(str(value)))
        except (InvalidOperation, ValueError, TypeError):
            continue
        data.append({"name": label_of(name, locale) if isinstance(name, dict) else str(name), "value": round(num, 6)})
    if not data:
        return None
    title = label_of(chart.get("label"), locale)
    head = {"title": {"text": title, "left": "center", "textStyle": {"fontSize": 13}}} if title else {}
    if chart.get("type", "pie") == "pie":
        return {**head, "tooltip": {"trigger": "item", "formatter": "{b}: {c} ({d}%)"},
                "legend": {"type": "scroll", "orient": "vertical", "left": 0, "top": 30},
                "series": [{"type": "pie", "name": title, "radius": ["35%", "65%"], "center": ["62%", "55%"],
                            "data": data, "label": {"formatter": "{b} {d}%"}}]}
    return {**head, "tooltip": {"trigger": "axis"}, "grid": {"left": 60, "right": 20, "top": 40 if title else 20,
                                                            "bottom": 60},
            "xAxis": {"type": "category", "data": [d["name"] for d in data], "axisLabel": {"rotate": 30}},
            "yAxis": {"type": "value"}, "series": [{"type": "bar", "name": title, "data": [d["value"] for d in data]}]}


def script_panel(loom, actor, ent, record_id: int, p: dict) -> dict | None:
    """Run the panel's bundle script on the inputs the viewer may read; an input the viewer may not
    read leaves the whole panel out (a figure over half the data would mislead)."""
    variables, done = {}, {}
    for name, spec in (p.get("inputs") or {}).items():
        rows = _script_input(loom, actor, ent, record_id, name, spec, done)
        if rows is None:
            return None
        variables[name] = done[name] = rows
    for name, value in (p.get("values") or {}).items():
        variables.setdefault(name, value)
    if p.get("from_record"):
        rec = loom.records.get(ent, record_id, actor)
        for name, field in p["from_record"].items():
            variables[name] = _plain(rec, [field])[field]
    variables.setdefault("record_id", record_id)
    from engine.sandbox import SandboxError
    try:
        out = _script(loom, ent.app, p["script"]).execute(variables, api=loom.sandbox_api(actor))
    except SandboxError as exc:
        log.warning("record page: script panel %s failed: %s", p["key"], exc)
        return {"kind": "script", "label": label_of(p.get("label"), actor.locale) or p["key"], "option": None,
                "metrics": [], "notes": [], "error": _("The figures could not be computed.")}
    result = out.get(p.get("result") or "result")
    metrics = [{"key": m["path"], "label": label_of(m.get("label"), actor.locale) or m["path"],
                "value": _number(_path(result, m["path"]), m.get("format"), m.get("scale")),
                "empty": _path(result, m["path"]) in (None, "")}
               for m in p.get("metrics") or []]
    notes = []
    if p.get("notes"):
        for n in _path(result, p["notes"]) or []:
            msg = n.get("message") if isinstance(n, dict) else n
            notes.append(label_of(msg, actor.locale) if isinstance(msg, dict) else str(msg))
    footer = _path(result, p["footer"]) if p.get("footer") else None
    return {"kind": "script", "label": label_of(p.get("label"), actor.locale) or p["key"],
            "option": _script_chart(result, p.get("chart"), actor.locale), "metrics": metrics, "notes": notes,
            "table": _script_table(result, p.get("table"), actor.locale),
            "footer": label_of(footer, actor.locale) if isinstance(footer, dict) else footer,
            "print_url": url_for("record_page.print_panel", app=ent.app, entity=ent.key, record_id=record_id,
                                 panel=p["key"]) if p.get("printable") else None,
            "error": None}


def _script_table(result, table: dict | None, locale: str) -> dict | None:
    """A table from a list of objects in the result; label dicts shown in the viewer's language."""
    if not table:
        return None
    rows = _path(result, table["rows"])
    if not isinstance(rows, list):
        return None
    cols = [{"label": label_of(c.get("label"), locale) or c["path"], "numeric": c.get("format") is not None}
            for c in table["columns"]]
    body = []
    for r in rows:
        cells = []
        for c in table["columns"]:
            v = _path(r, c["path"]) if isinstance(r, dict) else None
            if isinstance(v, dict):
                v = label_of(v, locale)
            elif c.get("format"):
                v = _number(v, c["format"], c.get("scale"))
            elif c.get("labels") and v is not None:
                v = label_of(c["labels"].get(str(v)), locale) or v
            cells.append("" if v is None else v)
        body.append(cells)
    return {"columns": cols, "rows": body}


# -- task panels ----------------------------------------------------------------------------------------

def tasks_panel(loom, actor, ent, record_id: int, p: dict) -> dict | None:
    svc = getattr(loom, "workflow", None)
    if svc is None:
        return None
    limit = int(p.get("limit") or 20)
    found = svc.open_tasks_about(ent.full_key, [record_id], limit=limit * 3)
    for v in p.get("via") or []:
        other = _other(loom, ent, v["entity"])
        if not _readable(loom, actor, other):
            continue
        if loom.records._rules(actor, other).get(v["link"]) in {"hidden", "masked"}:
            continue
        ids = [r["id"] for r in loom.query.list(other, actor, ListRequest(
            filters=[(v["link"], "eq", record_id)], page_size=SCRIPT_ROWS, with_total=False, fields=["id"]))["items"]]
        found.extend(svc.open_tasks_about(other.full_key, ids, limit=limit * 3))
    rows, seen = [], set()
    names = {}
    for t in sorted(found, key=lambda t: (-(t["priority"] or 0), t["due_at"] or "9999", t["created_at"] or "")):
        if t["id"] in seen or not svc.may_look(actor, t | {"app": t["process"].split(".", 1)[0]}):
            continue
        seen.add(t["id"])
        if not names:
            names = {x["key"]: label_of(x["name"], actor.locale) or x["key"] for x in svc.processes()}
        due = datetime.fromisoformat(t["due_at"]) if t["due_at"] else None
        rows.append({"name": t["name"], "url": url_for("inbox.task", task_id=t["id"]),
                     "process": names.get(t["process"], t["process"]),
                     "instance_url": url_for("inbox.instance", instance_id=t["instance_id"]),
                     "assignee": t["assignee"] or "", "due": to_local(due).strftime("%Y-%m-%d %H:%M") if due else "",
                     "overdue": due is not None and due < svc.clock(), "priority": t["priority"]})
        if len(rows) >= limit:
            break
    return {"kind": "tasks", "label": label_of(p.get("label"), actor.locale) or _("Open tasks"),
            "rows": rows, "total": len(rows)}


def panels(ent, actor, record_id: int) -> list[dict]:
    """View models of the entity's page panels the actor may see (empty when it declares none)."""
    spec = (ent.spec.get("page") or {}).get("panels") or []
    if not spec:
        return []
    loom = _loom()
    titles = _Titles(loom, actor)
    out = []
    for p in spec:
        kind = p.get("kind")
        try:
            if kind == "related":
                v = related_panel(loom, actor, ent, record_id, p, titles)
            elif kind == "graph":
                opt = graph_option(loom, actor, ent, record_id, p, titles)
                v = None if opt is None else {"kind": "graph", "option": opt,
                                              "label": label_of(p.get("label"), actor.locale) or p["key"]}
            elif kind == "report":
                v = report_panel(loom, actor, ent, record_id, p)
            elif kind == "timeline":
                v = timeline_panel(loom, actor, ent, record_id, p, titles)
            elif kind == "script":
                v = script_panel(loom, actor, ent, record_id, p)
            elif kind == "tasks":
                v = tasks_panel(loom, actor, ent, record_id, p)
            else:
                v = None
        except LoomError as exc:          # e.g. a sort on a field this user may not see
            log.info("record page: panel %s skipped: %s", p.get("key"), exc)
            v = None
        if v is not None:
            v["key"] = p["key"]
            out.append(v)
    return out


# -- a printable panel ---------------------------------------------------------------------------------

bp = Blueprint("record_page", __name__)


@bp.get("/r/<app>/<entity>/<int:record_id>/print/<panel>")
@login_required
def print_panel(app: str, entity: str, record_id: int, panel: str):
    """One ``printable`` script panel on a page of its own, laid out for paper (an allocation
    proposal handed to the customer): the record's title, the date, the figures, the table and
    the footer text, without the navigation."""
    actor = current_actor()
    loom = _loom()
    ent = loom.model.entities.get(f"{app}.{entity}")
    spec = next((p for p in ((ent.spec.get("page") or {}).get("panels") or []) if p.get("key") == panel
                 and p.get("kind") == "script" and p.get("printable")), None) if ent is not None else None
    if spec is None:
        raise NotFound(_("No printable panel %(panel)s", panel=panel))
    rec = loom.records.get(ent, record_id, actor)       # 404 outside the viewer's scope
    view = script_panel(loom, actor, ent, record_id, spec)
    if view is None:
        raise NotFound(_("No printable panel %(panel)s", panel=panel))
    tf = ent.title_field
    return render_template("records/print_panel.html", panel=view, actor=actor,
                           title=str(rec.get(tf)) if tf and rec.get(tf) else f"{ent.title(actor.locale)} #{record_id}",
                           entity_title=ent.title(actor.locale),
                           back_url=url_for("screens.detail", app=app, entity=entity, record_id=record_id),
                           printed_at=to_local(datetime.now().astimezone()).strftime("%Y-%m-%d %H:%M"))


__all__ = ["panels", "graph_option"]
