"""Working days: weekends, public holidays and make-up working days (调休), set from data.

Chinese business calendars move working days around every year: a public holiday on a Thursday
is bridged to the weekend and the Saturday (or Sunday) before becomes a working day. So a calendar
is three sets -- the weekend weekdays, the holidays, the make-up working days -- loaded from a
bundle or settings each year, never hard-coded. Counting is arithmetic plus a binary search over
the sorted exceptions, so adding 10,000 working days costs the same as adding one.

Semantics (the same as ``numpy.busday_count`` / ``busday_offset(roll="forward")``):

* ``working_days_between(start, end)`` counts working days in ``[start, end)``; negative when
  ``end < start``;
* ``add_working_days(d, n)`` is the n-th working day after ``d`` (``d`` itself not counted);
  negative ``n`` goes back; ``n == 0`` gives ``d`` if it is a working day, else the next one.
  A ``datetime`` keeps its time of day.
"""
from __future__ import annotations

import bisect
import datetime as _dt
import threading
from typing import Iterable

MAX_OFFSET = 1_000_000
_WEEKDAY_NAMES = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


def _to_date(value, what: str) -> _dt.date:
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{what}: expected a date or an ISO date like 2025-10-01, got {value!r}")


def _expand(values, what: str) -> set[_dt.date]:
    """Dates, ISO strings, ``"2025-10-01..2025-10-08"`` ranges or ``{"from": .., "to": ..}``."""
    out: set[_dt.date] = set()
    for v in values or ():
        if isinstance(v, dict):
            start, end = _to_date(v.get("from"), what), _to_date(v.get("to"), what)
        elif isinstance(v, str) and ".." in v:
            a, _, b = v.partition("..")
            start, end = _to_date(a, what), _to_date(b, what)
        else:
            out.add(_to_date(v, what))
            continue
        if end < start or (end - start).days > 366:
            raise ValueError(f"{what}: the range {start}..{end} is reversed or longer than a year")
        out.update(start + _dt.timedelta(days=i) for i in range((end - start).days + 1))
    return out


def _weekend(values) -> frozenset[int]:
    days = set()
    for v in values:
        if isinstance(v, str) and v[:3].lower() in _WEEKDAY_NAMES:
            days.add(_WEEKDAY_NAMES[v[:3].lower()])
        elif isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 6:
            days.add(v)
        else:
            raise ValueError(f"weekend: expected weekday numbers 0-6 (Monday = 0) or names like 'sat', got {v!r}")
    if len(days) == 7:
        raise ValueError("weekend: a calendar needs at least one working weekday")
    return frozenset(days)


