"""Compile a rule set into ONE generated Python function, built once per set of rule versions.

Why generate code: a monitoring engine evaluates every rule for every event. Interpreting a rule
tree per event (or calling one sandboxed function per expression) costs several times the work
itself. The generator writes the whole rule set -- window updates, feature reads, conditions,
scores, typology sums -- as straight-line code of a single function, dispatching once on the event
kind. User text enters it only as expressions that passed :mod:`engine.rules.expressions` (the
sandbox's check plus a whitelist without attribute access, subscripts, calls other than a few pure
built-ins, loops or lambdas) with every name rewritten to a generated local or a constant.

State per group key is a list of *slots*. A slot is identified by a signature (source events,
filter, window, sub-key fields), so rules with identical windows share one buffer, and state
survives a new rule version whose windows did not change (see :mod:`engine.rules.state`).

* window buffer (time or count): ``[deque of (ts, event_id, v0, v1..., flag0...), acc1, acc2, ...,
  view states]`` with a running sum per summed field and a value -> count dict per distinct field;
  with ``by`` fields a dict sub-key -> such a buffer. Time windows of counts and sums over the same
  event kind and sub-key share one buffer: the longest unfiltered window keeps the items and the
  others are :class:`View` s of its newest items (a count and sums each; a filtered view counts
  only the items whose flag -- its filter's result, kept in the item -- is set);
* last-seen time (``since_last``): a float, or a dict sub-key -> float.

Time windows hold the events in ``[ts - W, ts]``; count windows the last N matching events. Sums
are kept as integers of millionths (exact: no drift however many events enter and leave a
window), so the streaming path and the vectorised backtest agree to the last bit.
"""
from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from engine.rules.expressions import rewrite
from engine.rules.model import BUFFER_AGGS, Feature, Rule, Ruleset, Source, Typology


@dataclass
class Instance:
    """One rule version running in a mode (``active`` raises alerts, ``shadow`` only records)."""
    index: int
    rule: Rule
    mode: str


@dataclass
class TypologyInstance:
    index: int
    typology: Typology
    mode: str
    members: list[tuple[int, float]]        # (rule instance index, weight)


@dataclass
class Slot:
    index: int
    signature: tuple
    kind: str                    # "time" | "events" | "last"
    source: Source
    size: float = 0.0            # seconds or events
    by: tuple = ()
    values: list[str] = field(default_factory=list)      # event fields kept in each item (min/max/distinct)
    sums: list[str] = field(default_factory=list)        # fields with a running sum (item keeps millionths)
    distincts: list[str] = field(default_factory=list)   # fields with a value -> count dict
    views: list["View"] = field(default_factory=list)    # shorter time windows over the same items
    flags: list[tuple] = field(default_factory=list)     # filter signatures whose results items carry

    def acc_index(self, agg: str, fld: str) -> int:
        if agg == "sum":
            return 1 + self.sums.index(fld)
        return 1 + len(self.sums) + self.distincts.index(fld)

    @property
    def base(self) -> int:
        """Position of the first view's count in a buffer."""
        return 1 + len(self.sums) + len(self.distincts)

    def new(self):
        if self.kind == "last":
            return {} if self.by else None
        if self.by:
            return {}
        return self.new_buffer()

    def new_buffer(self):
        b = [deque()] + [0] * len(self.sums) + [{} for _ in self.distincts]
        for v in self.views:
            b += [0] * v.width
        return b


@dataclass
class View:
    """A shorter time window over the newest items of a longer one on the same events and sub-key.

    Why: a buffer per window costs a push, an eviction check and an item per event per window, and
    on a busy key the memory traffic of those buffers is most of the work. The items of a 5-minute
    window are the newest items of a 1-hour window over the same events, so the shorter window
    keeps only how many of the newest items it spans (``c``) and its own counts and sums. With a
    ``source`` (an extra filter: "sells only") each item carries that filter's result and the view
    counts and sums only the items that passed it -- exactly what a separate filtered buffer would
    hold. A view's edge moves as a separate buffer's would (same items, same test) and is settled
    before the long window drops old items, so the long window never drops an item a view holds.
    Buffer layout from ``offset``: ``[c, matched count (filtered views only), sum1, sum2, ...]``."""
    size: float
    sums: list[str]
    source: Source | None = None
    counted: bool = False           # a count feature reads it (filtered views keep a matched count)
    flag: int | None = None
    offset: int = 0

    @property
    def matched(self) -> bool:
        return self.source is not None and self.counted

    @property
    def width(self) -> int:
        return 1 + self.matched + len(self.sums)

    @property
    def count_index(self) -> int:
        return self.offset + self.matched

    def sum_index(self, fld: str) -> int:
        return self.offset + 1 + self.matched + self.sums.index(fld)

    @property
    def signature(self) -> tuple:
        return (self.size, self.source.signature if self.source else None, self.matched, tuple(self.sums))


