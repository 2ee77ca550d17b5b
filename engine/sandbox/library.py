"""The curated library every script sees, instead of imports.

A module is a door to everything it imported (``random._os``, ``string.Formatter``), so scripts
get functions, never modules: builtins with size limits, ``math``, ``Decimal`` (money is Decimal
everywhere), dates and working days, ``statistics``, ``json``, regular expressions with a time
limit, a few string helpers and ``log``. Each function here either cannot amplify or checks the
size of what it is about to build against the budget.
"""
from __future__ import annotations

import datetime as _dt
import decimal
import json as _json
import math as _math
import statistics as _statistics
from decimal import Decimal

from engine.sandbox import calendar as _workdays
from engine.sandbox import dates, patterns
from engine.sandbox.api import VALUE_TYPES, trusted_namespace
from engine.sandbox.budget import charge, current_budget
from engine.sandbox.errors import ApiError, SandboxBudgetExceeded
from engine.sandbox.guards import CLASS_ATTRS, guarded_getattr, guarded_hasattr, int_from_bytes, register_value_type
from engine.sandbox.safe_builtins import (GuardedType, _dict, _frozenset, _int, _internal_import, _iter, _list, _log,
                                          _materialize, _range, _round, _set, _sorted, _str, _sum, _tuple)
from engine.sandbox.text import FAST_SIZE, MAX_FORMAT_NUMBER, check_decimal_exponent, safe_repr, safe_str, text_size

MAX_STATISTICS_ITEMS = 100_000

# -- math ----------------------------------------------------------------------------------------------


def _floor(x):
    if type(x) is Decimal:
        check_decimal_exponent(x, "floor()")
    return _math.floor(x)


def _ceil(x):
    if type(x) is Decimal:
        check_decimal_exponent(x, "ceil()")
    return _math.ceil(x)


def _trunc(x):
    if type(x) is Decimal:
        check_decimal_exponent(x, "trunc()")
    return _math.trunc(x)


def _small_int(name, limit):
    fn = getattr(_math, name)

    def bounded(*args):
        for a in args:
            if isinstance(a, int) and a > limit:
                raise ValueError(f"{name}(): arguments above {limit:,} are refused in scripts")
        return fn(*args)
    bounded.__name__ = name
    return bounded


_MATH_PLAIN = ("pi", "e", "tau", "inf", "nan", "sqrt", "exp", "log", "log10", "log2", "log1p", "expm1", "pow",
               "fabs", "fmod", "fsum", "isclose", "isfinite", "isinf", "isnan", "sin", "cos", "tan", "asin",
               "acos", "atan", "atan2", "sinh", "cosh", "tanh", "degrees", "radians", "hypot", "copysign",
               "gcd", "isqrt", "modf", "frexp", "ldexp", "remainder", "dist")
math = trusted_namespace("math", **{n: getattr(_math, n) for n in _MATH_PLAIN if hasattr(_math, n)},
                         floor=_floor, ceil=_ceil, trunc=_trunc, factorial=_small_int("factorial", 1000),
                         comb=_small_int("comb", 10_000), perm=_small_int("perm", 10_000))

# -- money ------------------------------------------------------------------------------------------


def money(value, places: int = 2) -> Decimal:
    """``value`` as Decimal rounded half-up to ``places`` decimals (floats via their text)."""
    if type(places) is not int or not 0 <= places <= 28:
        raise ValueError("money(): places must be a whole number from 0 to 28")
    d = to_decimal(value)
    return d.quantize(Decimal(1).scaleb(-places), rounding=decimal.ROUND_HALF_UP)


def to_decimal(value) -> Decimal:
    """Decimal from a number or text; floats go through ``str`` so 0.1 stays 0.1."""
    if type(value) is Decimal:
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, (int, str)):
        if isinstance(value, str) and len(value) > 200:
            raise ValueError("to_decimal(): text too long for a number")
        return Decimal(value.strip() if isinstance(value, str) else value)
    raise TypeError(f"to_decimal(): cannot make a Decimal from {type(value).__name__}")


# -- statistics ---------------------------------------------------------------------------------------


def _stat(name):
    fn = getattr(_statistics, name)

    def bounded(data, *args, **kwargs):
        data = _materialize(list, data, f"{name}()")
        if len(data) > MAX_STATISTICS_ITEMS:
            raise ValueError(f"{name}(): at most {MAX_STATISTICS_ITEMS:,} values")
        for v in data:
            if type(v) is Decimal:
                check_decimal_exponent(v, name)
        try:
            return fn(data, *args, **kwargs)
        except _statistics.StatisticsError as exc:
            raise ValueError(f"{name}(): {exc}") from None
    bounded.__name__ = name
    return bounded


