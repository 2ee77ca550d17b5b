"""The reports service (``loom.extensions["reports"].reports``): definitions, runs, drill-down.

Definitions are read from the definition store (kind ``report``) and parsed once per model
revision. :meth:`Reports.run` compiles one statement (see :mod:`engine.reports.compiler`),
executes it, and shapes the already-aggregated rows for the caller: detail rows, subtotal rows,
grand totals, and a pivot layout. :meth:`Reports.records` lists the source records behind a
figure through the same scoped SELECT and joins, and builds the list-screen URL with the filters
that the list screen understands.
"""
from __future__ import annotations

import threading
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Mapping
from urllib.parse import urlencode

import sqlalchemy as sa

from engine.errors import InvalidInput, NotFound, Problem
from engine.forms.labels import label_of
from engine.meta import store
from engine.records.serialize import record_to_json, to_json_value
from engine.reports.compiler import Compiled, ReportCompiler, coerce_measure
from engine.reports.definition import Report, parse_report
from engine.reports.params import resolve_params


def parse_drill(raw: str | None) -> dict[str, str]:
    """``branch:3,team:7`` -> {"branch": "3", "team": "7"}."""
    out = {}
    for part in (raw or "").split(","):
        if not part:
            continue
        k, sep, v = part.partition(":")
        if not sep or not k:
            raise InvalidInput(problems=[Problem(f"`drill` must look like level:id,level:id (got `{raw}`)",
                                                 field="drill", code="parameter")])
        out[k] = v
    return out


def format_drill(drill: Mapping[str, Any]) -> str:
    return ",".join(f"{k}:{v}" for k, v in drill.items())


class Reports:
    def __init__(self, loom):
        self.loom = loom
        self._cache: dict[tuple[str, str], Report] = {}
        self._revision = None
        self._lock = threading.Lock()
        self.rollups = None              # set by the extension (engine.reports.rollup.Rollups)

    # -- definitions -----------------------------------------------------------------------------

    def _fresh(self) -> None:
        rev = self.loom.model.revision
        if rev != self._revision:
            with self._lock:
                self._cache.clear()
                self._revision = rev

    def definition(self, app: str, key: str) -> Report:
        self._fresh()
        ck = (app, key)
        if ck not in self._cache:
            with self.loom.db.connect() as conn:
                stored = store.get(conn, app, "report", key)
            if stored is None:
                raise NotFound(f"no report `{app}.{key}`",
                               problems=[Problem(f"no report `{app}.{key}` is installed", code="not_found")])
            self._cache[ck] = parse_report(app, stored.body)
        return self._cache[ck]

    def list(self, app: str, actor) -> list[dict]:
        with self.loom.db.connect() as conn:
            defs = store.current(conn, app, "report")
        out = []
        for d in defs:
            rep = self.definition(app, d.key)
            ent = self.loom.model.entities.get(rep.source_key)
            if ent is None or not (actor.is_system or self.loom.policy.can(actor, ent, "read")):
                continue
            out.append({"key": rep.key, "label": rep.title(actor.locale), "source": rep.source_key,
                        "parameters": list(rep.parameters)})
        return out

    # -- running ---------------------------------------------------------------------------------

    def compile(self, report: Report | str, actor, raw_params: Mapping[str, Any] | None = None, *, app=None,
                rows=None, columns=None, level=None, drill=None, dim_filters=None, action="read",
                measures=None, limit=None, use_rollup: bool = True) -> Compiled:
        rep = report if isinstance(report, Report) else self.definition(app, report)
        raw = dict(raw_params or {})
        params = resolve_params(rep, raw)
        rollup = None
        if use_rollup and rep.rollup and self.rollups is not None:
            rollup = self.rollups.usable(rep, actor)
        return ReportCompiler(self.loom, rep, actor, params, rows=rows, columns=columns, level=level, drill=drill,
                              dim_filters=dim_filters, action=action, rollup=rollup, measures=measures,
                              limit=limit).compile()

    def run(self, report: Report | str, actor, raw_params: Mapping[str, Any] | None = None, **kw) -> dict:
        compiled = self.compile(report, actor, raw_params, **kw)
        with self.loom.db.connect() as conn:
            rows = conn.execute(compiled.statement).mappings().all()
        return shape(compiled, rows, actor.locale, self.loom)

    def sql(self, report, actor, raw_params=None, **kw) -> str:
        compiled = self.compile(report, actor, raw_params, **kw)
        return str(compiled.statement.compile(self.loom.db, compile_kwargs={}))

    # -- drill to records ------------------------------------------------------------------------

    def records(self, report: Report | str, actor, raw_params: Mapping[str, Any] | None = None, *, app=None,
                drill: dict | None = None, dim_filters: dict | None = None, limit: int = 200) -> dict:
        """The source records behind a figure, through the same scope, joins and filters."""
        rep = report if isinstance(report, Report) else self.definition(app, report)
        params = resolve_params(rep, dict(raw_params or {}))
        comp = ReportCompiler(self.loom, rep, actor, params, rows=[], columns=[], drill=drill or {},
                              dim_filters=dim_filters or {}, measures=[])
        src = comp.source
        conds = comp.conditions() + comp.joiner.where
        q = (self.loom.query.scoped_select(src, actor, "read").select_from(comp.joiner.from_)
             .where(*conds).order_by(src.table.c.id).limit(limit))
        with self.loom.db.connect() as conn:
            rows = conn.execute(q).mappings().all()
        rules = self.loom.records._rules(actor, src)
        items = [record_to_json(src, self.loom.records._decode_row(src, r), rules) for r in rows]
        return {"items": items, "list_url": list_url(rep, src, params, drill or {}, dim_filters or {}),
                "truncated": len(items) >= limit}