def _num(value):
    """Numbers from events: JSON numbers as they are, decimal strings (money) as floats."""
    if value is None or value.__class__ is float or value.__class__ is int:
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _ids(buffers, eid):
    """Evidence: the ids of the events inside the windows a hit read. Hits carry the buffers
    themselves; the consumer calls this right after the event (before the windows move on) and
    only for hits it keeps, so suppressed hits cost nothing."""
    out = []
    for b in buffers:
        if b.__class__ is tuple:    # a view: the newest buf[at] items of buffer buf (those passing a flag)
            _, buf, at, flag = b
            if buf is not None and buf[at]:
                q = buf[0]
                items = (q[j] for j in range(len(q) - buf[at], len(q)))
                out.extend(it[1] for it in items if flag is None or it[flag])
        elif b is not None:
            out.extend(it[1] for it in b[0])
    if eid not in out:
        out.append(eid)
    return list(dict.fromkeys(out))


class _Writer:
    def __init__(self):
        self.lines: list[str] = []

    def __call__(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)


@dataclass
class Program:
    """The compiled form of one rule set's running rule versions."""
    ruleset: Ruleset
    instances: list[Instance]
    typologies: list[TypologyInstance]
    slots: list[Slot]
    references: list[Feature]
    source: str
    run: Any = None
    refs: list[dict] = field(default_factory=list)
    numeric: set = field(default_factory=set)      # fields read as numbers (summed, min, max)

    def new_state(self) -> list:
        # last item: suppression times, made on a key's first alert (most keys never have one)
        return [s.new() for s in self.slots] + [None]

    @property
    def signatures(self) -> list[tuple]:
        return [s.signature for s in self.slots]


