"""Regular expressions with a time limit, and matches as plain data.

Catastrophic backtracking (``(a|aa)+$`` on forty a's and a b) runs in C, beyond any tick; the
``regex`` package stops a match after a timeout, so every call gets the evaluation's remaining
time. Patterns are capped in length, texts in size, and a match comes back as a
:class:`RegexMatch` -- its text, groups and positions -- never as a pattern object whose methods
take no timeout.
"""
from __future__ import annotations

import functools
from time import monotonic

from engine.sandbox.api import VALUE_TYPES, trusted_namespace
from engine.sandbox.budget import Run, _tl, charge, current_budget, current_run
from engine.sandbox.errors import SandboxBudgetExceeded
from engine.sandbox.guards import register_item_type, register_value_type
from engine.sandbox.text import FAST_SIZE

try:  # the `regex` package supports a timeout; the stdlib `re` does not
    import regex as _re
    HAS_REGEX_TIMEOUT = True
except ImportError:  # pragma: no cover - regex is a declared dependency
    import re as _re
    HAS_REGEX_TIMEOUT = False

MAX_PATTERN = 1000

class RegexMatch:
    """A regex match as plain data: the matched text, groups and positions (no pattern object)."""

    __slots__ = ("_groups", "_spans", "_names")

    def __init__(self, m):
        n = len(m.groups())
        object.__setattr__(self, "_groups", tuple(m.group(i) for i in range(n + 1)))
        object.__setattr__(self, "_spans", tuple(m.span(i) for i in range(n + 1)))
        object.__setattr__(self, "_names", dict(m.re.groupindex))

    def _index(self, which):
        if isinstance(which, str):
            try:
                return self._names[which]
            except KeyError:
                raise IndexError(f"no group named {which!r}") from None
        return which

    def group(self, *which):
        if not which:
            return self._groups[0]
        out = tuple(self._groups[self._index(w)] for w in which)
        return out[0] if len(out) == 1 else out

    def groups(self, default=None):
        return tuple(default if g is None else g for g in self._groups[1:])

    def groupdict(self, default=None):
        return {k: default if self._groups[i] is None else self._groups[i] for k, i in self._names.items()}

    def start(self, group=0):
        return self._spans[self._index(group)][0]

    def end(self, group=0):
        return self._spans[self._index(group)][1]

    def span(self, group=0):
        return self._spans[self._index(group)]

    def __getitem__(self, which):
        return self._groups[self._index(which)]

    def __setattr__(self, key, value):
        raise TypeError("a regex match cannot be changed")

    def __repr__(self) -> str:
        return f"<match {self._groups[0]!r} at {self._spans[0]}>"


VALUE_TYPES.add(RegexMatch)
register_value_type(RegexMatch, ("group", "groups", "groupdict", "start", "end", "span"))
register_item_type(RegexMatch)

_FLAG_LETTERS = {"i": _re.IGNORECASE, "m": _re.MULTILINE, "s": _re.DOTALL, "x": _re.VERBOSE}


@functools.lru_cache(maxsize=512)
def _compile(pattern, flags):
    return _re.compile(pattern, flags)


def _pattern(pattern, flags):
    if not isinstance(pattern, str):
        raise TypeError("a regular expression must be text")
    if len(pattern) > MAX_PATTERN:
        raise ValueError(f"regular expressions longer than {MAX_PATTERN} characters are refused")
    if isinstance(flags, str):
        value = 0
        for letter in flags:
            if letter not in _FLAG_LETTERS:
                raise ValueError(f"unknown regex flag {letter!r}; use i, m, s, x")
            value |= _FLAG_LETTERS[letter]
        flags = value
    elif not isinstance(flags, int):
        raise TypeError("regex flags are letters like 'i' or 'im'")
    try:
        return _compile(pattern, flags)
    except _re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None


def _text(text):
    if not isinstance(text, str):
        raise TypeError("regular expressions search text")
    limit = current_budget().max_items
    if len(text) > limit:
        raise SandboxBudgetExceeded(f"stopped: regular expression over {len(text):,} characters; at most {limit:,}",
                                    kind="memory", limit=limit)
    return text


def _timeout() -> float:
    run = _tl.run
    if type(run) is Run:
        return max(0.001, run.deadline - monotonic())
    return current_budget().seconds


def _run_regex(call):
    if not HAS_REGEX_TIMEOUT:  # pragma: no cover
        return call({})
    try:
        return call({"timeout": _timeout()})
    except TimeoutError:
        run = current_run()
        if run is not None:
            run.fail("time", "spent its whole time budget in one regular expression", run.budget.seconds)
        raise SandboxBudgetExceeded("stopped: a regular expression ran out of time", kind="time")


def re_search(pattern, text, flags=0):
    p, t = _pattern(pattern, flags), _text(text)
    m = _run_regex(lambda kw: p.search(t, **kw))
    return RegexMatch(m) if m else None


def re_match(pattern, text, flags=0):
    p, t = _pattern(pattern, flags), _text(text)
    m = _run_regex(lambda kw: p.match(t, **kw))
    return RegexMatch(m) if m else None


def re_fullmatch(pattern, text, flags=0):
    p, t = _pattern(pattern, flags), _text(text)
    m = _run_regex(lambda kw: p.fullmatch(t, **kw))
    return RegexMatch(m) if m else None


def re_findall(pattern, text, flags=0):
    p, t = _pattern(pattern, flags), _text(text)
    return _run_regex(lambda kw: p.findall(t, **kw))


def re_split(pattern, text, maxsplit=0, flags=0):
    p, t = _pattern(pattern, flags), _text(text)
    return _run_regex(lambda kw: p.split(t, maxsplit=maxsplit, **kw))


def re_sub(pattern, replacement, text, count=0, flags=0):
    """Replace matches; ``replacement`` is text (``\\1`` refers to groups), not a function."""
    p, t = _pattern(pattern, flags), _text(text)
    if not isinstance(replacement, str):
        raise TypeError("re_sub(): the replacement must be text")
    refs = replacement.count("\\")
    bound = len(t) * (1 + refs) + (len(t) + 1) * len(replacement)
    if bound > FAST_SIZE:
        charge(bound, "re_sub()")
    return _run_regex(lambda kw: p.sub(replacement, t, count=count, **kw))


def re_escape(text):
    return _re.escape(_text(text))


re = trusted_namespace("re", search=re_search, match=re_match, fullmatch=re_fullmatch, findall=re_findall,
                       split=re_split, sub=re_sub, escape=re_escape)
