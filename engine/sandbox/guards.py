"""The functions compiled scripts call instead of touching objects directly.

RestrictedPython rewrites ``a.b`` into ``_getattr_(a, "b")``, ``a[b]`` into ``_getitem_(a, b)``,
``for x in y`` into ``for x in _getiter_(y)`` and so on; ``policy.py`` adds our own rewrites
(``a * b`` -> ``_op_mul_(a, b)``, f-strings, loop ticks, function wrappers). This module holds the
implementations (text conversion lives in ``text.py``). They are bound into the compiled code as constants (see ``policy.py``), so no
variable can shadow them and calling them costs no name lookup.

What they protect:

* attribute reads -- a per-type allow-list. Names that are safe on every object a script can reach
  (``upper``, ``get``, ``year``, ``quantize`` ...: :data:`NATIVE_OK`) are compiled as plain attribute
  reads, for speed; everything else comes here. Private names, ``format``/``format_map``
  (CVE-2023-41039), frame/code/generator internals (CVE-2023-37271), ``mro`` and ``obj``
  (CVE-2024-47532) are refused for every object; functions, generators, API objects and unknown
  types expose nothing.
* writes -- only to dicts and lists the script holds; never to API objects, functions or types.
* iteration -- every item ticks the budget (``budget.py``).
* operations that can build a large value from a small one -- sizes are estimated and charged
  to the budget before anything is allocated.
"""
from __future__ import annotations

import datetime as _dt
import operator
import sys
import types
from decimal import Decimal

from RestrictedPython.transformer import INSPECT_ATTRIBUTES

from engine.sandbox import budget as _budget
from engine.sandbox.budget import Run, _tl, charge, charge_items, current_budget, current_run
from engine.sandbox.errors import SandboxBudgetExceeded
from engine.sandbox.text import (FAST_INT_BITS, FAST_SIZE, _char_width, check_decimal_exponent, check_strftime_format,
                                 format_value, fstring, op_mod)

_MISSING = object()


# -- names refused on every object -----------------------------------------------------------------

_DENIED_REASONS = {
    "format": "str.format can read attributes of its arguments (CVE-2023-41039); use an f-string",
    "format_map": "str.format_map can read attributes of its arguments (CVE-2023-41039); use an f-string",
    "mro": "class hierarchies are off limits in scripts",
    "obj": "an exception's `obj` can hand out the object it was raised for (CVE-2024-47532)",
    "func": "wrapped functions are off limits in scripts",
    "with_traceback": "tracebacks are off limits in scripts",
}
_INTERNAL_PREFIXES = ("gi_", "cr_", "ag_", "f_", "tb_", "co_")
DENIED = frozenset(_DENIED_REASONS) | frozenset(INSPECT_ATTRIBUTES)


def denied_reason(name: str) -> str | None:
    """Why ``name`` may never be read, or None. Used by the compiler too."""
    if name.startswith("_"):
        return f'"{name}" is private: names starting with "_" are not available in scripts'
    if name in _DENIED_REASONS:
        return f'"{name}" is not available in scripts: {_DENIED_REASONS[name]}'
    if name in INSPECT_ATTRIBUTES or name.startswith(_INTERNAL_PREFIXES):
        return (f'"{name}" is not available in scripts: frames, code objects, generators\' internals and '
                f'tracebacks are off limits')
    return None


# -- the data types scripts work with ----------------------------------------------------------------

DATA_TYPES = (str, bytes, int, float, complex, bool, Decimal, _dt.date, _dt.datetime, _dt.time, _dt.timedelta,
              _dt.timezone, list, tuple, dict, set, frozenset, range, slice, type({}.keys()), type({}.values()),
              type({}.items()))


def _public(t: type) -> set[str]:
    return {n for n in dir(t) if not n.startswith("_")}


# amplifiers: attribute name -> factory(obj) returning the size-checked bound method

