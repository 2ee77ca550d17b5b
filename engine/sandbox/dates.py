"""Dates for business rules: today in the business time zone, month arithmetic, ages.

Records store aware UTC datetimes; people think in Beijing dates. ``today()`` is the business
date (Asia/Shanghai), ``now()`` the aware moment; month arithmetic clamps to the month's end
(Jan 31 + 1 month = Feb 28/29), the way contracts and statements count.
"""
from __future__ import annotations

import calendar as _stdcal
import datetime as _dt

from engine.sandbox.text import check_strftime_format

try:
    from zoneinfo import ZoneInfo
    LOCAL_TZ = ZoneInfo("Asia/Shanghai")
except Exception:  # pragma: no cover - no tz database
    LOCAL_TZ = _dt.timezone(_dt.timedelta(hours=8), "CST")


def now() -> _dt.datetime:
    """The current moment, time-zone aware (UTC) -- records store aware datetimes."""
    return _dt.datetime.now(_dt.timezone.utc)


def today() -> _dt.date:
    """Today's date in the business time zone (Asia/Shanghai)."""
    return _dt.datetime.now(LOCAL_TZ).date()


def local_time(moment: _dt.datetime) -> _dt.datetime:
    """An aware datetime shown in the business time zone (naive ones are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return moment.astimezone(LOCAL_TZ)


def add_days(day, n: int):
    return day + _dt.timedelta(days=n)


def add_months(day, n: int):
    """Same day ``n`` months later, clamped to the month's end (Jan 31 + 1 month = Feb 28/29)."""
    if not isinstance(n, int) or abs(n) > 12 * 10_000:
        raise ValueError("add_months(): the number of months must be a whole number below 120,000")
    month0 = day.month - 1 + n
    year = day.year + month0 // 12
    month = month0 % 12 + 1
    if not 1 <= year <= 9999:
        raise ValueError("add_months(): the result is outside the calendar's range")
    return day.replace(year=year, month=month, day=min(day.day, _stdcal.monthrange(year, month)[1]))


def add_years(day, n: int):
    return add_months(day, 12 * n)


def days_between(start, end) -> int:
    """Calendar days from ``start`` to ``end`` (negative if ``end`` is earlier)."""
    return (_as_date(end) - _as_date(start)).days


def months_between(start, end) -> int:
    """Whole months from ``start`` to ``end``."""
    a, b = _as_date(start), _as_date(end)
    months = (b.year - a.year) * 12 + b.month - a.month
    if months > 0 and b.day < a.day:
        months -= 1
    elif months < 0 and b.day > a.day:
        months += 1
    return months


def age(birth_date, on=None) -> int:
    """Age in whole years on ``on`` (default today) -- for suitability checks."""
    on = _as_date(on) if on is not None else today()
    b = _as_date(birth_date)
    return on.year - b.year - ((on.month, on.day) < (b.month, b.day))


def start_of_month(day):
    return day.replace(day=1)


def end_of_month(day):
    return day.replace(day=_stdcal.monthrange(day.year, day.month)[1])


def parse_date(text) -> _dt.date:
    if isinstance(text, _dt.datetime):
        return text.date()
    if isinstance(text, _dt.date):
        return text
    return _dt.date.fromisoformat(str(text)[:40].strip())


def parse_datetime(text) -> _dt.datetime:
    if isinstance(text, _dt.datetime):
        return text
    s = str(text)[:60].strip()
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    return _dt.datetime.fromisoformat(s)


def format_date(day, fmt: str = "%Y-%m-%d") -> str:
    check_strftime_format(fmt)
    return day.strftime(fmt)


def _as_date(d):
    if isinstance(d, _dt.datetime):
        return d.date()
    if isinstance(d, _dt.date):
        return d
    if isinstance(d, str):
        return parse_date(d)
    raise TypeError(f"expected a date, got {type(d).__name__}")
