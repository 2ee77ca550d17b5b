"""How record values look on a screen: option labels, link titles, decimals, dates, masks.

Kept apart from the routes so the list, the detail view and the change history show a value the
same way. Values arrive JSON-ready (as :func:`engine.records.record_to_json` makes them).
"""
from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from engine.forms import label_of
from engine.forms.model import EntityModel, FieldModel

DISPLAY_TZ = ZoneInfo("Asia/Shanghai")


def option_label(f: FieldModel, value: Any, locale: str) -> str:
    for o in f.options:
        if o.value == value or str(o.value) == str(value):
            return label_of(o.label, locale) or str(value)
    return str(value)


def format_decimal(value: Any, scale: int | None = None) -> str:
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    if scale is None:
        scale = max(0, -d.as_tuple().exponent) if d.as_tuple().exponent < 0 else 0
    return f"{d:,.{scale}f}"


def to_local(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    dt = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(DISPLAY_TZ)


def format_value(f: FieldModel | None, value: Any, locale: str, titles: dict | None = None,
                 rule: str | None = None) -> str:
    """A value as text for a table cell or a detail line ("" when empty)."""
    if value is None or value == "" or value == []:
        return ""
    if rule == "masked" or f is None:
        return str(value)
    t = f.value_type
    if f.type in {"select"}:
        return option_label(f, value, locale)
    if f.type == "multi_select":
        return ", ".join(option_label(f, v, locale) for v in (value or []))
    if f.type == "link":
        if isinstance(value, dict):
            value = value.get("id")
        return (titles or {}).get(_int(value)) or f"#{value}"
    if t == "boolean":
        from flask_babel import gettext as _
        return _("Yes") if value in (True, "true", "True", 1) else _("No")
    if t == "decimal":
        return format_decimal(value, f.spec.get("scale"))
    if t == "integer":
        return format_decimal(value, 0)
    if t == "datetime":
        try:
            return to_local(value).strftime("%Y-%m-%d %H:%M")
        except (TypeError, ValueError):
            return str(value)
    if t == "date":
        return value.isoformat() if isinstance(value, date) else str(value)[:10]
    if f.type == "attachment":
        return value.get("name", "") if isinstance(value, dict) else str(value)
    if t == "json":
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def link_titles(loom, entity: EntityModel, actor, records: list[dict], fields: list[FieldModel]) -> dict[str, dict]:
    """field key -> {id: title} for the link fields shown, through the scoped query (unreadable
    targets simply show as ``#id``)."""
    out: dict[str, dict] = {}
    for f in fields:
        if f.type != "link":
            continue
        ids = set()
        for r in records:
            v = r.get(f.key)
            if isinstance(v, dict):
                v = v.get("id")
            if v not in (None, ""):
                try:
                    ids.add(int(v))
                except (TypeError, ValueError):
                    pass
        target = loom.model.entities.get(f.target)
        if not ids or target is None:
            continue
        try:
            out[f.key] = loom.query.titles(target, actor, ids)
        except Exception:  # noqa: BLE001 -- no read right on the target: show ids only
            out[f.key] = {}
    return out