def list_url(rep: Report, src, params: dict, drill: dict, dim_filters: dict) -> str:
    """The list screen (/app/<app>/<entity>) with every filter it can express (own fields only)."""
    q: dict[str, str] = {}
    for key, p in rep.parameters.items():
        v = params.get(key)
        if p.field and "." not in p.field and v is not None:
            q[p.field if p.op == "eq" else f"{p.field}__{p.op}"] = str(to_json_value(v))
    for dim in rep.dimensions.values():
        for lv in dim.levels:
            if lv.key in drill and "." not in lv.field:
                q[lv.field] = str(drill[lv.key])
    for key, value in dim_filters.items():
        dim = rep.dimensions[key]
        if "." in (dim.field or "."):
            continue
        if dim.bucket:
            lo, hi = bucket_range(dim.bucket, str(value))
            q[f"{dim.field}__between"] = f"{lo.isoformat()},{hi.isoformat()}"
        else:
            q[dim.field] = str(value)
    return f"/app/{src.app}/{src.key}" + (f"?{urlencode(q)}" if q else "")


def bucket_range(bucket: str, text: str) -> tuple[date, date]:
    if bucket == "day":
        d = date.fromisoformat(text)
        return d, d
    if bucket == "week":
        d = date.fromisoformat(text)
        return d, d + timedelta(days=6)
    if bucket == "month":
        y, m = map(int, text.split("-"))
        nxt = date(y + (m == 12), m % 12 + 1, 1)
        return date(y, m, 1), nxt - timedelta(days=1)
    if bucket == "quarter":
        y, q = text.split("-Q")
        y, q = int(y), int(q)
        start = date(y, 3 * q - 2, 1)
        end = date(y + (q == 4), (3 * q) % 12 + 1, 1) - timedelta(days=1)
        return start, end
    y = int(text)
    return date(y, 1, 1), date(y, 12, 31)


