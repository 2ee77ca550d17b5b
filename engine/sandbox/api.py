"""How engine functions are handed to scripts: callable, but not reachable into.

Other packages pass per-call functions in ``api`` (``records.get``, ``workflow.start``, ``notify``).
A plain Python function or bound method carries ``__globals__``, ``__self__`` and closures: the
whole engine. So every API callable is wrapped in an :class:`ApiFunction` and grouped in an
:class:`ApiNamespace`; both expose nothing but the call (the attribute guard treats them as opaque)
and refuse writes. The wrapper also keeps the engine's exceptions and objects on its side of the
fence: arguments and results must be plain data, and an engine exception reaches the script only
as an :class:`~engine.sandbox.errors.ApiError` carrying a message.
"""
from __future__ import annotations

import datetime as _dt
import types
import uuid
from decimal import Decimal
from types import MappingProxyType

from engine.errors import LoomError
from engine.sandbox.budget import current_run
from engine.sandbox.errors import ApiError, SandboxBudgetExceeded
from engine.sandbox.guards import register_self_guarding_type

_PLAIN_SCALARS = frozenset({type(None), bool, int, float, str, bytes, Decimal, _dt.date, _dt.datetime, _dt.time,
                            _dt.timedelta, uuid.UUID})
_PLAIN_CONTAINERS = (list, tuple, dict, set, frozenset)
#: our own value classes scripts may hold (calendars, regex matches); registered by their modules
VALUE_TYPES: set[type] = set()

#: exception types whose message is about the call itself and safe to show the script
_SHOWN = (LoomError, TypeError, ValueError, LookupError, ArithmeticError)


class ApiFunction:
    """An engine function as scripts see it: callable, with no attributes and no way in."""

    __slots__ = ("_name", "_fn", "_trusted")

    def __init__(self, name: str, fn, *, trusted: bool = False):
        if not callable(fn):
            raise TypeError(f"API entry `{name}` is not callable")
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_fn", fn)
        object.__setattr__(self, "_trusted", trusted)

    def __call__(self, *args, **kwargs):
        if self._trusted:
            return self._fn(*args, **kwargs)
        current_run()       # an evaluation running on a bare budget gets its Run now: nested ones inherit it
        where = f"argument of {self._name}()"
        for a in args:
            check_plain(a, where)
        for a in kwargs.values():
            check_plain(a, where)
        try:
            result = self._fn(*args, **kwargs)
        except SandboxBudgetExceeded:
            raise
        except Exception as exc:
            raise ApiError(_api_message(self._name, exc)) from exc
        check_plain(result, f"result of {self._name}()")
        return result

    def __setattr__(self, key, value):
        raise TypeError(f"scripts cannot change the API function {self._name}")

    def __delattr__(self, key):
        raise TypeError(f"scripts cannot change the API function {self._name}")

    def __repr__(self) -> str:
        return f"<API function {self._name}>"

    def _sandbox_describe(self) -> str:
        return f"the API function `{self._name}`"

    def __reduce__(self):
        raise TypeError("API functions cannot be pickled")


def _api_message(name: str, exc: Exception) -> str:
    if isinstance(exc, _SHOWN):
        text = exc.message if isinstance(exc, LoomError) else str(exc)
        return f"{name}: {text[:500]}"
    return f"{name} failed ({type(exc).__name__})"


class ApiNamespace:
    """A read-only group of API functions and values: ``records.get(...)``, ``math.sqrt(...)``."""

    __slots__ = ("_name", "_members")

    def __init__(self, name: str, members: dict):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_members", MappingProxyType(dict(members)))

    def __getattr__(self, attr):
        try:
            return self._members[attr]
        except KeyError:
            offers = ", ".join(sorted(self._members))
            raise AttributeError(f"{self._name} has no member `{attr}`; it offers: {offers}") from None

    def __setattr__(self, key, value):
        raise TypeError(f"scripts cannot change {self._name}")

    def __delattr__(self, key):
        raise TypeError(f"scripts cannot change {self._name}")

    def __repr__(self) -> str:
        return f"<API {self._name}: {', '.join(sorted(self._members))}>"

    def __dir__(self):
        return sorted(self._members)

    def _sandbox_describe(self) -> str:
        return f"`{self._name}` (an API)"

    def __reduce__(self):
        raise TypeError("API namespaces cannot be pickled")