def _pad(name):
    def factory(s):
        method = getattr(s, name)

        def padded(width, *args):
            if type(width) is int and width > FAST_SIZE:
                charge(width * _char_width(s, *args), f"{type(s).__name__}.{name}({width:,})")
            return method(width, *args)
        return padded
    return factory


def _expandtabs(s):
    def expandtabs(tabsize=8):
        if type(tabsize) is int and tabsize > 1:
            size = len(s) + s.count("\t" if type(s) is str else b"\t") * tabsize
            if size > FAST_SIZE:
                charge(size * _char_width(s), "expandtabs()")
        return s.expandtabs(tabsize)
    return expandtabs


def _join(sep):
    def join(iterable):
        items = iterable if type(iterable) in (list, tuple) else list(guarded_iter(iterable))
        try:
            size = sum(map(len, items)) + len(sep) * max(0, len(items) - 1)
        except TypeError:
            return sep.join(items)              # let Python say which item is not text
        if size > FAST_SIZE:
            ascii_only = sep.isascii() and all(x.isascii() for x in items if hasattr(x, "isascii"))
            charge(size * (1 if ascii_only else 4), "join()")
        return sep.join(items)
    return join


def _replace(s):
    def replace(old, new, count=-1):
        if type(old) is type(s) and type(new) is type(s) and len(new) > len(old):
            n = (len(s) + 1) if not old else s.count(old)
            if type(count) is int and count >= 0:
                n = min(n, count)
            size = len(s) + n * (len(new) - len(old))
            if size > FAST_SIZE:
                charge(size * _char_width(s, new), "replace()")
        return s.replace(old, new, count)
    return replace


def _splitter(name):
    def factory(s):
        method = getattr(s, name)

        def split(*args, **kwargs):
            if len(s) > current_budget().max_items:
                sep = args[0] if args else kwargs.get("sep")
                n = s.count(sep) if sep else len(s) // 2
                charge_items(n + 1, f"{name}()")
            return method(*args, **kwargs)
        return split
    return factory


def _encode(s):
    def encode(encoding="utf-8", errors="strict"):
        if len(s) > FAST_SIZE // 10:
            charge(len(s) * (4 if "escape" not in str(encoding) else 10), "encode()")
        return s.encode(encoding, errors)
    return encode


def _hex(b):
    def hex_(*args):
        if len(b) > FAST_SIZE // 3:
            charge(len(b) * 3, "hex()")
        return b.hex(*args)
    return hex_


def _translate(s):
    def translate(table):
        if type(s) is str and isinstance(table, dict) and len(s) > 256:
            longest = max((len(v) for v in table.values() if type(v) is str), default=1)
            if len(s) * longest > FAST_SIZE:
                charge(len(s) * longest * _char_width(s), "translate()")
        return s.translate(table)
    return translate


def _extend(lst):
    def extend(iterable):
        if hasattr(iterable, "__len__"):
            n = len(lst) + len(iterable)
            if n > FAST_SIZE:
                charge_items(n, "extend()")
            return lst.extend(iterable)
        return lst.extend(guarded_iter(iterable))
    return extend


def _to_bytes(i):
    def to_bytes(length=1, byteorder="big", *, signed=False):
        if type(length) is int and length > FAST_SIZE:
            charge(length, "int.to_bytes()")
        return i.to_bytes(length, byteorder, signed=signed)
    return to_bytes


def int_from_bytes(data, byteorder="big", *, signed=False):
    if hasattr(data, "__len__") and len(data) * 8 > current_budget().max_int_bits:
        raise _int_error(len(data) * 8)
    return int.from_bytes(data, byteorder, signed=signed)


def _from_bytes(_):
    return int_from_bytes


def _as_integer_ratio(d):
    def as_integer_ratio():
        check_decimal_exponent(d, "as_integer_ratio()")
        return d.as_integer_ratio()
    return as_integer_ratio


def _strftime(d):
    def strftime(fmt):
        check_strftime_format(fmt)
        return d.strftime(fmt)
    return strftime


