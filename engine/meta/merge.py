"""Three-way merge of definitions: the firm's local changes survive a partner's upgrade.

``base`` is the definition as the partner shipped it last time, ``ours`` is what is live now
(base plus changes made in the designer), ``theirs`` is the partner's new version. Changes are
merged property by property; lists of mappings that carry a ``key`` (fields, options, sections,
roles' permissions by entity) are merged item by item, so a field the firm added and a field the
partner added both survive. Where both sides changed the same property differently the merge
reports a :class:`MergeConflict` and takes the side the caller chose (default: refuse).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_MISSING = object()
ITEM_KEYS = ("key", "field", "value", "entity")


@dataclass(frozen=True)
class MergeConflict:
    path: str
    base: Any
    ours: Any
    theirs: Any

    def __str__(self) -> str:
        def show(v):
            return "(absent)" if v is _MISSING else repr(v)
        return f"{self.path}: shipped {show(self.base)}, yours {show(self.ours)}, partner's {show(self.theirs)}"

    def to_dict(self) -> dict:
        clean = lambda v: None if v is _MISSING else v  # noqa: E731
        return {"path": self.path, "base": clean(self.base), "ours": clean(self.ours), "theirs": clean(self.theirs)}


def _item_key(items: list) -> str | None:
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    for k in ITEM_KEYS:
        values = [i.get(k) for i in items]
        if all(v is not None for v in values) and len(set(map(repr, values))) == len(values):
            return k
    return None


def merge(base: Any, ours: Any, theirs: Any, path: str = "", choices: dict[str, str] | None = None,
          conflicts: list[MergeConflict] | None = None) -> Any:
    """Merge; conflicts are appended to ``conflicts`` and resolved by ``choices[path]``
    ("ours"/"theirs"), falling back to ``choices.get("*")`` and then to ours."""
    choices = choices or {}
    if conflicts is None:
        conflicts = []
    if ours == theirs:
        return ours
    if ours == base:
        return theirs
    if theirs == base:
        return ours
    if isinstance(ours, dict) and isinstance(theirs, dict):
        b = base if isinstance(base, dict) else {}
        out = {}
        for k in list(dict.fromkeys([*ours, *theirs, *b])):
            v = merge(b.get(k, _MISSING), ours.get(k, _MISSING), theirs.get(k, _MISSING),
                      f"{path}/{k}", choices, conflicts)
            if v is not _MISSING:
                out[k] = v
        return out
    if isinstance(ours, list) and isinstance(theirs, list):
        b = base if isinstance(base, list) else []
        key = _item_key(ours) and _item_key(theirs) and (_item_key(ours) if _item_key(ours) == _item_key(theirs) else None)
        if key and (not b or _item_key(b) == key):
            return _merge_keyed(b, ours, theirs, key, path, choices, conflicts)
    conflict = MergeConflict(path or "/", base, ours, theirs)
    conflicts.append(conflict)
    pick = choices.get(path or "/", choices.get("*", "ours"))
    return theirs if pick == "theirs" else ours


def _merge_keyed(base: list, ours: list, theirs: list, key: str, path: str, choices, conflicts) -> list:
    by = lambda items: {repr(i[key]): i for i in items}  # noqa: E731
    b, o, t = by(base), by(ours), by(theirs)
    merged: dict[str, Any] = {}
    for k in list(dict.fromkeys([*o, *t, *b])):
        item_path = f"{path}[{key}={(o.get(k) or t.get(k) or b.get(k))[key]}]"
        v = merge(b.get(k, _MISSING), o.get(k, _MISSING), t.get(k, _MISSING), item_path, choices, conflicts)
        if v is not _MISSING:
            merged[k] = v
    # order: ours first (the firm's layout), then items only the partner added, in their order
    order = [k for k in o if k in merged] + [k for k in t if k in merged and k not in o]
    return [merged[k] for k in order]


def three_way(base: Any, ours: Any, theirs: Any, choices: dict[str, str] | None = None):
    """Return (merged, conflicts)."""
    conflicts: list[MergeConflict] = []
    merged = merge(base, ours, theirs, "", choices, conflicts)
    return merged, conflicts


def diff(left: Any, right: Any, path: str = "") -> list[str]:
    """Human-readable differences between two definition bodies (for `loom app diff`)."""
    if left == right:
        return []
    if isinstance(left, dict) and isinstance(right, dict):
        out = []
        for k in dict.fromkeys([*left, *right]):
            if k not in right:
                out.append(f"- {path}/{k}")
            elif k not in left:
                out.append(f"+ {path}/{k}: {right[k]!r}")
            else:
                out += diff(left[k], right[k], f"{path}/{k}")
        return out
    if isinstance(left, list) and isinstance(right, list):
        key = _item_key(left) if _item_key(left) == _item_key(right) else None
        if key:
            lm, rm = {repr(i[key]): i for i in left}, {repr(i[key]): i for i in right}
            out = []
            for k in dict.fromkeys([*lm, *rm]):
                p = f"{path}[{key}={(lm.get(k) or rm.get(k))[key]}]"
                if k not in rm:
                    out.append(f"- {p}")
                elif k not in lm:
                    out.append(f"+ {p}")
                else:
                    out += diff(lm[k], rm[k], p)
            return out
    return [f"~ {path or '/'}: {left!r} -> {right!r}"]
