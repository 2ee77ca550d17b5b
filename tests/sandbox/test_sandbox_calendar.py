"""Working days with a calendar loaded from data, including Chinese make-up working days (调休)."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from engine.sandbox import (HolidayCalendar, add_working_days, compile_expression, default_calendar,
                            set_default_calendar, working_days_between)

#: National Day 2025: Oct 1-8 off; Sunday Sep 28 and Saturday Oct 11 are working days
CHINA_2025 = {"name": "CN-2025", "holidays": ["2025-10-01..2025-10-08", "2025-01-01"],
              "workdays": ["2025-09-28", "2025-10-11"]}


def brute_count(cal, start, end):
    n = 0
    d = start
    while d < end:
        n += cal.is_working_day(d)
        d += timedelta(days=1)
    return n


def brute_add(cal, d, n):
    step = 1 if n > 0 else -1
    left = abs(n)
    if n == 0:
        while not cal.is_working_day(d):
            d += timedelta(days=1)
        return d
    while left:
        d += timedelta(days=step)
        if cal.is_working_day(d):
            left -= 1
    return d


def test_make_up_working_days_and_holidays():
    cal = HolidayCalendar.from_data(CHINA_2025)
    assert cal.is_working_day(date(2025, 9, 28))          # a Sunday made a working day
    assert not cal.is_working_day(date(2025, 10, 3))       # a Friday holiday
    assert cal.is_working_day(date(2025, 10, 11))          # a Saturday made a working day
    assert not cal.is_working_day(date(2025, 10, 12))      # an ordinary Sunday
    # from Tuesday Sep 30, one working day later is Thursday Oct 9 (Oct 1-8 are off)
    assert cal.add_working_days(date(2025, 9, 30), 1) == date(2025, 10, 9)
    assert cal.add_working_days(date(2025, 9, 26), 1) == date(2025, 9, 28)
    assert cal.add_working_days(date(2025, 10, 9), -1) == date(2025, 9, 30)
    assert cal.working_days_between(date(2025, 9, 29), date(2025, 10, 13)) == 5   # 29, 30, 9, 10, 11


def test_matches_day_by_day_counting():
    cal = HolidayCalendar.from_data(CHINA_2025)
    start = date(2025, 9, 1)
    for offset in range(0, 70, 3):
        for length in (0, 1, 5, 13, 40):
            a = start + timedelta(days=offset)
            b = a + timedelta(days=length)
            assert cal.working_days_between(a, b) == brute_count(cal, a, b)
            assert cal.working_days_between(b, a) == -brute_count(cal, a, b)
    for offset in range(0, 60, 2):
        d = start + timedelta(days=offset)
        for n in (-12, -3, -1, 0, 1, 2, 7, 25):
            assert cal.add_working_days(d, n) == brute_add(cal, d, n), (d, n)


def test_round_trip_between_add_and_count():
    cal = HolidayCalendar.from_data(CHINA_2025)
    d = date(2025, 9, 30)
    for n in range(1, 30):
        assert cal.working_days_between(d, cal.add_working_days(d, n)) == n


def test_large_offsets_are_fast_and_bounded():
    cal = HolidayCalendar(holidays=[date(2030, 1, 1) + timedelta(days=7 * i) for i in range(500)])
    d = cal.add_working_days(date(2025, 1, 1), 100_000)
    assert cal.working_days_between(date(2025, 1, 1), d) == 99_999 + cal.is_working_day(date(2025, 1, 1))
    with pytest.raises(ValueError, match="at most 1,000,000"):
        cal.add_working_days(date(2025, 1, 1), 10**9)


def test_datetimes_keep_their_time_and_other_weekends_work():
    cal = HolidayCalendar(weekend=["fri", "sat"])
    assert cal.add_working_days(datetime(2025, 1, 2, 15, 30), 1) == datetime(2025, 1, 5, 15, 30)


def test_bad_calendar_data_is_refused_clearly():
    with pytest.raises(ValueError, match="both a holiday and a make-up working day: 2025-10-01"):
        HolidayCalendar(holidays=["2025-10-01"], workdays=["2025-10-01"])
    with pytest.raises(ValueError, match="expected a date or an ISO date"):
        HolidayCalendar(holidays=["10/01/2025"])
    with pytest.raises(ValueError, match="unknown keys"):
        HolidayCalendar.from_data({"holiday": []})
    with pytest.raises(ValueError, match="at least one working weekday"):
        HolidayCalendar(weekend=range(7))
    with pytest.raises(AttributeError, match="cannot be changed"):
        HolidayCalendar().name = "x"


def test_default_calendar_is_configurable_and_used_by_scripts():
    old = default_calendar()
    try:
        set_default_calendar(CHINA_2025)
        assert add_working_days(date(2025, 9, 30), 1) == date(2025, 10, 9)
        assert working_days_between(date(2025, 10, 1), date(2025, 10, 9)) == 0
        expr = compile_expression("add_working_days(d, 1)", "wf.due")
        assert expr.evaluate({"d": date(2025, 9, 30)}) == date(2025, 10, 9)
    finally:
        set_default_calendar(old)
    assert add_working_days(date(2025, 9, 30), 1) == date(2025, 10, 1)


def test_scripts_can_use_a_calendar_given_per_call_or_build_one():
    cal = HolidayCalendar.from_data(CHINA_2025)
    expr = compile_expression("add_working_days(d, 3, calendar) if is_working_day(d, calendar) else None", "wf.sla")
    assert expr.evaluate({"d": date(2025, 9, 28)}, api={"calendar": cal}) == date(2025, 10, 9)
    expr = compile_expression("HolidayCalendar.from_data({'holidays': ['2025-01-01']}).is_working_day(d)", "x")
    assert expr.evaluate({"d": date(2025, 1, 1)}) is False
    expr = compile_expression("calendar.holidays", "x")
    assert date(2025, 10, 1) in expr.evaluate({}, api={"calendar": cal})
