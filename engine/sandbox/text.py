"""Values turned into text: ``str()``, ``repr()``, f-strings, ``%`` formatting, ``strftime``.

Text is where a small value turns into a huge one without any loop: ``[s] * 1000`` holds one
string a thousand times but ``str()`` spells it out a thousand times; ``f"{x:>10000000000}"`` and
``"%10000000000d"`` pad to ten gigabytes; a ``Decimal('1e999999999')`` prints a billion digits in
fixed-point. So every conversion here estimates the size first (walking shared parts each time
they occur, giving up early) and charges it to the budget, and format widths are capped.
"""
from __future__ import annotations

import datetime as _dt
import re
import reprlib
from decimal import Decimal

from engine.sandbox import budget as _budget
from engine.sandbox.budget import charge, current_budget
from engine.sandbox.errors import SandboxBudgetExceeded

#: below this many bytes / items / bits an operation takes the fast path without consulting the
#: budget (every budget allows at least this much)
FAST_SIZE = 1 << 16
FAST_INT_BITS = 4096
#: widths and precisions in format specs (``f"{x:>100}"``, ``"%10d"``, ``strftime("%10Y")``)
MAX_FORMAT_NUMBER = 10_000
#: a Decimal whose exponent is beyond this cannot become an int or a fixed-point string
MAX_DECIMAL_EXPONENT = 4_000


def _char_width(*texts) -> int:
    """Bytes per character of a string built from ``texts`` (CPython stores 1, 2 or 4)."""
    return 1 if all(t.isascii() for t in texts if type(t) in (str, bytes)) else 4


def check_decimal_exponent(d: Decimal, what: str) -> None:
    if d.is_finite() and abs(d.adjusted()) > MAX_DECIMAL_EXPONENT:
        raise SandboxBudgetExceeded(
            f"stopped: {what} of a number with {abs(d.adjusted()):,} digits is refused "
            f"(at most {MAX_DECIMAL_EXPONENT:,})", kind="memory", limit=MAX_DECIMAL_EXPONENT)


def check_strftime_format(fmt) -> None:
    if type(fmt) is str:
        if len(fmt) * 16 > FAST_SIZE:
            charge(len(fmt) * 16, "strftime()")
        for m in _DIGITS.finditer(fmt):
            if int(m.group()) > MAX_FORMAT_NUMBER:
                raise _width_error(m.group())


_PERCENT = re.compile(rb"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?([a-zA-Z%])")
_PERCENT_S = re.compile(_PERCENT.pattern.decode())
_DIGITS = re.compile(r"\d+")


def _width_error(number: str) -> SandboxBudgetExceeded:
    return SandboxBudgetExceeded(f"stopped: a format width or precision of {number} is refused "
                                 f"(at most {MAX_FORMAT_NUMBER:,})", kind="memory", limit=MAX_FORMAT_NUMBER)


def op_mod(a, b):
    if type(a) is str or type(a) is bytes:
        return _percent_format(a, b)
    return a % b


def _percent_format(fmt, args):
    pattern = _PERCENT_S if type(fmt) is str else _PERCENT
    values = args if type(args) is tuple else (args,)
    star = False
    for m in pattern.finditer(fmt):
        for g in (m.group(1), m.group(2)):
            if g in ("*", b"*"):
                star = True
            elif g and int(g) > MAX_FORMAT_NUMBER:
                raise _width_error(g if type(g) is str else g.decode())
        if m.group(3) in ("d", "i", "u", b"d", b"i", b"u") and values:
            for v in values:
                if type(v) is Decimal:
                    check_decimal_exponent(v, "formatting")
    if star:
        for v in values:
            if type(v) is int and v > MAX_FORMAT_NUMBER:
                raise _width_error(str(v))
    size = len(fmt)
    for v in (args.values() if isinstance(args, dict) else values):
        n = text_size(v, current_budget())
        if n is None:
            raise _too_many_parts("formatting with %")
        size += n
    if size > FAST_SIZE:
        charge(size, "formatting with %")
    return fmt % args


# -- text conversion (str(), repr(), f-strings) ----------------------------------------------------------