def build(ruleset: Ruleset, instances: list[Instance], typologies: list[TypologyInstance]) -> Program:
    slots: dict[tuple, Slot] = {}
    references: list[Feature] = []
    ref_index: dict[tuple, int] = {}

    # -- slots ---------------------------------------------------------------------------------
    for inst in instances:
        for f in inst.rule.features:
            if f.agg in BUFFER_AGGS:
                sig = f.buffer_signature
                slot = slots.get(sig)
                if slot is None:
                    slot = slots[sig] = Slot(len(slots), sig, f.window[0], f.source, f.window[1], f.by)
                if f.field and f.agg != "sum" and f.field not in slot.values:
                    slot.values.append(f.field)
                if f.agg == "sum" and f.field not in slot.sums:
                    slot.sums.append(f.field)
                if f.agg == "distinct" and f.field not in slot.distincts:
                    slot.distincts.append(f.field)
            elif f.agg == "since_last":
                sig = ("last", f.source.signature, f.by)
                if sig not in slots:
                    slots[sig] = Slot(len(slots), sig, "last", f.source, by=f.by)
            elif f.agg == "reference":
                rsig = (f.entity, f.key_field, f.value_field)
                if rsig not in ref_index:
                    ref_index[rsig] = len(references)
                    references.append(f)
    # time windows of counts and sums over the same events and sub-key share one buffer: the
    # longest unfiltered one keeps the items, shorter ones (filtered or not) become views of its
    # newest items; filtered windows longer than it share among the same filter only (a log of all
    # events kept for a long rare-event window would hold far more than that window needs)
    slot_of = {}
    view_of: dict[tuple, View] = {}
    families: dict[tuple, list[Slot]] = {}
    for sig, slot in slots.items():
        if slot.kind == "time" and not slot.values and not slot.distincts:
            families.setdefault((slot.source.kind_key, slot.by), []).append(slot)
    longest_first = lambda sl: (-sl.size, repr(sl.signature))      # noqa: E731
    counted = {f.buffer_signature for inst in instances for f in inst.rule.features if f.agg == "count"}
    for family in families.values():
        family.sort(key=longest_first)
        groups = []
        rest = family
        unfiltered = [sl for sl in family if sl.source.filter is None]
        if unfiltered:
            primary = unfiltered[0]
            members = [sl for sl in family if sl is not primary and sl.size <= primary.size]
            groups.append((primary, members))
            rest = [sl for sl in family if sl is not primary and sl not in members]
        same_filter: dict[tuple, list[Slot]] = {}
        for sl in rest:
            same_filter.setdefault(sl.source.signature, []).append(sl)
        groups += [(same[0], same[1:]) for same in same_filter.values()]
        for primary, members in groups:
            for other in members:
                del slots[other.signature]
                slot_of[other.signature] = primary
                extra = other.source if other.source.signature != primary.source.signature else None
                view = View(other.size, sorted(other.sums), extra, counted=other.signature in counted)
                view_of[other.signature] = view
                primary.views.append(view)
                if extra is not None and extra.signature not in primary.flags:
                    primary.flags.append(extra.signature)
                for fld in other.sums:
                    if fld not in primary.sums:
                        primary.sums.append(fld)
    # sort value/acc lists so the layout (and the stored state) does not depend on rule order
    ordered = sorted(slots.values(), key=lambda s: repr(s.signature))
    for i, s in enumerate(ordered):
        s.index = i
        s.values.sort(), s.sums.sort(), s.distincts.sort()
        slot_of[s.signature] = s
        s.signature = s.signature + (tuple(s.values), tuple(s.sums), tuple(s.distincts))
        if s.views:
            s.flags.sort(key=repr)
            s.views.sort(key=lambda v: repr(v.signature))
            off = s.base
            for v in s.views:
                v.offset = off
                off += v.width
                if v.source is not None:
                    v.flag = 2 + len(s.values) + len(s.sums) + s.flags.index(v.source.signature)
            s.signature = s.signature + (tuple(v.signature for v in s.views),)
    view_owner: dict[int, Rule] = {}       # the rule whose parameters a view's filter reads
    for inst in instances:
        for f in inst.rule.features:
            if f.agg in BUFFER_AGGS and f.buffer_signature in view_of:
                view_owner.setdefault(id(view_of[f.buffer_signature]), inst.rule)

    numeric = {f.field for inst in instances for f in inst.rule.features if f.agg in ("sum", "min", "max")}
    w = _Writer()
    w(0, "def run(k, ev, ts, eid, st, hits, errs):")
    # -- group the work by dispatch key ----------------------------------------------------------
    kinds: dict[str, dict] = {}

    def section(kind_key: str) -> dict:
        return kinds.setdefault(kind_key, {"slots": [], "rules": []})

    for s in ordered:
        section(s.source.kind_key)["slots"].append(s)
    for inst in instances:
        section(inst.rule.trigger.kind_key)["rules"].append(inst)

    def fields_resolver(rule: Rule | None, features: dict[str, str], used: set):
        params = rule.params if rule else {}

        def resolve(name: str) -> ast.expr:
            if name in features:
                return ast.Name(features[name], ast.Load())
            if name in params:
                return ast.Constant(params[name])
            used.add(name)
            return ast.Name("x_" + name, ast.Load())
        return resolve

    members = {m for t in typologies for m, _ in t.members}

    def emit_section(depth: int, kind_key: str, sec: dict) -> None:
        body = _Writer()
        used: set[str] = set()
        micro: set[str] = set()
        d = depth
        # filters of the sources of this kind, evaluated once each
        filters: dict[tuple, str] = {}

        def cond(src: Source, rule: Rule | None) -> str:
            if src.filter is None:
                return "True"
            key = (src.signature, id(rule) if rule and rule.params else None)
            if key not in filters:
                filters[key] = f"m{len(filters)}"
                body(d, f"{filters[key]} = {rewrite(src.filter, fields_resolver(rule, {}, used))}")
            return filters[key]

        # since_last values before this event counts
        for s in sec["slots"]:
            if s.kind == "last":
                if s.by:
                    body(d, f"p{s.index} = st[{s.index}].get({_subkey(s.by, used)})")
                else:
                    body(d, f"p{s.index} = st[{s.index}]")
        # pushes (window buffers must filter with the owning rule's params: filters use event fields
        # and params; a buffer is shared only by identical filter text, so use the first rule's params)
        owner: dict[int, Rule] = {}
        for inst in instances:
            for f in inst.rule.features:
                if f.agg in BUFFER_AGGS or f.agg == "since_last":
                    base = f.buffer_signature if f.agg != "since_last" else ("last", f.source.signature, f.by)
                    owner.setdefault(slot_of[base].index, inst.rule)
        for s in sec["slots"]:
            flagvars: dict[int, str] = {}
            for v in s.views:
                if v.source is not None and v.flag not in flagvars:
                    flagvars[v.flag] = cond(v.source, view_owner.get(id(v)))
            m = cond(s.source, owner.get(s.index))
            if m != "True":
                body(d, f"if {m}:")
            else:
                body(d, "if True:")
            if s.kind == "last":
                if s.by:
                    body(d + 1, f"st[{s.index}][{_subkey(s.by, used)}] = ts")
                else:
                    body(d + 1, f"st[{s.index}] = ts")
                continue
            for v in s.values + s.sums:
                used.add(v)
            if s.by:
                body(d + 1, f"bb = st[{s.index}]; sk = {_subkey(s.by, used)}; b = bb.get(sk)")
                body(d + 1, f"if b is None: b = bb[sk] = _slots[{s.index}].new_buffer()")
            else:
                body(d + 1, f"b = st[{s.index}]")
            body(d + 1, "q = b[0]")
            item = ", ".join(["ts", "eid"] + [f"x_{v}" for v in s.values] + [f"u_{v}" for v in s.sums]
                             + [flagvars[j] for j in sorted(flagvars)])
            micro.update(s.sums)
            if s.kind == "events":
                body(d + 1, f"if len(q) >= {int(s.size)}:")
                body(d + 2, "it = q.popleft()")
                _dec(body, d + 2, s)
            body(d + 1, f"q.append(({item},))")
            for j, fld in enumerate(s.sums):
                body(d + 1, f"b[{1 + j}] += u_{fld}")
            for j, fld in enumerate(s.distincts):
                ai = 1 + len(s.sums) + j
                body(d + 1, f"dd = b[{ai}]; dd[x_{fld}] = dd.get(x_{fld}, 0) + 1")
            counted_in_evict = s.kind == "time" and (s.by or s.source.filter is None)
            for v in s.views:
                if not counted_in_evict:
                    body(d + 1, f"b[{v.offset}] += 1")
                if v.source is not None and (v.matched or v.sums):
                    body(d + 1, f"if {flagvars[v.flag]}:")
                    if v.matched:
                        body(d + 2, f"b[{v.count_index}] += 1")
                    for fld in v.sums:
                        body(d + 2, f"b[{v.sum_index(fld)}] += u_{fld}")
                else:
                    for fld in v.sums:
                        body(d + 1, f"b[{v.sum_index(fld)}] += u_{fld}")
            if s.kind == "time" and (s.by or s.source.filter is None):
                # just pushed, so never empty: no emptiness test
                _evict(body, d + 1, s, nonempty=True)
            elif s.kind == "time":
                # filtered source: evicted for every event of this kind, pushed or not, so rules
                # of this kind read the buffer without evicting again
                body(d, f"q = st[{s.index}][0]; b = st[{s.index}]")
                _evict(body, d, s, nonempty=False)
        # rules
        for inst in sec["rules"]:
            r = inst.rule
            ri = inst.index
            names: dict[str, str] = {f.key: f"f{ri}_{f.key}" for f in r.features}
            m = cond(r.trigger, r)
            body(d, f"if {m}:")
            body(d + 1, "try:")
            dd = d + 2
            bufs: list[str] = []
            loaded: list[str] = []
            for f in r.features:
                var = names[f.key]
                if f.agg in BUFFER_AGGS:
                    s = slot_of[f.buffer_signature]
                    view = view_of.get(f.buffer_signature)
                    bv = f"b{ri}_{s.index}"
                    if bv not in loaded:
                        loaded.append(bv)
                        if s.by:
                            body(dd, f"{bv} = st[{s.index}].get({_subkey(s.by, used)})")
                        else:
                            body(dd, f"{bv} = st[{s.index}]")
                        if s.kind == "time" and not s.by and s.source.kind_key == kind_key:
                            pass        # evicted in this event's push step
                        elif s.kind == "time":
                            body(dd, f"if {bv} is not None:")
                            body(dd + 1, f"q = {bv}[0]; b = {bv}")
                            _evict(body, dd + 1, s, nonempty=False)
                    evref = f"('v', {bv}, {view.offset}, {view.flag})" if view else bv
                    if evref not in bufs:
                        bufs.append(evref)
                    if f.agg == "count":
                        expr = f"{bv}[{view.count_index}]" if view else f"len({bv}[0])"
                        empty = "0"
                    elif f.agg == "sum":
                        at = view.sum_index(f.field) if view else s.acc_index('sum', f.field)
                        expr = f"{bv}[{at}] / 1000000.0"
                        empty = "0.0"
                    elif f.agg == "distinct":
                        expr = f"len({bv}[{s.acc_index('distinct', f.field)}])"
                        empty = "0"
                    else:
                        j = 2 + s.values.index(f.field)
                        expr = f"{f.agg}([it[{j}] for it in {bv}[0] if it[{j}] is not None], default=None)"
                        empty = "None"
                    if s.by:
                        body(dd, f"{var} = {expr} if {bv} is not None else {empty}")
                    else:
                        body(dd, f"{var} = {expr}")
                elif f.agg == "since_last":
                    s = slot_of[("last", f.source.signature, f.by)]
                    if s.source.kind_key == kind_key:
                        prev = f"p{s.index}"
                    elif s.by:
                        prev = f"st[{s.index}].get({_subkey(s.by, used)})"
                    else:
                        prev = f"st[{s.index}]"
                    body(dd, f"pv = {prev}")
                    body(dd, f"{var} = (ts - pv) if pv is not None else None")
                elif f.agg == "ratio":
                    body(dd, f"{var} = ({names[f.of]} / {names[f.to]}) if {names[f.to]} else None")
                elif f.agg == "reference":
                    k2 = ref_index[(f.entity, f.key_field, f.value_field)]
                    used.add(f.match)
                    body(dd, f"{var} = _REF[{k2}].get(x_{f.match})")
            resolve = fields_resolver(r, names, used)
            body(dd, f"if {rewrite(r.condition, resolve)}:")
            if r.bands:
                on, steps = r.bands
                body(dd + 1, f"bv_ = {rewrite(on, resolve)}")
                body(dd + 1, f"s_ = {steps[0][1]!r} if bv_ is not None else 0.0")
                for mn, sc, _ in steps[1:]:
                    body(dd + 1, f"if bv_ is not None and bv_ >= {mn!r}: s_ = {sc!r}")
            elif isinstance(r.score, float):
                body(dd + 1, f"s_ = {r.score!r}")
            else:
                body(dd + 1, f"s_ = {rewrite(r.score, resolve)}")
            vals = ", ".join(names[f.key] for f in r.features)
            btuple = f"({', '.join(bufs)}{',' if bufs else ''})"
            if ri in members:
                body(dd + 1, f"sc{ri} = s_; ev{ri} = {btuple}")
            if r.alert:
                body(dd + 1, f"hits.append(({ri}, s_, ({vals}{',' if r.features else ''}), {btuple}))")
            body(d + 1, "except Exception as exc_:")
            body(d + 2, f"errs.append(({ri}, repr(exc_)))")
        return body, used, micro

    first = True
    sections = sorted(kinds.items())
    plain = [(k, s) for k, s in sections if not k.startswith("record:")]
    records = [(k, s) for k, s in sections if k.startswith("record:")]
    blocks = [(f"k == {k!r}", [(k, s)]) for k, s in plain]
    if records:
        blocks.append(("k[:7] == 'record:'", records))
    for test, secs in blocks:
        w(1, f"{'if' if first else 'elif'} {test}:")
        first = False
        rule_indices = [inst.index for _, s in secs for inst in s["rules"]]
        tys = [t for t in typologies if any(m in rule_indices for m, _ in t.members)]
        inner = _Writer()
        used_all: set[str] = set()
        micro_all: set[str] = set()
        for k, sec in secs:
            if k.startswith("record:") and k != "record:*":
                inner(2, f"if k == {k!r}:")
                body, used, micro = emit_section(3, k, sec)
            else:
                body, used, micro = emit_section(2, k, sec)
            inner.lines.extend(body.lines)
            used_all |= used
            micro_all |= micro
        if used_all:     # subscripts are cheaper than .get(); a missing field falls back to None
            names_ = sorted(used_all)
            w(2, "try:")
            w(3, "; ".join(f"x_{v} = ev[{v!r}]" for v in names_))
            w(2, "except KeyError:")
            w(3, "get = ev.get")
            w(3, "; ".join(f"x_{v} = get({v!r})" for v in names_))
        for v in sorted(used_all):
            if v in numeric:
                w(2, f"if x_{v}.__class__ is str: x_{v} = _num(x_{v})")
        for v in sorted(micro_all):
            w(2, f"u_{v} = round(x_{v} * 1000000.0) if x_{v} is not None else 0")
        for t in tys:
            for m, _ in t.members:
                w(2, f"sc{m} = 0.0; ev{m} = ()")
        w.lines.extend(inner.lines)
        for t in tys:
            total = " + ".join(f"{wt!r} * sc{m}" for m, wt in t.members)
            w(2, f"t_ = {total}")
            w(2, f"if t_ >= {t.typology.alert_threshold!r}:")
            comps = ", ".join(f"sc{m}" for m, _ in t.members)
            evs = " + ".join(f"ev{m}" for m, _ in t.members)
            w(3, f"hits.append(({-1 - t.index}, t_, ({comps},), {evs}))")
    if first:
        w(1, "pass")
    source = "\n".join(w.lines) + "\n"
    program = Program(ruleset, instances, typologies, ordered, references, source, numeric=numeric)
    program.refs = [dict() for _ in references]
    namespace = {"_num": _num, "_ids": _ids, "_REF": program.refs, "_slots": ordered, "__builtins__": {
        "len": len, "round": round, "min": min, "max": max, "abs": abs, "repr": repr, "list": list, "dict": dict,
        "str": str, "KeyError": KeyError,
        "Exception": Exception, "True": True, "False": False, "None": None}}
    code = compile(source, f"<rule set {ruleset.full_key}>", "exec")
    exec(code, namespace)  # noqa: S102 -- engine-generated code; user text in it passed expressions.check
    program.run = namespace["run"]
    return program