def _fromkeys(cls):
    def fromkeys(iterable, value=None):
        if hasattr(iterable, "__len__"):
            charge_items(len(iterable), "dict.fromkeys()")
        else:
            iterable = guarded_iter(iterable)
        return dict.fromkeys(iterable, value)
    return fromkeys


_TEXT_AMPLIFIERS = {"ljust": _pad("ljust"), "rjust": _pad("rjust"), "center": _pad("center"),
                    "zfill": _pad("zfill"), "expandtabs": _expandtabs, "join": _join, "replace": _replace,
                    "split": _splitter("split"), "rsplit": _splitter("rsplit"),
                    "splitlines": _splitter("splitlines"), "translate": _translate}
AMPLIFIERS: dict[type, dict] = {
    str: {**_TEXT_AMPLIFIERS, "encode": _encode},
    bytes: {**_TEXT_AMPLIFIERS, "hex": _hex},
    list: {"extend": _extend},
    int: {"to_bytes": _to_bytes, "from_bytes": _from_bytes},
    bool: {"to_bytes": _to_bytes, "from_bytes": _from_bytes},
    Decimal: {"as_integer_ratio": _as_integer_ratio},
    _dt.date: {"strftime": _strftime},
    _dt.datetime: {"strftime": _strftime},
    _dt.time: {"strftime": _strftime},
    dict: {"fromkeys": _fromkeys},
}
_AMPLIFIER_NAMES = frozenset(n for table in AMPLIFIERS.values() for n in table)

#: attribute names compiled as plain attribute reads: public on some data type, harmless on every
#: object a script can reach (functions, generators, exceptions, types, API objects have none of them
#: -- checked by tests/sandbox/test_sandbox_escapes.py), and never an amplifier
NATIVE_OK = frozenset(set().union(*(_public(t) for t in DATA_TYPES)) - _AMPLIFIER_NAMES - DENIED
                      - {n for n in _public(type) | _public(BaseException) | _public(types.GeneratorType)
                         | _public(types.CoroutineType) | _public(types.FunctionType)})


# -- attribute reads -------------------------------------------------------------------------------

def guarded_getattr(obj, name, default=_MISSING):
    """``obj.name`` for names that are not :data:`NATIVE_OK`, and the ``getattr`` builtin."""
    if type(name) is not str:
        raise TypeError("attribute name must be a string")
    try:
        if name in NATIVE_OK:
            return getattr(obj, name)
        reason = denied_reason(name)
        if reason:
            raise AttributeError(reason)
        t = type(obj)
        handler = _HANDLERS.get(t) or _handler_for(t)
        return handler(obj, name)
    except AttributeError:
        if default is _MISSING:
            raise
        return default


def guarded_hasattr(obj, name) -> bool:
    return guarded_getattr(obj, name, _NOT_FOUND) is not _NOT_FOUND


_NOT_FOUND = object()


def _no_attribute(obj, name):
    # looked up statically: never run a property of a class nobody vetted just to word a message
    exists = any(name in vars(k) for k in type(obj).__mro__) or (
        isinstance(obj, type) and any(name in vars(k) for k in obj.__mro__))
    if exists:
        return AttributeError(f'"{name}" of {_describe(obj)} is not available in scripts')
    return AttributeError(f"{_describe(obj)} has no attribute '{name}'")


def _describe(obj) -> str:
    own = getattr(type(obj), "_sandbox_describe", None)
    if own is not None:
        return own(obj)
    if isinstance(obj, type):
        return f"the type `{obj.__name__}`"
    if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        return "a function"
    return f"a `{type(obj).__name__}`"


_FIELD_DESCRIPTORS = (types.MemberDescriptorType, types.GetSetDescriptorType)


