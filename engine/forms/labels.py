"""Labels that may be a plain string or one string per language."""
from __future__ import annotations

from typing import Any

LOCALES = ("zh-CN", "en")


def normalize_locale(locale: str | None) -> str:
    if not locale:
        return "zh-CN"
    locale = locale.replace("_", "-")
    return "en" if locale.lower().startswith("en") else "zh-CN"


def label_of(label: Any, locale: str | None = "zh-CN") -> str:
    if label is None:
        return ""
    if isinstance(label, str):
        return label
    if isinstance(label, dict):
        loc = normalize_locale(locale)
        return label.get(loc) or label.get("en") or label.get("zh-CN") or next(iter(label.values()), "")
    return str(label)