_SCALAR_TEXT = frozenset({str, int, float, bool, type(None), Decimal, _dt.date, _dt.datetime, _dt.time,
                          _dt.timedelta, complex})


def text_size(x, budget=None) -> int:
    """An upper-bound-ish estimate of ``len(repr(x))`` that stops early once it is too big.

    Containers can share one big value many times (``[s] * 1000``); ``repr`` would spell it out
    each time, so the estimate walks the structure, counting shared parts every time they occur,
    and gives up (None) after ``max_items`` steps.
    """
    budget = budget or current_budget()
    limit, max_steps = budget.max_bytes, budget.max_items
    total = 0
    steps = 0
    stack = [x]
    while stack:
        o = stack.pop()
        steps += 1
        if steps > max_steps:
            return None
        t = type(o)
        if t is str:
            total += len(o) + 2
        elif t is bytes:
            total += 4 * len(o) + 3
        elif t is int:
            total += o.bit_length() // 3 + 2
        elif t in _SCALAR_TEXT:
            total += 32
        elif t in (list, tuple, set, frozenset):
            total += 2 + 2 * len(o)
            stack.extend(o)
        elif t is dict:
            total += 2 + 4 * len(o)
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, BaseException):
            total += 40
            stack.extend(o.args)
        else:
            total += 80
        if total > limit:
            return total
    return total


def _too_many_parts(what: str) -> SandboxBudgetExceeded:
    b = current_budget()
    return SandboxBudgetExceeded(f"stopped: {what} of a value with more than {b.max_items:,} parts (counting "
                                 f"shared parts each time they occur) is refused", kind="memory", limit=b.max_bytes)


def _to_text(x, convert, what: str) -> str:
    size = text_size(x)
    if size is None:
        raise _too_many_parts(what)
    if size > FAST_SIZE:
        charge(size, what)
    out = convert(x)
    if len(out) > FAST_SIZE:
        charge(len(out), what)
    return out


def safe_str(x=""):
    if type(x) in _SCALAR_TEXT:
        return str(x)
    return _to_text(x, str, "converting a value to text")


def safe_repr(x):
    if type(x) in _SCALAR_TEXT and type(x) is not str:
        return repr(x)
    return _to_text(x, repr, "repr()")


def safe_ascii(x):
    return _to_text(x, ascii, "ascii()")


def _check_spec(value, spec: str) -> None:
    if len(spec) > 100:
        raise _width_error(str(len(spec)))
    for m in _DIGITS.finditer(spec):
        if int(m.group()) > MAX_FORMAT_NUMBER:
            raise _width_error(m.group())
    if type(value) is Decimal and spec[-1:] in ("f", "F", "%", "n", ""):
        check_decimal_exponent(value, "fixed-point formatting")


def format_value(value, conversion, spec):
    """One ``{value!conversion:spec}`` of an f-string."""
    if conversion == -1:
        if type(value) is str and not spec:
            return value
    elif conversion == 115:
        value = safe_str(value)
    elif conversion == 114:
        value = safe_repr(value)
    else:
        value = safe_ascii(value)
    if not spec:
        return safe_str(value)
    _check_spec(value, spec)
    if type(value) in _SCALAR_TEXT:
        return format(value, spec)
    return _to_text(value, lambda v: format(v, spec), "formatting")


def fstring(parts) -> str:
    """The whole f-string: the parts are already text, so only their total size is left to check."""
    if len(parts) > 2:
        size = sum(map(len, parts))
        if size > FAST_SIZE:
            charge(size * _char_width(*parts), "building an f-string")
    return "".join(parts)


_ONE_MB = _budget.Budget(memory_mb=1)


class _ShortRepr(reprlib.Repr):
    """reprlib with limits all the way down: an object it has no rule for (an exception holding a
    huge shared structure, say) is only spelled out if that is known to be short."""

    def repr_instance(self, x, level):
        size = text_size(x, _ONE_MB)
        if size is None or size > 4 * self.maxother:
            return f"<{type(x).__name__}>"
        return super().repr_instance(x, level)


#: bounded repr for log lines and error messages: never spells out a huge or deeply shared value
short_repr = _ShortRepr()
short_repr.maxstring = 200
short_repr.maxother = 200
short_repr.maxlevel = 4