def _data_handler(t: type):
    base = next(b for b in t.__mro__ if b in _DATA_TYPE_SET)
    allowed = set(_public(base))
    if t is not base:
        # a subclass (struct_time, a namedtuple, IsoCalendarDate, an engine's dict subclass): its extra
        # fields are data, its extra methods are code we never vetted
        for name in _public(t) - allowed:
            attr = getattr(t, name, None)
            if isinstance(attr, _FIELD_DESCRIPTORS) or type(attr).__name__ == "_tuplegetter":
                allowed.add(name)
    allowed = frozenset(allowed)
    amps = {}
    for base in reversed(t.__mro__):
        amps.update(AMPLIFIERS.get(base, {}))

    def handler(obj, name):
        factory = amps.get(name)
        if factory is not None:
            return factory(obj)
        if name in allowed:
            return getattr(obj, name)
        raise _no_attribute(obj, name)
    return handler


#: classes a script may name (date, Decimal, ...): the class attributes it may use
CLASS_ATTRS: dict[type, frozenset] = {
    _dt.date: frozenset({"today", "fromisoformat", "fromordinal", "fromtimestamp", "fromisocalendar",
                         "min", "max", "resolution"}),
    _dt.datetime: frozenset({"now", "today", "utcnow", "fromisoformat", "fromtimestamp", "utcfromtimestamp",
                             "fromordinal", "combine", "strptime", "fromisocalendar", "min", "max", "resolution"}),
    _dt.time: frozenset({"fromisoformat", "min", "max", "resolution"}),
    _dt.timedelta: frozenset({"min", "max", "resolution"}),
    Decimal: frozenset({"from_float"}),
    float: frozenset({"fromhex"}),
}


def _class_handler(cls, name):
    if name in CLASS_ATTRS.get(cls, ()):
        return getattr(cls, name)
    raise _no_attribute(cls, name)


def _exception_handler(exc, name):
    if name == "args":
        return exc.args
    raise _no_attribute(exc, name)


def _nothing_handler(obj, name):
    raise _no_attribute(obj, name)


def _own_getattr_handler(obj, name):
    """API namespaces and type proxies decide for themselves (they only expose what they hold)."""
    return getattr(obj, name)


_HANDLERS: dict = {}


def register_value_type(cls: type, names) -> None:
    """Let scripts read ``names`` on instances of one of our own value classes (calendars, matches)."""
    allowed = frozenset(names)

    def handler(obj, name):
        if name in allowed:
            return getattr(obj, name)
        raise _no_attribute(obj, name)
    _HANDLERS[cls] = handler


def register_self_guarding_type(cls: type) -> None:
    """A class whose ``__getattr__`` exposes only what scripts may use (ApiNamespace, type proxies)."""
    _HANDLERS[cls] = _own_getattr_handler


def _handler_for(t: type):
    if issubclass(t, type):
        handler = _class_handler
    elif issubclass(t, BaseException):
        handler = _exception_handler
    else:
        handler = _nothing_handler
        for base in t.__mro__:
            if base in _DATA_TYPE_SET:
                handler = _data_handler(t)
                break
            if base in _HANDLERS and base is not object:
                handler = _HANDLERS[base]
                break
    _HANDLERS[t] = handler
    return handler


_DATA_TYPE_SET = frozenset(DATA_TYPES)
for _t in DATA_TYPES:
    _HANDLERS[_t] = _data_handler(_t)


# -- item reads, writes, iteration, unpacking --------------------------------------------------------

_ITEM_TYPES = frozenset({dict, list, tuple, str, bytes, range})


def guarded_getitem(ob, index):
    if type(ob) in _ITEM_TYPES:
        return ob[index]
    if isinstance(ob, (dict, list, tuple, str, bytes, range)) and not isinstance(ob, type):
        return ob[index]
    handler = _ITEM_HANDLERS.get(type(ob))
    if handler is not None:
        return handler(ob, index)
    raise TypeError(f"{_describe(ob)} cannot be indexed in scripts")


_ITEM_HANDLERS: dict = {}


def register_item_type(cls: type) -> None:
    _ITEM_HANDLERS[cls] = operator.getitem