def _subkey(by: tuple, used: set) -> str:
    for f in by:
        used.add(f)
    if len(by) == 1:
        return f"x_{by[0]}"
    return "(" + ", ".join(f"x_{f}" for f in by) + ",)"


def _evict(body: _Writer, depth: int, s: Slot, nonempty: bool) -> None:
    """Code that drops the items older than each window from buffer ``b`` (deque ``q``): the views
    first (their counts shrink), then the buffer itself. ``nonempty``: an item was just pushed
    (and the views have not counted it yet)."""
    for v in s.views:
        body(depth, f"c = b[{v.offset}]{' + 1' if nonempty else ''}; lo = ts - {v.size!r}")
        body(depth, "while q[-c][0] < lo:" if nonempty else "while c and q[-c][0] < lo:")
        dv = depth + 1
        if v.source is not None and (v.matched or v.sums):
            body(dv, "it = q[-c]")
            body(dv, f"if it[{v.flag}]:")
            dv += 1
            if v.matched:
                body(dv, f"b[{v.count_index}] -= 1")
        elif v.sums:
            body(dv, "it = q[-c]")
        for fld in v.sums:
            body(dv, f"b[{v.sum_index(fld)}] -= it[{2 + len(s.values) + s.sums.index(fld)}]")
        body(depth + 1, "c -= 1")
        body(depth, f"b[{v.offset}] = c")
    body(depth, f"lo = ts - {s.size!r}")
    body(depth, "while q[0][0] < lo:" if nonempty else "while q and q[0][0] < lo:")
    body(depth + 1, "it = q.popleft()")
    _dec(body, depth + 1, s)


def _dec(body: _Writer, depth: int, s: Slot) -> None:
    """Code that takes the popped item ``it`` out of buffer ``b``'s accumulators."""
    for j, fld in enumerate(s.sums):
        body(depth, f"b[{1 + j}] -= it[{2 + len(s.values) + j}]")
    for j, fld in enumerate(s.distincts):
        ai = 1 + len(s.sums) + j
        vi = 2 + s.values.index(fld)
        body(depth, f"dd = b[{ai}]; c_ = dd[it[{vi}]] - 1")
        body(depth, f"if c_: dd[it[{vi}]] = c_")
        body(depth, f"else: del dd[it[{vi}]]")
