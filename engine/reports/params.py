"""Viewer-chosen report parameters: typed, defaulted and validated.

A bad value is refused with a 422 problem naming the parameter; an unknown parameter is refused
too (a typo such as ``strat_date`` silently ignored would show the wrong figures). Defaults may
be literals or the relative dates ``today``, ``month_start``, ``quarter_start``, ``year_start``,
``today-<n>d``.
"""
from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

from engine.errors import InvalidInput, Problem
from engine.reports.definition import Report

#: request parameters with a meaning of their own (not report parameters)
RESERVED = {"level", "drill", "rows", "columns", "lang", "format", "page", "page_size", "widget", "dims"}


def relative_date(text: str, today: date | None = None) -> date | None:
    today = today or date.today()
    if text == "today":
        return today
    if text == "month_start":
        return today.replace(day=1)
    if text == "quarter_start":
        return today.replace(month=(today.month - 1) // 3 * 3 + 1, day=1)
    if text == "year_start":
        return today.replace(month=1, day=1)
    m = re.fullmatch(r"today-(\d+)d", text)
    if m:
        return today - timedelta(days=int(m.group(1)))
    return None


def coerce(ptype: str, raw: Any, options: list | None = None):
    if raw is None or raw == "":
        return None
    if ptype == "date":
        if isinstance(raw, date):
            return raw
        rel = relative_date(str(raw))
        return rel if rel is not None else date.fromisoformat(str(raw))
    if ptype == "integer":
        if isinstance(raw, bool):
            raise ValueError
        return int(str(raw))
    if ptype == "decimal":
        try:
            value = Decimal(str(raw))
        except InvalidOperation:
            raise ValueError from None
        if not value.is_finite():
            raise ValueError
        return value
    if ptype == "boolean":
        text = str(raw).lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise ValueError
    if ptype == "select":
        if options and raw not in options:
            raise ValueError
        return str(raw)
    return str(raw)


def resolve_params(report: Report, raw: Mapping[str, Any], *, strict: bool = True) -> dict[str, Any]:
    """Typed values for every declared parameter (None when not given and no default)."""
    problems = []
    values: dict[str, Any] = {}
    for key, p in report.parameters.items():
        given = raw.get(key) if key in raw else p.default
        try:
            values[key] = coerce(p.type, given, p.options)
        except (ValueError, TypeError):
            hint = f"one of {', '.join(map(str, p.options))}" if p.type == "select" else f"a {p.type}"
            problems.append(Problem(f"parameter `{key}`: `{given}` is not {hint}", field=key, code="parameter"))
            continue
        if p.required and values[key] is None:
            problems.append(Problem(f"parameter `{key}` is required", field=key, code="parameter"))
    if strict:
        for key in raw:
            if key not in report.parameters and key not in RESERVED and not key.startswith("_"):
                problems.append(Problem(f"report `{report.key}` has no parameter `{key}`; parameters: "
                                        f"{', '.join(report.parameters) or '(none)'}", field=key, code="parameter"))
    if problems:
        raise InvalidInput("invalid report parameters", problems=problems)
    return values