def guarded_write(ob):
    """``_write_(ob)[k] = v``, ``del _write_(ob)[k]``, ``_write_(ob).a = v``: dicts and lists only.

    A subclass is writable only if it keeps the plain item assignment (a class overriding
    ``__setitem__`` could act on the engine's behalf).
    """
    t = type(ob)
    if t is dict or t is list:
        return ob
    if isinstance(ob, (dict, list)) and t.__setitem__ in _PLAIN_SETITEM and t.__delitem__ in _PLAIN_DELITEM:
        return ob
    raise TypeError(f"scripts cannot change {_describe(ob)}")


_PLAIN_SETITEM = (dict.__setitem__, list.__setitem__)
_PLAIN_DELITEM = (dict.__delitem__, list.__delitem__)


def _require_run() -> Run:
    """The evaluation's Run; in a fast evaluation (no state) a throwaway one for this call."""
    return current_run() or Run(_budget.DEFAULT_BUDGET)


def _ticking(it, run):
    for x in it:
        run.left -= 1
        if run.left < 0:
            run.check()
        yield x


def guarded_iter(ob):
    """``for x in ob`` / comprehensions / ``iter(ob)``: every item ticks the budget."""
    return _ticking(iter(ob), _require_run())


def iter_unpack_sequence(it, spec, _getiter_=None):
    """``for a, b in it``: the loop unpacks each item natively; the iteration still ticks."""
    return guarded_iter(it)


def unpack_sequence(it, spec, _getiter_=None):
    """``a, b = it``: tuples and lists unpack natively, anything else is iterated with ticks."""
    if type(it) is tuple or type(it) is list:
        return it
    return list(guarded_iter(it))


def apply(f, *args, **kwargs):
    """``f(*args, **kwargs)`` (RestrictedPython routes star-calls here)."""
    return f(*args, **kwargs)


# -- functions the script defines ----------------------------------------------------------------------

def function_guard(fn):
    """Wrap every ``def`` and ``lambda`` of a script: each call ticks and counts nesting depth."""
    run = _require_run()

    def call(*args, **kwargs):
        r = run
        r.depth += 1
        if r.depth > r.max_depth:
            r.too_deep()
        r.left -= 1
        if r.left < 0:
            try:
                r.check()
            except BaseException:
                r.depth -= 1
                raise
        try:
            return fn(*args, **kwargs)
        finally:
            r.depth -= 1
    call.__name__ = getattr(fn, "__name__", "<lambda>")
    call.__qualname__ = call.__name__
    return call


def reraise_budget() -> None:
    """First statement of every ``except`` block: a script cannot swallow a budget stop."""
    exc = sys.exc_info()[1]
    if isinstance(exc, SandboxBudgetExceeded):
        raise exc
    run = _tl.run
    if type(run) is Run and run.exceeded is not None:
        raise run._again()


# -- operators that can amplify --------------------------------------------------------------------

_FIXED = frozenset({float, Decimal, complex, _dt.timedelta})
_SCALAR_ADD = frozenset({int, float, Decimal, complex, _dt.date, _dt.datetime, _dt.timedelta})
_SMALL_INT = 1 << FAST_INT_BITS


def _int_error(bits: int) -> SandboxBudgetExceeded:
    limit = current_budget().max_int_bits
    return SandboxBudgetExceeded(
        f"stopped: the result would be an integer of about {bits:,} bits; scripts may use at most "
        f"{limit:,} bits", kind="memory", limit=limit)


def _check_int_bits(bits: int) -> None:
    if bits > FAST_INT_BITS and bits > current_budget().max_int_bits:
        raise _int_error(bits)


def op_add(a, b):
    if type(a) in _SCALAR_ADD:
        return a + b
    return _add_slow(a, b)


def _add_slow(a, b):
    try:
        n = len(a) + len(b)
    except TypeError:
        return a + b
    if n > FAST_SIZE:
        if isinstance(a, (str, bytes)):
            charge(n * _char_width(a, b), "joining two texts with +")
        else:
            charge_items(n, "joining two collections with +")
    return a + b


