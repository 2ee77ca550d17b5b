"""Typed record values <-> JSON-ready values, and field masking on the way out."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from engine.forms.model import EntityModel


def to_json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def mask_value(value: Any, style: str | None) -> Any:
    """Show just enough to recognise a value: 110***********1234, 138****5678, ****1234."""
    if value is None or value == "":
        return value
    s = str(value)
    if style == "id_number" and len(s) >= 8:
        return s[:3] + "*" * (len(s) - 7) + s[-4:]
    if style == "mobile" and len(s) >= 7:
        return s[:3] + "*" * (len(s) - 7) + s[-4:]
    if style == "bank_card" and len(s) >= 4:
        return "*" * 4 + s[-4:]
    if style == "name" and len(s) >= 2:
        return s[0] + "*" * (len(s) - 1)
    if style == "email" and "@" in s:
        user, _, domain = s.partition("@")
        return (user[:1] + "***@" + domain)
    return "******"


def record_to_json(entity: EntityModel, record: dict, rules: dict[str, str] | None = None) -> dict:
    """A record dict (typed values, child rows as lists) as JSON-ready data, with field rules applied."""
    rules = rules or {}
    out: dict[str, Any] = {}
    for k, v in record.items():
        rule = rules.get(k)
        if rule == "hidden":
            continue
        f = entity.fields.get(k)
        if f is not None and f.type == "table":
            out[k] = [record_to_json(f.children, row, _child_rules(rules, k)) for row in (v or [])]
            continue
        if rule == "masked":
            out[k] = mask_value(v, f.spec.get("mask") if f is not None else None)
            continue
        out[k] = to_json_value(v)
    return out


def _child_rules(rules: dict[str, str], prefix: str) -> dict[str, str]:
    p = prefix + "."
    return {k[len(p):]: v for k, v in rules.items() if k.startswith(p)}