class HolidayCalendar:
    """An immutable working-day calendar. Build it from data with :meth:`from_data`."""

    __slots__ = ("name", "weekend", "holidays", "workdays", "_hol", "_work", "_per_week")

    def __init__(self, holidays: Iterable = (), workdays: Iterable = (), weekend: Iterable = (5, 6),
                 name: str = "default"):
        hol = _expand(holidays, "holidays")
        work = _expand(workdays, "workdays")
        both = hol & work
        if both:
            raise ValueError(f"a day cannot be both a holiday and a make-up working day: "
                             f"{', '.join(sorted(map(str, both))[:5])}")
        wk = _weekend(weekend)
        set_ = object.__setattr__
        set_(self, "name", str(name))
        set_(self, "weekend", wk)
        set_(self, "holidays", frozenset(hol))
        set_(self, "workdays", frozenset(work))
        # only exceptions that change something matter for counting
        set_(self, "_hol", sorted(d.toordinal() for d in hol if d.weekday() not in wk))
        set_(self, "_work", sorted(d.toordinal() for d in work if d.weekday() in wk))
        set_(self, "_per_week", 7 - len(wk))

    @classmethod
    def from_data(cls, data: dict) -> "HolidayCalendar":
        """``{"name": .., "weekend": ["sat", "sun"], "holidays": [..], "workdays": [..]}``.

        Holidays and workdays may be ISO dates, ``"2025-10-01..2025-10-08"`` ranges or
        ``{"from": .., "to": ..}``; ``makeup_workdays`` is accepted for ``workdays``.
        """
        if not isinstance(data, dict):
            raise ValueError("a holiday calendar is a mapping with holidays, workdays and weekend")
        unknown = set(data) - {"name", "weekend", "holidays", "workdays", "makeup_workdays"}
        if unknown:
            raise ValueError(f"holiday calendar: unknown keys {', '.join(sorted(unknown))}")
        return cls(holidays=data.get("holidays") or (),
                   workdays=data.get("workdays") or data.get("makeup_workdays") or (),
                   weekend=data.get("weekend", (5, 6)), name=data.get("name", "default"))

    def __setattr__(self, key, value):
        raise AttributeError("a HolidayCalendar cannot be changed; build a new one")

    def __repr__(self) -> str:
        return (f"HolidayCalendar({self.name!r}: {len(self.holidays)} holidays, "
                f"{len(self.workdays)} make-up working days)")

    def __eq__(self, other):
        return isinstance(other, HolidayCalendar) and (self.weekend, self.holidays, self.workdays) == (
            other.weekend, other.holidays, other.workdays)

    def __hash__(self):
        return hash((self.weekend, self.holidays, self.workdays))

    # -- counting -------------------------------------------------------------------------------

    def is_working_day(self, day) -> bool:
        o = _to_date(day, "is_working_day").toordinal()
        if (o + 6) % 7 in self.weekend:     # date.weekday() of an ordinal: (ordinal + 6) % 7
            return _contains(self._work, o)
        return not _contains(self._hol, o)

    def _count(self, a: int, b: int) -> int:
        """Working days in [a, b) of ordinals, a <= b."""
        n = b - a
        weeks, rest = divmod(n, 7)
        count = weeks * self._per_week
        first = (a + 6) % 7
        for i in range(rest):
            if (first + i) % 7 not in self.weekend:
                count += 1
        count -= bisect.bisect_left(self._hol, b) - bisect.bisect_left(self._hol, a)
        count += bisect.bisect_left(self._work, b) - bisect.bisect_left(self._work, a)
        return count

    def working_days_between(self, start, end) -> int:
        a = _to_date(start, "working_days_between").toordinal()
        b = _to_date(end, "working_days_between").toordinal()
        return self._count(a, b) if a <= b else -self._count(b, a)

    def add_working_days(self, day, n: int):
        if not isinstance(n, int) or isinstance(n, bool):
            raise TypeError(f"add_working_days: the number of days must be a whole number, got {n!r}")
        if abs(n) > MAX_OFFSET:
            raise ValueError(f"add_working_days: at most {MAX_OFFSET:,} working days at once")
        d = _to_date(day, "add_working_days")
        o = d.toordinal()
        if n == 0:
            target = o if self.is_working_day(d) else self._nth_after(o, 1)
        elif n > 0:
            target = self._nth_after(o, n)
        else:
            target = self._nth_before(o, -n)
        try:
            result = _dt.date.fromordinal(target)
        except (ValueError, OverflowError):
            raise ValueError("add_working_days: the result is outside the calendar's range") from None
        if isinstance(day, _dt.datetime):
            return _dt.datetime.combine(result, day.timetz())
        return result

    def next_working_day(self, day):
        return self.add_working_days(day, 1)

    def previous_working_day(self, day):
        return self.add_working_days(day, -1)

    def _span(self, n: int) -> int:
        return (n // self._per_week + 2) * 7 + 2 * (len(self._hol) + 1)

    def _nth_after(self, o: int, n: int) -> int:
        """Smallest x > o with n working days in (o, x]."""
        lo, hi = o + 1, o + self._span(n)
        while self._count(o + 1, hi + 1) < n:
            hi += self._span(n)
        while lo < hi:
            mid = (lo + hi) // 2
            if self._count(o + 1, mid + 1) >= n:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _nth_before(self, o: int, n: int) -> int:
        """Largest x < o with n working days in [x, o)."""
        lo, hi = o - self._span(n), o - 1
        while self._count(lo, o) < n:
            lo -= self._span(n)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._count(mid, o) >= n:
                lo = mid
            else:
                hi = mid - 1
        return lo


def _contains(sorted_list: list[int], value: int) -> bool:
    i = bisect.bisect_left(sorted_list, value)
    return i < len(sorted_list) and sorted_list[i] == value


# -- the process-wide default, set from data by the engine ------------------------------------------

_default = HolidayCalendar()
_default_lock = threading.Lock()


def default_calendar() -> HolidayCalendar:
    return _default


def set_default_calendar(calendar: HolidayCalendar | dict) -> HolidayCalendar:
    """Make ``calendar`` (or ``HolidayCalendar.from_data(calendar)``) the one scripts use by default."""
    global _default
    cal = calendar if isinstance(calendar, HolidayCalendar) else HolidayCalendar.from_data(calendar)
    with _default_lock:
        _default = cal
    return cal


def _cal(calendar) -> HolidayCalendar:
    if calendar is None:
        return _default
    if isinstance(calendar, HolidayCalendar):
        return calendar
    raise TypeError("calendar must be a HolidayCalendar (or None for the default calendar)")


def add_working_days(day, n: int, calendar: HolidayCalendar | None = None):
    """The n-th working day after ``day`` (before it for negative n) in ``calendar``."""
    return _cal(calendar).add_working_days(day, n)


def working_days_between(start, end, calendar: HolidayCalendar | None = None) -> int:
    """Working days in ``[start, end)``; negative if ``end`` is before ``start``."""
    return _cal(calendar).working_days_between(start, end)


def is_working_day(day, calendar: HolidayCalendar | None = None) -> bool:
    return _cal(calendar).is_working_day(day)


def next_working_day(day, calendar: HolidayCalendar | None = None):
    return _cal(calendar).add_working_days(day, 1)


def previous_working_day(day, calendar: HolidayCalendar | None = None):
    return _cal(calendar).add_working_days(day, -1)
