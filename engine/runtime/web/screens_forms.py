"""Forms on screens: the layout from a form definition, the submitted data back into a record,
and the live state (visibility, computed values) evaluated on the server.

Input names follow the record service's problem paths (``accounts[0].positions[1].symbol``), so an
:class:`~engine.errors.InvalidInput` from ``loom.records`` lands at the field it names without any
mapping. Visibility and computed values are evaluated with the same compiled sandbox expressions
the record service uses (``FieldModel.visible_if`` / ``FieldModel.expression``), never in the
browser, so what the user sees is what the server will enforce.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from engine.errors import InvalidInput, Problem
from engine.forms import label_of
from engine.forms.model import EntityModel, FieldModel, FormModel
from engine.runtime.web.screens_format import DISPLAY_TZ, format_value, to_local

log = logging.getLogger(__name__)

NAME = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\](?:\.(.+))?)?$")
IGNORED = {"csrf_token"}


# -- layout ----------------------------------------------------------------------------------------

@dataclass
class Item:
    field: FieldModel
    label: Any
    help: Any = None
    span: int = 1
    visible_if: Any = None          # compiled form-level condition (besides the field's own)
    readonly: bool = False
    columns: list[str] | None = None


@dataclass
class Section:
    key: str
    label: Any
    columns: int
    items: list[Item]
    visible_if: Any = None
    collapsed: bool = False


@dataclass
class Tab:
    key: str
    label: Any
    sections: list[Section] = field(default_factory=list)


@lru_cache(maxsize=512)
def compile_condition(source: str):
    """A form-level ``visible_if`` compiled through the sandbox (None when it cannot be)."""
    try:
        from engine.sandbox import compile_expression
        return compile_expression(source, name="form.visible_if")
    except Exception:  # noqa: BLE001 -- forms were validated at install; a missing sandbox shows all
        log.warning("form condition not compiled: %s", source)
        return None


def layout(entity: EntityModel, form: FormModel | None) -> list[Tab]:
    """Tabs -> sections -> items; without a form definition, every field in a two-column section
    and each child table in its own section."""
    if form is None:
        scalars = [Item(f, f.label, f.spec.get("help")) for f in entity.fields.values() if not f.is_child_table]
        sections = [Section("main", None, 2, scalars)] if scalars else []
        sections += [Section(f.key, f.label, 1, [Item(f, f.label, span=4)]) for f in entity.child_fields]
        return [Tab("main", None, sections)]
    tabs: list[Tab] = []
    for i, s in enumerate(form.spec.get("sections", [])):
        tab_label = s.get("tab")
        tab_key = json.dumps(tab_label, sort_keys=True, ensure_ascii=False) if tab_label else "main"
        tab = next((t for t in tabs if t.key == tab_key), None)
        if tab is None:
            tab = Tab(tab_key, tab_label)
            tabs.append(tab)
        items = []
        for it in s.get("fields", []):
            spec = {"field": it} if isinstance(it, str) else it
            f = entity.fields.get(spec["field"])
            if f is None:
                continue
            items.append(Item(f, spec.get("label") or f.label, spec.get("help") or f.spec.get("help"),
                              4 if f.is_child_table else int(spec.get("span", 1)),
                              compile_condition(spec["visible_if"]) if spec.get("visible_if") else None,
                              bool(spec.get("readonly")), spec.get("columns")))
        tab.sections.append(Section(s.get("key") or f"s{i}", s.get("label"), int(s.get("columns", 1)), items,
                                    compile_condition(s["visible_if"]) if s.get("visible_if") else None,
                                    bool(s.get("collapsed"))))
    for n, t in enumerate(tabs):
        t.key = f"tab{n}"
    return tabs


def form_fields(tabs: list[Tab]) -> list[Item]:
    return [it for t in tabs for s in t.sections for it in s.items]


# -- submitted data -> record ------------------------------------------------------------------------

def _scalar(f: FieldModel, values: list[str]) -> Any:
    if f.type == "multi_select":
        return [v for v in values if v != ""]
    raw = values[-1] if values else None
    if raw is None:
        return None
    if f.type == "boolean":
        return raw in {"true", "on", "1"}
    if raw.strip() == "":
        return None
    if f.type in {"decimal", "integer"}:
        return raw.replace(",", "").replace(" ", "")
    if f.type == "datetime":
        try:
            dt = datetime.fromisoformat(raw)
        except ValueError:
            return raw
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=DISPLAY_TZ)
        return dt.isoformat()
    if f.type in {"json", "attachment"}:
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def parse_form(entity: EntityModel, form, allowed: set[str] | None = None, drop_empty: bool = False) -> dict:
    """A submitted form (a MultiDict) as record data with child rows as ordered lists.

    ``allowed`` limits the top-level fields taken (the editable fields that were rendered). Row
    indexes may have gaps (rows removed in the browser); rows keep their order. Empty inputs are
    left out of child rows (rows are written whole) and, with ``drop_empty`` (new records), of the
    record, so an empty required field reads "required" and defaults apply.
    """
    tree: dict = {}
    for name in form.keys():
        if name.startswith("_") or name in IGNORED:
            continue
        _put(tree, name, form.getlist(name))
    for path in form.getlist("_table"):
        _put(tree, path, None, table_marker=True)
    return _build(entity, tree, allowed, drop_empty)


def _put(tree: dict, name: str, values, table_marker: bool = False) -> None:
    m = NAME.match(name)
    if not m:
        return
    key, idx, rest = m.group(1), m.group(2), m.group(3)
    if idx is None:
        if table_marker:
            tree.setdefault(key, {"__rows__": {}})
        else:
            tree[key] = values
        return
    node = tree.setdefault(key, {"__rows__": {}})
    if not isinstance(node, dict):
        return
    row = node["__rows__"].setdefault(int(idx), {})
    if rest:
        _put(row, rest, values, table_marker)


def _build(entity: EntityModel, tree: dict, allowed: set[str] | None, drop_empty: bool) -> dict:
    out: dict = {}
    for key, node in tree.items():
        f = entity.fields.get(key)
        if key == "id" and entity.is_child:
            v = node[-1] if isinstance(node, list) and node else None
            if v not in (None, ""):
                out["id"] = int(v) if str(v).isdigit() else v
            continue
        if f is None or f.type == "computed" or (allowed is not None and key not in allowed):
            continue
        if f.is_child_table:
            rows = node.get("__rows__", {}) if isinstance(node, dict) else {}
            out[key] = [_build(f.children, rows[i], None, True) for i in sorted(rows)]
        elif isinstance(node, list):
            value = _scalar(f, node)
            if value is not None or not drop_empty:
                out[key] = value
    return out


# -- errors --------------------------------------------------------------------------------------

def errors_by_field(problems: list[Problem]) -> tuple[dict[str, list[str]], list[str]]:
    """Problems by input name, and the ones that name no field (shown above the form)."""
    by_field: dict[str, list[str]] = {}
    general: list[str] = []
    for p in problems:
        if p.field:
            by_field.setdefault(p.field, []).append(p.message)
        else:
            general.append(p.message)
    return by_field, general


# -- live state: visibility and computed values -------------------------------------------------------

def typed_values(entity: EntityModel, data: dict, locale: str) -> dict:
    """Best-effort typed values for expressions: fields that do not parse yet are left out."""
    if entity.validator is None:
        return dict(data)
    attempt = dict(data)
    for _ in range(3):
        try:
            return {**attempt, **entity.validator.load(attempt, partial=True, locale=locale)}
        except InvalidInput as exc:
            bad = {re.split(r"[\[.]", p.field or "", maxsplit=1)[0] for p in exc.problems}
            if not bad - {""}:
                break
            attempt = {k: v for k, v in attempt.items() if k not in bad}
    return attempt


def _evaluate(compiled, ns: dict, api=None):
    return compiled.evaluate(ns, api=api)


def _namespace(entity: EntityModel, values: dict) -> dict:
    ns = {f.key: values.get(f.key) for f in entity.fields.values()}
    if "id" in values:
        ns["id"] = values["id"]
    return ns


def compute(entity: EntityModel, values: dict, api=None) -> dict:
    """Fill computed fields (in declaration order, twice, so one may read another) in place,
    rows of child tables included; a failing expression leaves None."""
    for f in entity.child_fields:
        for row in values.get(f.key) or []:
            compute(f.children, row, api)
    comp = [f for f in entity.computed_fields if f.expression is not None]
    for _ in range(2 if len(comp) > 1 else 1):
        for f in comp:
            try:
                values[f.key] = _evaluate(f.expression, _namespace(entity, values), api)
            except Exception:  # noqa: BLE001 -- a preview; the save reports the real error
                values[f.key] = None
    return values


def is_visible(compiled, ns: dict, api=None) -> bool:
    if compiled is None:
        return True
    try:
        return bool(_evaluate(compiled, ns, api))
    except Exception:  # noqa: BLE001 -- an expression that fails on partial input shows the field
        return True


def hidden_paths(entity: EntityModel, tabs: list[Tab], values: dict, api=None) -> set[str]:
    """Input paths (fields, rows' fields) and section keys (``§key``) hidden by ``visible_if``."""
    hidden: set[str] = set()
    ns = _namespace(entity, values)
    for t in tabs:
        for s in t.sections:
            if not is_visible(s.visible_if, ns, api):
                hidden.add("§" + s.key)
            for it in s.items:
                if not (is_visible(it.field.visible_if, ns, api) and is_visible(it.visible_if, ns, api)):
                    hidden.add(it.field.key)
                if it.field.is_child_table:
                    _rows_hidden(it.field, values.get(it.field.key) or [], it.field.key, hidden, api)
    return hidden


def _rows_hidden(table: FieldModel, rows: list, path: str, hidden: set, api) -> None:
    child = table.children
    for i, row in enumerate(rows):
        ns = _namespace(child, row)
        for f in child.fields.values():
            p = f"{path}[{i}].{f.key}"
            if not is_visible(f.visible_if, ns, api):
                hidden.add(p)
            if f.is_child_table:
                _rows_hidden(f, row.get(f.key) or [], p, hidden, api)


def computed_outputs(entity: EntityModel, values: dict, locale: str, path: str = "") -> dict[str, str]:
    """Input path -> displayed text of each computed field (rows included)."""
    out = {}
    for f in entity.fields.values():
        if f.type == "computed":
            out[path + f.key] = format_value(f, values.get(f.key), locale)
        elif f.is_child_table:
            for i, row in enumerate(values.get(f.key) or []):
                out.update(computed_outputs(f.children, row, locale, f"{path}{f.key}[{i}]."))
    return out


# -- input values ---------------------------------------------------------------------------------

def input_value(f: FieldModel, value: Any) -> Any:
    """A stored (JSON-ready) or submitted value as an HTML input wants it."""
    if value is None:
        return [] if f.type == "multi_select" else ""
    t = f.value_type
    if f.type == "multi_select":
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]
    if t == "boolean":
        return value in (True, "true", "True", "on", "1", 1)
    if t == "datetime":
        try:
            return to_local(value).strftime("%Y-%m-%dT%H:%M")
        except (TypeError, ValueError):
            return str(value)
    if t == "date":
        return str(value)[:10]
    if f.type in {"json", "attachment"}:
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if f.type == "link" and isinstance(value, dict):
        return str(value.get("id", ""))
    return str(value)


def dom_id(path: str) -> str:
    return "f-" + re.sub(r"[^A-Za-z0-9_-]", "-", path)


def label(value, locale: str) -> str:
    return label_of(value, locale)