def op_mul(a, b):
    if type(a) in _FIXED or type(b) in _FIXED:
        return a * b
    ta = type(a)
    tb = type(b)
    if ta is int and tb is int:
        if -_SMALL_INT < a < _SMALL_INT and -_SMALL_INT < b < _SMALL_INT:
            return a * b
        _check_int_bits(a.bit_length() + b.bit_length())
        return a * b
    return _mul_slow(a, b)


def _mul_slow(a, b):
    if isinstance(a, int) and isinstance(b, int):
        _check_int_bits(a.bit_length() + b.bit_length())
        return a * b
    if isinstance(b, int):
        seq, n = a, b
    elif isinstance(a, int):
        seq, n = b, a
    else:
        return a * b
    try:
        size = len(seq) * n
    except TypeError:
        return a * b
    if size > FAST_SIZE:
        if isinstance(seq, (str, bytes)):
            charge(size * _char_width(seq), f"repeating a text {n:,} times")
        else:
            charge_items(size, f"repeating a collection {n:,} times")
    return a * b


def op_pow(a, b):
    ta = type(a)
    if ta in _FIXED:
        return a ** b
    if isinstance(a, int) and isinstance(b, int):
        if b > 1 and (a > 1 or a < -1):
            bits = a.bit_length() * b
            if bits > FAST_INT_BITS:
                _check_int_bits(bits)
        return a ** b
    return a ** b


def op_lshift(a, b):
    if isinstance(a, int) and isinstance(b, int) and a and b > 0:
        bits = a.bit_length() + b
        if bits > FAST_INT_BITS:
            _check_int_bits(bits)
    return a << b


# -- augmented assignment ------------------------------------------------------------------------------

def _iadd(x, y):
    if type(x) is list:
        n = len(x) + (len(y) if hasattr(y, "__len__") else 0)
        if n > FAST_SIZE:
            charge_items(n, "+= on a list")
        if not hasattr(y, "__len__"):
            y = guarded_iter(y)
        x += y
        return x
    return op_add(x, y)


def _imul(x, y):
    if type(x) is list and isinstance(y, int):
        if len(x) * y > FAST_SIZE:
            charge_items(len(x) * y, "*= on a list")
        x *= y
        return x
    return op_mul(x, y)


_INPLACE = {
    "+=": _iadd, "-=": operator.isub, "*=": _imul, "/=": operator.itruediv, "//=": operator.ifloordiv,
    "%=": op_mod, "**=": op_pow, "<<=": op_lshift, ">>=": operator.irshift, "&=": operator.iand,
    "|=": operator.ior, "^=": operator.ixor, "@=": operator.imatmul,
}


def inplace_var(op: str, x, y):
    return _INPLACE[op](x, y)


#: name used in compiled code -> implementation (bound as code constants by policy.py)
GUARDS = {
    "_getattr_": guarded_getattr,
    "_getitem_": guarded_getitem,
    "_getiter_": guarded_iter,
    "_iter_unpack_sequence_": iter_unpack_sequence,
    "_unpack_sequence_": unpack_sequence,
    "_write_": guarded_write,
    "_inplacevar_": inplace_var,
    "_apply_": apply,
    "_op_add_": op_add,
    "_op_mul_": op_mul,
    "_op_pow_": op_pow,
    "_op_lshift_": op_lshift,
    "_op_mod_": op_mod,
    "_tick_": _budget.tick,
    "_fguard_": function_guard,
    "_reraise_": reraise_budget,
    "_fstring_": fstring,
    "_fmt_": format_value,
}

#: guards that need a Run (budget state) in the thread: code using them is "ticking"
TICKING_GUARDS = frozenset({"_getiter_", "_iter_unpack_sequence_", "_unpack_sequence_", "_tick_", "_fguard_"})