_STATS = ("mean", "fmean", "geometric_mean", "harmonic_mean", "median", "median_low", "median_high",
          "median_grouped", "mode", "multimode", "pstdev", "pvariance", "stdev", "variance", "quantiles")
_stat_functions = {n: _stat(n) for n in _STATS if hasattr(_statistics, n)}
statistics = trusted_namespace("statistics", **_stat_functions)

# -- json ------------------------------------------------------------------------------------------------


def _json_default(o):
    if isinstance(o, Decimal):
        return str(o)
    if isinstance(o, (_dt.date, _dt.datetime, _dt.time)):
        return o.isoformat()
    if isinstance(o, _dt.timedelta):
        return o.total_seconds()
    if isinstance(o, (set, frozenset)):
        return sorted(o, key=repr)
    raise TypeError(f"json.dumps: {type(o).__name__} values cannot be written as JSON")


def json_loads(text, *, decimals: bool = True):
    """Parse JSON; numbers with a fraction become Decimal unless ``decimals=False``."""
    budget = current_budget()
    limit = budget.max_bytes // 16
    if isinstance(text, (str, bytes)) and len(text) > limit:
        raise SandboxBudgetExceeded(f"stopped: json.loads() of {len(text):,} characters; at most {limit:,}",
                                    kind="memory", limit=budget.max_bytes)
    try:
        return _json.loads(text, parse_float=Decimal if decimals else float)
    except _json.JSONDecodeError as exc:
        raise ValueError(f"json.loads(): {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def json_dumps(value, *, indent=None, sort_keys: bool = False, ensure_ascii: bool = False) -> str:
    """JSON text; Decimal as a string (exact), dates as ISO text."""
    if indent is not None and (type(indent) is not int or not 0 <= indent <= 16):
        raise ValueError("json.dumps(): indent must be a whole number from 0 to 16")
    size = text_size(value)
    if size is None:
        raise SandboxBudgetExceeded("stopped: json.dumps() of a value with too many parts", kind="memory")
    size *= 1 + (indent or 0)
    if size > FAST_SIZE:
        charge(size * (1 if not ensure_ascii else 6), "json.dumps()")
    out = _json.dumps(value, default=_json_default, indent=indent, sort_keys=sort_keys, ensure_ascii=ensure_ascii)
    if len(out) > FAST_SIZE:
        charge(len(out), "json.dumps()")
    return out


json = trusted_namespace("json", loads=json_loads, dumps=json_dumps)

# -- strings ----------------------------------------------------------------------------------------------


def coalesce(*values):
    """The first value that is not None (or None)."""
    for v in values:
        if v is not None:
            return v
    return None


def is_blank(value) -> bool:
    """None, empty text, or only whitespace."""
    return value is None or (isinstance(value, str) and not value.strip())


def mask(text, keep_start: int = 0, keep_end: int = 4, char: str = "*") -> str:
    """``mask("110101199001011234", 6, 4)`` -> ``110101********1234`` (ID and account numbers)."""
    s = safe_str(text)
    keep_start, keep_end = max(0, int(keep_start)), max(0, int(keep_end))
    if keep_start + keep_end >= len(s):
        return s
    return s[:keep_start] + char[:1] * (len(s) - keep_start - keep_end) + (s[len(s) - keep_end:] if keep_end else "")


def truncate(text, length: int, ellipsis: str = "...") -> str:
    s = safe_str(text)
    return s if len(s) <= length else s[:max(0, length - len(ellipsis))] + ellipsis


def pad_left(text, width: int, char: str = " ") -> str:
    s = safe_str(text)
    if width > MAX_FORMAT_NUMBER:
        raise ValueError(f"pad_left(): width above {MAX_FORMAT_NUMBER:,} is refused")
    return s.rjust(width, char)


def pad_right(text, width: int, char: str = " ") -> str:
    s = safe_str(text)
    if width > MAX_FORMAT_NUMBER:
        raise ValueError(f"pad_right(): width above {MAX_FORMAT_NUMBER:,} is refused")
    return s.ljust(width, char)


def format_number(value, places: int = 2, thousands: bool = True) -> str:
    """``format_number(Decimal("1234567.891"))`` -> ``1,234,567.89`` (half-up)."""
    d = money(value, places)
    return f"{d:,.{places}f}" if thousands else f"{d:.{places}f}"


# -- the builtins dict ------------------------------------------------------------------------------------

list_ = GuardedType(list, _list)
tuple_ = GuardedType(tuple, _tuple)
set_ = GuardedType(set, _set)
frozenset_ = GuardedType(frozenset, _frozenset)
dict_ = GuardedType(dict, _dict, {"fromkeys": guarded_getattr({}, "fromkeys")})
str_ = GuardedType(str, _str, {"maketrans": str.maketrans})
int_ = GuardedType(int, _int, {"from_bytes": int_from_bytes})

CLASS_ATTRS[_workdays.HolidayCalendar] = frozenset({"from_data"})
CLASS_ATTRS[_dt.timezone] = frozenset({"utc", "min", "max"})
VALUE_TYPES.add(_workdays.HolidayCalendar)
register_value_type(_workdays.HolidayCalendar, (
    "name", "weekend", "holidays", "workdays", "is_working_day", "working_days_between", "add_working_days",
    "next_working_day", "previous_working_day"))


def _build_library() -> dict:
    exceptions = {e.__name__: e for e in (
        Exception, ValueError, TypeError, KeyError, IndexError, LookupError, ZeroDivisionError, ArithmeticError,
        OverflowError, AssertionError, RuntimeError, NameError, AttributeError, StopIteration, NotImplementedError)}
    return {
        # builtins (limited where they could build something huge in C)
        "abs": abs, "all": all, "any": any, "bool": bool, "callable": callable, "chr": chr, "divmod": divmod,
        "enumerate": enumerate, "filter": filter, "float": float, "isinstance": isinstance, "len": len,
        "map": map, "max": max, "min": min, "next": next, "ord": ord, "reversed": reversed, "zip": zip,
        "bin": bin, "hex": hex, "oct": oct, "slice": slice,
        "list": list_, "tuple": tuple_, "set": set_, "frozenset": frozenset_, "dict": dict_, "str": str_,
        "int": int_, "range": _range, "sorted": _sorted, "sum": _sum, "round": _round, "repr": safe_repr,
        "iter": _iter, "getattr": guarded_getattr, "hasattr": guarded_hasattr,
        "log": _log, "__import__": _internal_import,
        **exceptions, "ApiError": ApiError, "InvalidOperation": decimal.InvalidOperation,
        # numbers and money
        "math": math, "Decimal": Decimal, "money": money, "to_decimal": to_decimal,
        "ROUND_HALF_UP": decimal.ROUND_HALF_UP, "ROUND_HALF_EVEN": decimal.ROUND_HALF_EVEN,
        "ROUND_HALF_DOWN": decimal.ROUND_HALF_DOWN, "ROUND_UP": decimal.ROUND_UP, "ROUND_DOWN": decimal.ROUND_DOWN,
        "ROUND_CEILING": decimal.ROUND_CEILING, "ROUND_FLOOR": decimal.ROUND_FLOOR,
        # dates
        "date": _dt.date, "datetime": _dt.datetime, "time": _dt.time, "timedelta": _dt.timedelta,
        "timezone": _dt.timezone, "UTC": _dt.timezone.utc, "LOCAL_TZ": dates.LOCAL_TZ,
        "now": dates.now, "today": dates.today, "local_time": dates.local_time, "add_days": dates.add_days,
        "add_months": dates.add_months,
        "add_years": dates.add_years, "days_between": dates.days_between, "months_between": dates.months_between,
        "age": dates.age,
        "start_of_month": dates.start_of_month, "end_of_month": dates.end_of_month, "parse_date": dates.parse_date,
        "parse_datetime": dates.parse_datetime, "format_date": dates.format_date,
        # working days
        "HolidayCalendar": _workdays.HolidayCalendar, "add_working_days": _workdays.add_working_days,
        "working_days_between": _workdays.working_days_between, "is_working_day": _workdays.is_working_day,
        "next_working_day": _workdays.next_working_day, "previous_working_day": _workdays.previous_working_day,
        # statistics, json, regex, strings
        "statistics": statistics, **_stat_functions, "json": json, "re": patterns.re,
        "re_search": patterns.re_search, "re_match": patterns.re_match, "re_fullmatch": patterns.re_fullmatch,
        "re_findall": patterns.re_findall,
        "re_split": patterns.re_split, "re_sub": patterns.re_sub,
        "coalesce": coalesce, "is_blank": is_blank, "mask": mask, "truncate": truncate, "pad_left": pad_left,
        "pad_right": pad_right, "format_number": format_number,
    }


#: the builtins of every script (shared, never handed to scripts as a dict)
LIBRARY: dict = _build_library()