def shape(compiled: Compiled, rows, locale: str, loom) -> dict:
    """Already aggregated rows -> JSON-ready detail rows, subtotals, totals and a pivot layout."""
    rep = compiled.report
    dim_keys = [c.key for c in compiled.columns if c.kind == "dimension"]
    mcols = [c for c in compiled.columns if c.kind == "measure"]
    options = {}
    for k in dim_keys:
        f = compiled.dims[k].field
        if f is not None and f.options and not rep.dimensions[k].bucket:
            options[k] = {o.value: label_of(o.label, locale) or str(o.value) for o in f.options}
    approximate = loom is not None and loom.db.dialect.name == "sqlite"
    out_rows, subtotals, totals, by_set = [], [], None, {}
    nsets = len(compiled.sets)
    for r in rows:
        rec: dict[str, Any] = {}
        s = r["_set"]
        rs, cs = compiled.sets[s]
        for k in dim_keys:
            if k not in rs and k not in cs:
                rec[k] = None
                continue
            d = compiled.dims[k]
            raw = r[k]
            if d.title is not None:
                rec[k] = r[f"{k}__title"] if r[f"{k}__title"] is not None else (f"#{raw}" if raw is not None else None)
                rec[f"{k}__key"] = raw
            elif k in options:
                rec[k] = options[k].get(raw, raw)
                rec[f"{k}__key"] = raw
            else:
                rec[k] = to_json_value(raw)
                if d.level is not None and d.level != "top":
                    rec[f"{k}__key"] = to_json_value(raw)
        for c in mcols:
            rec[c.key] = coerce_measure(r[c.key], c, approximate)
        by_set.setdefault(s, []).append(rec)
    out_rows = by_set.get(0, [])
    for s in range(1, nsets):
        rs, cs = compiled.sets[s]
        if not rs and not cs:
            totals = (by_set.get(s) or [None])[0]
            if totals is None:
                totals = {c.key: (0 if c.key in _counts(compiled) else None) for c in mcols}
        elif not compiled.report.columns or cs == [k for k in compiled.sets[0][1]]:
            for rec in by_set.get(s, []):
                subtotals.append({**rec, "_level": len(rs)})
    result = {"report": rep.key, "label": rep.title(locale),
              "columns": [c.__dict__ for c in compiled.columns],
              "rows": [_json(r) for r in out_rows],
              "subtotals": [_json(r) for r in subtotals],
              "totals": _json(totals) if totals is not None else None,
              "parameters": {k: to_json_value(v) for k, v in compiled.params.items()},
              "hierarchy": compiled.hierarchy}
    if compiled.sets[0][1]:
        result["pivot"] = pivot(compiled, by_set)
    return result


def _counts(compiled) -> set:
    return {m.key for m in compiled.measures if m.agg in {"count", "count_distinct"}}


def _json(rec: dict | None) -> dict | None:
    if rec is None:
        return None
    return {k: (str(v) if isinstance(v, Decimal) else to_json_value(v)) for k, v in rec.items()}


def pivot(compiled: Compiled, by_set: dict[int, list[dict]]) -> dict:
    """Rows x columns layout: header values, one line per row key (with subtotal lines after
    their group), cells per column key, row totals, column totals and the grand total."""
    R, C = compiled.sets[0]
    mkeys = [m.key for m in compiled.measures]
    set_index = {(tuple(rs), tuple(cs)): i for i, (rs, cs) in enumerate(compiled.sets)}

    def key_of(rec, dims):
        return tuple(str(rec.get(k)) for k in dims)

    def measures(rec):
        return {m: _json({m: rec[m]})[m] for m in mkeys}

    col_keys = []
    for rec in by_set.get(0, []):
        ck = key_of(rec, C)
        if ck not in col_keys:
            col_keys.append(ck)
    col_keys.sort()
    lines: dict[tuple, dict] = {}

    def line(rk, level, labels):
        if rk not in lines:
            lines[rk] = {"keys": list(labels), "level": level, "subtotal": level < len(R), "cells": {}, "total": None}
        return lines[rk]

    for s, recs in by_set.items():
        rs, cs = compiled.sets[s]
        if not rs:
            continue
        for rec in recs:
            rk = key_of(rec, rs)
            ln = line(rk, len(rs), rk)
            if cs:
                ln["cells"]["|".join(key_of(rec, cs))] = measures(rec)
            else:
                ln["total"] = measures(rec)
    ordered = sorted(lines.values(), key=lambda ln: (ln["keys"] + ["\uffff"] * (len(R) - len(ln["keys"]))))
    col_totals, grand = {}, None
    i = set_index.get(((), tuple(C)))
    if i is not None:
        for rec in by_set.get(i, []):
            col_totals["|".join(key_of(rec, C))] = measures(rec)
    i = set_index.get(((), ()))
    if i is not None and by_set.get(i):
        grand = measures(by_set[i][0])
    return {"row_dims": R, "col_dims": C, "columns": ["|".join(ck) for ck in col_keys], "measures": mkeys,
            "lines": ordered, "column_totals": col_totals, "grand_total": grand}
