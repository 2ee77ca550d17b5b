"""Dashboards: widgets over reports, shared filters, KPI comparison, drill, defaults, personal.

A dashboard's filter values are handed to every widget's report that declares that parameter.
KPI cards with ``compare: previous_period`` run their report a second time over the period of
the same length just before (``period: {start, end}`` names the two date filters). Bars with
``drill: true`` carry, per bar, the key to drill into the next hierarchy level; at the last
level they carry the list-screen URL of the underlying records instead.
"""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any, Mapping

import sqlalchemy as sa

from engine.errors import Forbidden, InvalidInput, NotFound, Problem
from engine.forms.labels import label_of
from engine.meta import store
from engine.reports.charts import chart_option
from engine.reports.params import coerce
from engine.reports.service import format_drill, list_url, parse_drill
from engine.reports.tables import personal_dashboards

CHARTS = {"bar", "line", "pie", "funnel", "treemap"}
PERSONAL = "_personal"


class Dashboards:
    def __init__(self, loom, reports):
        self.loom = loom
        self.reports = reports

    # -- definitions -----------------------------------------------------------------------------

    def definition(self, app: str, key: str, actor) -> dict:
        if key == PERSONAL:
            body = self.personal(app, actor)
            if body is None:
                raise NotFound("no personal dashboard yet")
            return body
        with self.loom.db.connect() as conn:
            stored = store.get(conn, app, "dashboard", key)
        if stored is None:
            raise NotFound(f"no dashboard `{app}.{key}`",
                           problems=[Problem(f"no dashboard `{app}.{key}` is installed", code="not_found")])
        body = stored.body
        roles = body.get("roles") or []
        if roles and not actor.is_system and not actor.is_admin and not (
                set(roles) | {f"{app}.{r}" for r in roles}) & set(actor.roles):
            raise Forbidden(f"dashboard `{key}` is not shared with your roles")
        return body

    def list(self, app: str, actor) -> list[dict]:
        with self.loom.db.connect() as conn:
            defs = store.current(conn, app, "dashboard")
        out = []
        for d in defs:
            roles = d.body.get("roles") or []
            if roles and not actor.is_admin and not (set(roles) | {f"{app}.{r}" for r in roles}) & set(actor.roles):
                continue
            out.append({"key": d.key, "label": label_of(d.body.get("label"), actor.locale) or d.key})
        return out

    def default_for(self, app: str, actor) -> str | None:
        """The viewer's personal dashboard, else the first whose ``default_for`` names a role of theirs."""
        if actor.user_id is not None and self.personal(app, actor) is not None:
            return PERSONAL
        with self.loom.db.connect() as conn:
            defs = store.current(conn, app, "dashboard")
        mine = set(actor.roles) | {r.split(".", 1)[-1] for r in actor.roles}
        for d in defs:
            if mine & set(d.body.get("default_for") or []):
                return d.key
        return defs[0].key if defs else None

    # -- personal --------------------------------------------------------------------------------

    def personal(self, app: str, actor) -> dict | None:
        if actor.user_id is None:
            return None
        t = personal_dashboards
        with self.loom.db.connect() as conn:
            return conn.execute(sa.select(t.c.body).where(t.c.user_id == actor.user_id, t.c.app == app)).scalar()

    def save_personal(self, app: str, actor, body: dict) -> dict:
        from datetime import datetime, timezone
        from engine.meta.schema import iter_problems
        if actor.user_id is None:
            raise Forbidden("only a signed-in user has a personal dashboard")
        body = {**body, "key": body.get("key") or "personal", "label": body.get("label") or {"zh-CN": "我的看板", "en": "My dashboard"}}
        problems = [Problem(msg, path="/".join(map(str, path)) or None, code="schema")
                    for msg, path in iter_problems("dashboard", body)]
        for i, w in enumerate(body.get("widgets") or []):
            try:
                rep = self.reports.definition(app, w.get("report"))
            except NotFound:
                problems.append(Problem(f"widget `{w.get('key')}`: no report `{w.get('report')}`",
                                        path=f"widgets/{i}/report", code="reference"))
                continue
            for m in [w.get("measure")] + list(w.get("measures") or []):
                if m and m not in rep.measures:
                    problems.append(Problem(f"widget `{w.get('key')}`: report `{rep.key}` has no measure `{m}`",
                                            path=f"widgets/{i}", code="reference"))
        if problems:
            raise InvalidInput("the dashboard is not valid", problems=problems)
        t = personal_dashboards
        now = datetime.now(timezone.utc)
        with self.loom.db.begin() as conn:
            if not conn.execute(t.update().where(t.c.user_id == actor.user_id, t.c.app == app)
                                .values(body=body, updated_at=now)).rowcount:
                conn.execute(t.insert().values(user_id=actor.user_id, app=app, body=body, updated_at=now))
        return body

    # -- rendering -------------------------------------------------------------------------------

    def render(self, app: str, key: str, actor, raw: Mapping[str, Any] | None = None) -> dict:
        body = self.definition(app, key, actor)
        values = self.filter_values(body, raw or {})
        widgets = []
        for w in body["widgets"]:
            try:
                widgets.append(self.widget_payload(app, key, body, w, actor, values))
            except Forbidden as exc:
                widgets.append(self._base(w, actor) | {"error": exc.message, "forbidden": True})
        return {"key": key, "app": app, "label": label_of(body.get("label"), actor.locale) or key,
                "columns": body.get("columns", 12),
                "filters": [{"param": f["param"], "label": label_of(f.get("label"), actor.locale) or f["param"],
                             "type": f.get("type") or self._param_type(app, body, f["param"]),
                             "value": _s(values.get(f["param"]))} for f in body.get("filters") or []],
                "widgets": widgets}

    def widget(self, app: str, key: str, wkey: str, actor, raw: Mapping[str, Any] | None = None) -> dict:
        body = self.definition(app, key, actor)
        w = next((w for w in body["widgets"] if w["key"] == wkey), None)
        if w is None:
            raise NotFound(f"dashboard `{key}` has no widget `{wkey}`")
        raw = dict(raw or {})
        level, drill = raw.pop("level", None), parse_drill(raw.pop("drill", None))
        return self.widget_payload(app, key, body, w, actor, self.filter_values(body, raw), level=level, drill=drill)

    def _param_type(self, app, body, param) -> str:
        for w in body["widgets"]:
            try:
                rep = self.reports.definition(app, w["report"])
            except NotFound:
                continue
            if param in rep.parameters:
                return rep.parameters[param].type
        return "text"

    def filter_values(self, body: dict, raw: Mapping[str, Any]) -> dict:
        out = {}
        for f in body.get("filters") or []:
            p = f["param"]
            if p in raw and raw[p] != "":
                out[p] = raw[p]
            elif f.get("default") is not None:
                out[p] = f["default"]
        return out

    def _base(self, w: dict, actor) -> dict:
        return {"key": w["key"], "type": w["type"], "w": w.get("w", 4), "h": w.get("h", 2),
                "title": label_of(w.get("label"), actor.locale) or None}

    def widget_payload(self, app, dkey, body, w, actor, values, level=None, drill=None) -> dict:
        rep = self.reports.definition(app, w["report"])
        params = {k: v for k, v in values.items() if k in rep.parameters}
        params.update({k: v for k, v in (w.get("params") or {}).items() if k not in values})
        out = self._base(w, actor)
        out["title"] = out["title"] or rep.title(actor.locale)
        out["report"] = rep.key
        out["export_params"] = {k: v for k, v in params.items() if v is not None and not isinstance(v, (list, dict))}
        if w["type"] == "kpi":
            return out | self._kpi(rep, w, actor, params, body)
        if w["type"] in {"table", "pivot"}:
            res = self.reports.run(rep, actor, params)
            return out | {"result": res}
        dim = w.get("dimension") or rep.chart.get("dimension") or (rep.rows[0] if rep.rows else None)
        measures = w.get("measures") or rep.chart.get("measures") or [next(iter(rep.measures))]
        res = self.reports.run(rep, actor, params, rows=[dim] if dim else [], columns=[], level=level,
                               drill=drill or {}, measures=measures)
        out["option"] = chart_option(w["type"], res, dim, measures, stack=w.get("stack", False),
                                     horizontal=w.get("horizontal", False))
        h = res.get("hierarchy")
        if w.get("drill") and h:
            keys = [r.get(f"{dim}__key") for r in res["rows"]]
            nxt = h["next"]
            item = {"level": h["level"], "next": nxt, "path": format_drill(h["drill"]), "keys": keys,
                    "url": f"/api/v1/dashboards/{app}/{dkey}/widgets/{w['key']}"}
            if nxt is None:
                src = self.loom.model.entities[rep.source_key]
                typed = self.reports.compile(rep, actor, params, rows=[], measures=[]).params
                item["records"] = [list_url(rep, src, typed, {**h["drill"], h["level"]: k}, {}) for k in keys]
            out["drill"] = item
        return out

    def _kpi(self, rep, w, actor, params, body) -> dict:
        m = w["measure"]
        res = self.reports.run(rep, actor, params, rows=[], columns=[], measures=[m])
        col = next(c for c in res["columns"] if c["key"] == m)
        value = (res["rows"][0] if res["rows"] else {}).get(m)
        out = {"value": value, "format": col["format"], "scale": col["scale"], "measure": col["label"]}
        period = body.get("period")
        if w.get("compare") == "previous_period" and period:
            typed = self.reports.compile(rep, actor, params, rows=[], measures=[m]).params
            start, end = typed.get(period["start"]), typed.get(period["end"])
            if start is not None and end is not None:
                span = (end - start).days + 1
                prev = dict(params, **{period["start"]: (start - timedelta(days=span)).isoformat(),
                                       period["end"]: (start - timedelta(days=1)).isoformat()})
                pres = self.reports.run(rep, actor, prev, rows=[], columns=[], measures=[m])
                pv = (pres["rows"][0] if pres["rows"] else {}).get(m)
                out["previous"] = pv
                out["change"] = _change(value, pv)
                out["previous_period"] = [prev[period["start"]], prev[period["end"]]]
        return out


def _change(cur, prev):
    if cur is None or prev in (None, 0, "0") or Decimal(str(prev)) == 0:
        return None
    return str(((Decimal(str(cur)) - Decimal(str(prev))) / Decimal(str(prev))).quantize(Decimal("0.0001")))


def _s(v):
    return None if v is None else str(v)
