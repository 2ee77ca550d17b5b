"""Window state to and from JSON, keyed by slot signature.

A snapshot row holds one group key's state. Slots are stored by signature, not position, so a new
rule version that keeps a window keeps its state, and a window that changed starts empty instead
of being misread. JSON cannot key a dict by a number or a tuple, so dicts travel as pairs.
"""
from __future__ import annotations

from collections import deque

from engine.rules.codegen import Program, Slot


def _dump_buffer(s: Slot, b: list) -> list:
    out = [[list(it) for it in b[0]]]
    out += [b[1 + j] for j in range(len(s.sums))]
    out += [list(b[1 + len(s.sums) + j].items()) for j in range(len(s.distincts))]
    out += b[s.base:]                   # views: counts and sums, all integers
    return out


def _load_buffer(s: Slot, raw: list) -> list:
    b = [deque(tuple(it) for it in raw[0])]
    b += [int(v) for v in raw[1:1 + len(s.sums)]]
    b += [{(tuple(k) if isinstance(k, list) else k): v for k, v in pairs}
          for pairs in raw[1 + len(s.sums):s.base]]
    b += [int(v) for v in raw[s.base:]]
    return b


def _key(k):
    return tuple(k) if isinstance(k, list) else k


def dump(program: Program, state: list) -> dict:
    slots = {}
    for s in program.slots:
        v = state[s.index]
        if s.kind == "last":
            data = list(v.items()) if s.by else v
            if data is None or data == []:
                continue
        elif s.by:
            data = [[k, _dump_buffer(s, b)] for k, b in v.items() if b[0]]
            if not data:
                continue
        else:
            if not v[0]:
                continue
            data = _dump_buffer(s, v)
        slots[repr(s.signature)] = data
    return {"slots": slots, "suppressed": state[-1] or {}}


def load(program: Program, raw: dict) -> list:
    state = program.new_state()
    stored = raw.get("slots") or {}
    for s in program.slots:
        data = stored.get(repr(s.signature))
        if data is None:
            continue
        if s.kind == "last":
            state[s.index] = {_key(k): v for k, v in data} if s.by else data
        elif s.by:
            state[s.index] = {_key(k): _load_buffer(s, b) for k, b in data}
        else:
            state[s.index] = _load_buffer(s, data)
    state[-1] = dict(raw.get("suppressed") or {}) or None
    return state
