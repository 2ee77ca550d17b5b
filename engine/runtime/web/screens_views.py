"""View models for the record screens: plain dicts the templates render without logic.

Each builder takes the entity model, the values and the actor's field rules and says, per input,
what it is (widget), what it shows, whether it is disabled, masked, hidden or in error. Keeping
this in Python keeps the templates dumb and lets the Flask tests check behaviour directly.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from flask import url_for

from engine.forms import label_of
from engine.forms.model import EntityModel, FieldModel
from engine.runtime.web.screens_format import format_value
from engine.runtime.web.screens_forms import Item, Tab, dom_id, input_value

WIDGETS = {"text": "text", "long_text": "textarea", "integer": "number", "decimal": "decimal",
           "boolean": "checkbox", "date": "date", "datetime": "datetime", "select": "select",
           "multi_select": "multi", "link": "link", "attachment": "attachment", "email": "email",
           "phone": "tel", "json": "textarea", "computed": "output"}


@dataclass
class FormContext:
    """What every input of one form needs to know."""
    loom: Any
    actor: Any
    entity: EntityModel               # the top-level entity
    mode: str                         # "create" | "edit"
    rules: dict[str, str]
    errors: dict[str, list[str]] = field(default_factory=dict)
    hidden: set[str] = field(default_factory=set)
    uploads: bool = True
    _titles: dict = field(default_factory=dict)

    @property
    def locale(self) -> str:
        return self.actor.locale

    def title(self, f: FieldModel, value) -> str:
        if value in (None, ""):
            return ""
        try:
            ident = int(value.get("id") if isinstance(value, dict) else value)
        except (TypeError, ValueError):
            return str(value)
        key = (f.target, ident)
        if key not in self._titles:
            target = self.loom.model.entities.get(f.target)
            try:
                self._titles[key] = self.loom.query.titles(target, self.actor, {ident}).get(ident, f"#{ident}")
            except Exception:  # noqa: BLE001 -- unreadable target: show the id
                self._titles[key] = f"#{ident}"
        return self._titles[key]


def editable_fields(ctx: FormContext, tabs: list[Tab]) -> set[str]:
    """Top-level fields the form may submit (rendered, not read-only, not masked, not hidden)."""
    out = set()
    for t in tabs:
        for s in t.sections:
            for it in s.items:
                v = field_view(ctx, it.field, it.field.key, it.field.key, None, it)
                if v is not None and not v["disabled"]:
                    out.add(it.field.key)
    return out


def field_view(ctx: FormContext, f: FieldModel, path: str, chain: str, value: Any, item: Item | None = None,
               in_row: bool = False) -> dict | None:
    rule = ctx.rules.get(chain)
    if rule == "hidden" or f.spec.get("hidden"):
        return None
    loc = ctx.locale
    masked = rule == "masked"
    readonly = (rule == "readonly" or f.type == "computed" or (item is not None and item.readonly)
                or (ctx.mode == "edit" and bool(f.spec.get("readonly"))))
    widget = "masked" if masked else WIDGETS.get(f.type, "text")
    if f.type == "attachment" and not ctx.uploads and not readonly:
        widget = "attachment_off"
    v = {
        "field": f, "key": f.key, "type": f.type, "widget": widget, "name": path, "id": dom_id(path),
        "path": path, "label": label_of(item.label if item else f.label, loc) or f.key,
        "help": label_of((item.help if item else None) or f.spec.get("help"), loc),
        "placeholder": label_of(f.spec.get("placeholder"), loc), "required": f.required,
        "value": input_value(f, value), "display": format_value(f, value, loc, rule=rule),
        "options": [(str(o.value), label_of(o.label, loc) or str(o.value)) for o in f.options],
        "disabled": masked or readonly, "readonly": readonly, "masked": masked, "in_row": in_row,
        "errors": ctx.errors.get(path, []), "hidden": path in ctx.hidden or (not in_row and f.key in ctx.hidden),
        "span": max(1, min(4, item.span if item else 1)), "link_title": "", "lookup_url": "",
        "min": f.spec.get("min"), "max": f.spec.get("max"), "maxlength": f.spec.get("max_length"),
        "step": _step(f),
    }
    if f.type == "link":
        v["link_title"] = ctx.title(f, value)
        v["display"] = v["link_title"]
        v["lookup_url"] = url_for("screens.lookup", app=ctx.entity.app, entity=ctx.entity.key, chain=chain)
    if f.type == "attachment" and isinstance(value, dict):
        v["display"] = value.get("name", "")
    return v


def _step(f: FieldModel) -> str | None:
    if f.type == "integer":
        return "1"
    return None


def table_view(ctx: FormContext, f: FieldModel, path: str, chain: str, rows: list, item: Item | None = None) -> dict | None:
    rule = ctx.rules.get(chain)
    if rule == "hidden":
        return None
    child = f.children
    readonly = rule in {"readonly", "masked"} or (item is not None and item.readonly)
    columns = [c for c in (item.columns if item and item.columns else list(child.fields)) if c in child.fields]
    scalar_cols = [child.fields[c] for c in columns if not child.fields[c].is_child_table
                   and ctx.rules.get(f"{chain}.{c}") != "hidden"]
    nested = [child.fields[c] for c in child.fields if child.fields[c].is_child_table]
    t = {"field": f, "path": path, "chain": chain, "id": dom_id(path) + "-rows",
         "label": label_of(item.label if item else f.label, ctx.locale) or f.key,
         "columns": [{"key": c.key, "label": label_of(c.label, ctx.locale) or c.key, "required": c.required}
                     for c in scalar_cols],
         "readonly": readonly, "errors": ctx.errors.get(path, []),
         "hidden": path in ctx.hidden, "rows": [],
         "add_url": url_for("screens.new_row", app=ctx.entity.app, entity=ctx.entity.key, chain=chain, prefix=path)}
    for i, row in enumerate(rows or []):
        t["rows"].append(row_view(ctx, f, path, chain, i, row or {}, scalar_cols, nested, readonly))
    return t


def row_view(ctx: FormContext, f: FieldModel, path: str, chain: str, index: int, row: dict,
             scalar_cols: list[FieldModel] | None = None, nested: list[FieldModel] | None = None,
             readonly: bool = False) -> dict:
    child = f.children
    if scalar_cols is None:
        scalar_cols = [c for c in child.fields.values() if not c.is_child_table
                       and ctx.rules.get(f"{chain}.{c.key}") != "hidden"]
    if nested is None:
        nested = child.child_fields
    prefix = f"{path}[{index}]"
    cells = []
    for c in scalar_cols:
        cv = field_view(ctx, c, f"{prefix}.{c.key}", f"{chain}.{c.key}", row.get(c.key), in_row=True)
        if cv is not None and readonly:
            cv["disabled"] = cv["readonly"] = True
        cells.append(cv)
    return {"index": index, "prefix": prefix, "id": row.get("id"), "dom_id": dom_id(prefix),
            "cells": cells, "readonly": readonly, "errors": ctx.errors.get(prefix, []),
            "tables": [tv for n in nested
                       if (tv := table_view(ctx, n, f"{prefix}.{n.key}", f"{chain}.{n.key}", row.get(n.key) or []))]}


def new_row_index() -> int:
    """A row index for a row added in the browser: unique and after the rendered ones."""
    return int(time.time() * 1000) % 10**10


def form_view(ctx: FormContext, tabs: list[Tab], values: dict) -> list[dict]:
    out = []
    for t in tabs:
        sections = []
        for s in t.sections:
            items = []
            for it in s.items:
                if it.field.is_child_table:
                    tv = table_view(ctx, it.field, it.field.key, it.field.key, values.get(it.field.key) or [], it)
                    if tv is not None:
                        items.append({"kind": "table", "table": tv, "span": 4})
                else:
                    fv = field_view(ctx, it.field, it.field.key, it.field.key, values.get(it.field.key), it)
                    if fv is not None:
                        items.append({"kind": "field", "field": fv, "span": fv["span"]})
            if items:
                sections.append({"key": s.key, "label": label_of(s.label, ctx.locale), "columns": s.columns,
                                 "items": items, "hidden": "§" + s.key in ctx.hidden, "collapsed": s.collapsed})
        if sections:
            out.append({"key": t.key, "label": label_of(t.label, ctx.locale), "sections": sections})
    return out


# -- read-only views (detail) ------------------------------------------------------------------------

def detail_view(ctx: FormContext, tabs: list[Tab], record: dict) -> list[dict]:
    """Sections of the detail screen: label/value pairs and child grids, as in the default form."""
    out = []
    for t in tabs:
        for s in t.sections:
            items = []
            for it in s.items:
                f = it.field
                rule = ctx.rules.get(f.key)
                if rule == "hidden" or f.key in ctx.hidden:
                    continue
                if f.is_child_table:
                    items.append({"kind": "table", "table": grid_view(ctx, f, f.key, record.get(f.key) or [],
                                                                     label_of(it.label, ctx.locale))})
                else:
                    value = record.get(f.key)
                    items.append({"kind": "field", "label": label_of(it.label, ctx.locale) or f.key,
                                  "display": (ctx.title(f, value) if f.type == "link" else
                                              format_value(f, value, ctx.locale, rule=rule)),
                                  "link": _link_url(f, value), "span": max(1, min(4, it.span)),
                                  "file": value if f.type == "attachment" and isinstance(value, dict) else None,
                                  "masked": rule == "masked", "type": f.type})
            if items:
                out.append({"key": s.key, "label": label_of(s.label, ctx.locale), "columns": s.columns,
                            "items": items, "tab": label_of(t.label, ctx.locale)})
    return out


def _link_url(f: FieldModel, value) -> str | None:
    if f.type != "link" or value in (None, ""):
        return None
    app, _, key = f.target.partition(".")
    ident = value.get("id") if isinstance(value, dict) else value
    return url_for("screens.detail", app=app, entity=key, record_id=int(ident))


def grid_view(ctx: FormContext, f: FieldModel, chain: str, rows: list, label: str | None = None) -> dict:
    child = f.children
    cols = [c for c in child.fields.values() if not c.is_child_table and ctx.rules.get(f"{chain}.{c.key}") != "hidden"]
    nested = child.child_fields
    out_rows = []
    for row in rows:
        cells = []
        for c in cols:
            value = row.get(c.key)
            cells.append({"display": ctx.title(c, value) if c.type == "link" else
                          format_value(c, value, ctx.locale, rule=ctx.rules.get(f"{chain}.{c.key}")),
                          "numeric": c.value_type in {"decimal", "integer"}, "link": _link_url(c, value)})
        out_rows.append({"cells": cells, "tables": [grid_view(ctx, n, f"{chain}.{n.key}", row.get(n.key) or [])
                                                     for n in nested if ctx.rules.get(f"{chain}.{n.key}") != "hidden"]})
    return {"label": label or label_of(f.label, ctx.locale) or f.key,
            "columns": [{"label": label_of(c.label, ctx.locale) or c.key,
                         "numeric": c.value_type in {"decimal", "integer"}} for c in cols],
            "rows": out_rows, "colspan": max(1, len(cols))}
