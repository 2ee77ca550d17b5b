"""Python's builtins as scripts get them: the same names, with limits where C would run away.

``list(range(10**9))``, ``sorted(huge)`` or ``dict.fromkeys(big)`` build their result in C, where no
budget tick can reach; so the materialising builtins check the size first, the types stay usable
with ``isinstance`` (:class:`GuardedType`), ``range`` is bounded by the iteration budget and
``sum`` only adds numbers. ``log``/``print`` collect messages for the caller.
"""
from __future__ import annotations

import logging
from decimal import Decimal

import datetime as _dt

from engine.sandbox.budget import charge_items, current_budget, current_run
from engine.sandbox.errors import SandboxBudgetExceeded
from engine.sandbox.guards import guarded_iter, register_self_guarding_type
from engine.sandbox.text import FAST_SIZE, check_decimal_exponent, safe_str, short_repr

log_ = logging.getLogger("loom.sandbox")

MAX_LOG_LINES = 1000
MAX_LOG_LINE = 2000

def _bounded(iterable, what):
    """Iterate a source of unknown length with ticks, refusing more items than the budget allows."""
    run = current_run()
    limit = current_budget().max_items
    n = 0
    for x in guarded_iter(iterable) if run is not None else iterable:
        n += 1
        if n > limit:
            charge_items(n, what)
        yield x


def _materialize(kind, iterable, what):
    if hasattr(type(iterable), "__len__"):
        n = len(iterable)
        if n > FAST_SIZE:
            charge_items(n, what)
        return kind(iterable)
    return kind(_bounded(iterable, what))


class GuardedType:
    """A builtin type as scripts see it: calling it checks sizes, ``isinstance`` still works.

    ``list(range(10**9))`` would build the whole list in C, out of reach of any tick; so ``list``,
    ``str``, ``int`` ... in scripts are these proxies. ``isinstance(x, list)`` works because the
    proxy implements ``__instancecheck__``; ``dict.fromkeys`` and friends are looked up on the
    real type through a short allow-list.
    """

    __slots__ = ("_type", "_call", "_class_attrs")

    def __init__(self, t: type, call, class_attrs: dict | None = None):
        object.__setattr__(self, "_type", t)
        object.__setattr__(self, "_call", call)
        object.__setattr__(self, "_class_attrs", class_attrs or {})

    def __call__(self, *args, **kwargs):
        return self._call(*args, **kwargs)

    def __instancecheck__(self, obj) -> bool:
        return isinstance(obj, self._type)

    def __getattr__(self, name):
        try:
            return self._class_attrs[name]
        except KeyError:
            raise AttributeError(f"`{self._type.__name__}.{name}` is not available in scripts") from None

    def __setattr__(self, key, value):
        raise TypeError(f"scripts cannot change the type {self._type.__name__}")

    def __repr__(self) -> str:
        return f"<class '{self._type.__name__}'>"

    def _sandbox_describe(self) -> str:
        return f"the type `{self._type.__name__}`"


register_self_guarding_type(GuardedType)


def _list(iterable=()):
    return _materialize(list, iterable, "list()")


def _tuple(iterable=()):
    return _materialize(tuple, iterable, "tuple()")


def _set(iterable=()):
    return _materialize(set, iterable, "set()")


def _frozenset(iterable=()):
    return _materialize(frozenset, iterable, "frozenset()")


def _dict(*args, **kwargs):
    if args:
        (source,) = args
        if not hasattr(type(source), "keys"):
            source = _materialize(list, source, "dict()")
        elif len(source) > FAST_SIZE:
            charge_items(len(source), "dict()")
        return dict(source, **kwargs)
    return dict(**kwargs)


def _sorted(iterable, *, key=None, reverse=False):
    return sorted(_materialize(list, iterable, "sorted()"), key=key, reverse=reverse)


def _str(*args, **kwargs):
    if len(args) == 1 and not kwargs:
        return safe_str(args[0])
    if not args and not kwargs:
        return ""
    return str(*args, **kwargs)         # str(bytes, encoding): a decode, never longer than the bytes


def _int(*args, **kwargs):
    if args:
        x = args[0]
        if type(x) is Decimal:
            check_decimal_exponent(x, "int()")
        elif isinstance(x, (str, bytes)) and len(x) > 5000:
            raise ValueError(f"int(): text of {len(x):,} characters is too long for a number")
    return int(*args, **kwargs)


def _range(*args):
    r = range(*args)
    try:
        n = len(r)
    except OverflowError:
        n = float("inf")
    limit = current_budget().max_iterations
    if n > limit:
        raise SandboxBudgetExceeded(f"stopped: range() of {n:,} numbers is more than the {limit:,} "
                                    f"iterations a script may run", kind="iterations", limit=limit)
    return r


def _sum(iterable, /, start=0):
    if not isinstance(start, (int, float, Decimal, _dt.timedelta)):
        raise TypeError("sum() adds numbers; join texts with ''.join(...) and lists with a loop")
    return sum(iterable, start)


def _round(number, ndigits=None):
    if ndigits is None and type(number) is Decimal:
        check_decimal_exponent(number, "round()")
    return round(number, ndigits)


def _iter(obj):
    return guarded_iter(obj)


def _log(*args, sep=" "):
    """``log(...)`` (and ``print(...)``): collect a message for the caller, who may show or keep it."""
    text = str(sep).join(a if type(a) is str else short_repr.repr(a) for a in args)
    if len(text) > MAX_LOG_LINE:
        text = text[:MAX_LOG_LINE] + "..."
    run = current_run()
    if run is None:
        log_.info("sandboxed script: %s", text)
        return
    if len(run.messages) < MAX_LOG_LINES:
        run.messages.append(text)
    elif len(run.messages) == MAX_LOG_LINES:
        run.messages.append(f"... (more than {MAX_LOG_LINES} log lines; the rest were dropped)")


# -- imports done by C code on a script's behalf ---------------------------------------------------------

#: C functions called from a script (``date.today()``, ``datetime.strptime``) import helper modules
#: through the *calling frame's* builtins, i.e. this library. Scripts themselves can never name
#: ``__import__`` (a private name), so this only serves those, and only these modules.
_INTERNAL_IMPORTS = frozenset({"time", "_strptime", "datetime", "_datetime", "decimal", "_decimal", "locale",
                               "calendar", "re", "unicodedata", "math", "_pydecimal", "_pydatetime"})


def _internal_import(name, globals=None, locals=None, fromlist=(), level=0):
    if level or name not in _INTERNAL_IMPORTS:
        raise ImportError(f"importing {name!r} is not available in scripts")
    import builtins
    return builtins.__import__(name, globals, locals, fromlist, level)