register_self_guarding_type(ApiNamespace)


def api_function(name: str, fn) -> ApiFunction:
    """Wrap one engine callable for scripts (``api={"notify": api_function("notify", fn)}``)."""
    return fn if isinstance(fn, ApiFunction) else ApiFunction(name, fn)


def api_namespace(name: str, **members) -> ApiNamespace:
    """Group engine callables (and plain constants) under one name, e.g.::

        api = {"records": api_namespace("records", get=svc_get, find=svc_find)}
        # script: records.get("crm.customer", 7)["name"]

    Callables are wrapped in :class:`ApiFunction`; nested namespaces and plain data are kept.
    """
    for key in members:
        if not key.isidentifier() or key.startswith("_"):
            raise TypeError(f"API member names must be public identifiers, got {key!r}")
    return ApiNamespace(name, {k: _member(f"{name}.{k}", v) for k, v in members.items()})


def trusted_namespace(name: str, **members) -> ApiNamespace:
    """For the standard library: members are our own vetted functions, no wrapping needed."""
    return ApiNamespace(name, members)


def _member(name: str, value):
    if isinstance(value, (ApiFunction, ApiNamespace)) or type(value) in VALUE_TYPES:
        return value
    if isinstance(value, (types.ModuleType, type)):
        raise TypeError(f"API entry `{name}` is a {'module' if isinstance(value, types.ModuleType) else 'class'}: "
                        f"give scripts functions (api_namespace(...)) instead")
    if callable(value):
        return ApiFunction(name, value)
    check_plain(value, f"API value `{name}`")
    return value


class PreparedApi(dict):
    """An ``api`` dict already checked and wrapped, with the globals scripts run with.

    Build it once (per actor, per process...) with :func:`prepare_api` and pass it on every call:
    evaluations then skip the wrapping and, for plain expressions, even the copying.
    """

    __slots__ = ("globals",)


def prepare_api(api: dict) -> PreparedApi:
    """Make an ``api`` dict safe for scripts: wrap raw callables, refuse modules and classes."""
    if type(api) is PreparedApi:
        return api
    from engine.sandbox.library import LIBRARY
    out = PreparedApi()
    for key, value in api.items():
        if not isinstance(key, str) or not key.isidentifier() or key.startswith("_"):
            raise TypeError(f"API names must be public identifiers, got {key!r}")
        out[key] = _member(key, value)
    out.globals = {**LIBRARY, **out, "__builtins__": LIBRARY}
    return out


def is_plain(value) -> bool:
    try:
        check_plain(value, "value")
        return True
    except TypeError:
        return False


def check_plain(value, where: str) -> None:
    """Raise TypeError unless ``value`` is plain data (scalars, containers of plain data, API objects)."""
    t = type(value)
    if t in _PLAIN_SCALARS:
        return
    if (t is list or t is tuple) and all(map(_PLAIN_SCALARS.__contains__, map(type, value))):
        return
    _check_deep(value, where)


def _check_deep(value, where: str) -> None:
    stack = [value]
    seen: set[int] = set()
    while stack:
        v = stack.pop()
        t = type(v)
        if t in _PLAIN_SCALARS or t in VALUE_TYPES or t is ApiNamespace or t is ApiFunction:
            continue
        if isinstance(v, _PLAIN_CONTAINERS):
            if id(v) in seen:
                continue
            seen.add(id(v))
            if isinstance(v, dict):
                stack.extend(v.keys())
                stack.extend(v.values())
            else:
                stack.extend(v)
            continue
        if isinstance(v, tuple(_PLAIN_SCALARS - {type(None), bool}) + tuple(VALUE_TYPES)):
            continue        # subclasses (IntEnum members, aware datetime subclasses, ...)
        raise TypeError(f"{where} is a {t.__name__}: API calls take and return plain data "
                        f"(text, numbers, Decimal, dates, lists, dicts)")
