"""Replay and backtest: run a rule set over stored history without touching live state.

Two paths give the same hits (tests and ``python -m bench rules`` assert it):

* **replay** feeds the events one by one through the same generated function the stream uses,
  with fresh window state -- any rule can be replayed;
* **vectorised** computes each feature for all events at once with numpy (group, sort, cumulative
  sums, ``searchsorted`` for the left edge of each time window) and evaluates the checked
  expression trees over whole columns. It covers count, sum, ratio, since_last and reference
  features without ``by`` sub-keys; a rule set using anything else is replayed.

Suppression of repeated alerts is applied to the hits of both paths by the same code, in event
order, so a backtest shows what the stream would have raised -- the basis of shadow comparisons
and threshold tuning (``selection='latest'`` runs candidate versions as if they were active).
"""
from __future__ import annotations

import ast
import time
from array import array
from itertools import count, repeat
from operator import itemgetter
from dataclasses import dataclass, field

import numpy as np
import sqlalchemy as sa

from engine.rules.codegen import _ids, _num
from engine.rules.expressions import FUNCTIONS
from engine.rules.tables import events as events_table

MICRO = 1_000_000.0


@dataclass
class BacktestResult:
    ruleset: str
    method: str
    events: int
    seconds: float
    alerts: list[dict] = field(default_factory=list)
    suppressed: int = 0

    def keys(self) -> list[tuple]:
        """What identifies a hit, for comparisons: subject, version, mode, group, event, score, action."""
        return sorted((a["subject_kind"], a["subject"], a["version"], a["mode"], a["gkey"], a["event_id"],
                       round(a["score"], 9), a["action"]) for a in self.alerts)

    def by_subject(self) -> dict:
        out: dict = {}
        for a in self.alerts:
            out[(a["subject"], a["mode"])] = out.get((a["subject"], a["mode"]), 0) + 1
        return out


def load_history(loom, group_by: str, since: float | None = None, until: float | None = None) -> list[tuple]:
    """Stored events in event-time order as ``(seq, ext_id, kind, ts, gkey, payload)``."""
    t = events_table
    q = sa.select(t.c.seq, t.c.ext_id, t.c.kind, t.c.ts, t.c.payload)
    if since is not None:
        q = q.where(t.c.ts >= since)
    if until is not None:
        q = q.where(t.c.ts <= until)
    out = []
    with loom.db.connect() as conn:
        for seq, ext, kind, ts, payload in conn.execute(q.order_by(t.c.ts, t.c.seq)):
            g = payload.get(group_by)
            if g is not None:
                out.append((seq, ext, kind, ts, str(g), payload))
    return out


def backtest(service, ruleset: str, *, selection: str = "running", history: list | None = None,
             method: str = "auto", since: float | None = None, until: float | None = None) -> BacktestResult:
    """Run ``ruleset`` over stored history (or ``history``) and return the alerts it would raise."""
    run = service.running(ruleset, selection=selection)
    service._load_references(run.program)
    if history is None:
        history = load_history(service.loom, run.ruleset.group_by, since, until)
    return run_backtest(run, history, method)


def run_backtest(run, history: list, method: str = "auto") -> BacktestResult:
    t0 = time.perf_counter()
    if method in ("auto", "vectorised") and vectorisable(run):
        hits = vector_hits(run, history)
        used = "vectorised"
    elif method == "vectorised":
        raise ValueError("this rule set uses features the vectorised path does not cover (min, max, distinct, by)")
    else:
        hits = replay_hits(run, history)
        used = "replay"
    alerts, suppressed = suppress(run, hits, history)
    return BacktestResult(run.ruleset.full_key, used, len(history), time.perf_counter() - t0, alerts, suppressed)


def replay_hits(run, history: list) -> list[tuple]:
    """``[(event position, hit)]`` from the generated function, fresh state per group key."""
    fn = run.program.run
    new = run.program.new_state
    keys: dict = {}
    hits: list = []
    errs: list = []
    out = []
    last: dict = {}
    for pos, (seq, ext, kind, ts, g, payload) in enumerate(history):
        st = keys.get(g)
        if st is None:
            st = keys[g] = new()
        fn(kind, payload, ts, ext, st, hits, errs)
        if hits:
            # evidence now, before the windows move on -- and, as in the stream, only for hits
            # that will not be suppressed (:func:`suppress` takes the same decision again)
            for h in hits:
                skind, subject, mode = run.subject(h[0])
                window = subject.suppress_seconds if subject.suppress_seconds is not None \
                    else run.ruleset.suppress_seconds
                key = (g, mode, skind, subject.key)
                prev = last.get(key)
                if prev is not None and ts - prev < window:
                    out.append((pos, h[:3] + ([],)))
                else:
                    last[key] = ts
                    out.append((pos, h[:3] + (_ids(h[3], ext),)))
            hits.clear()
        if errs:
            errs.clear()
    return out


def suppress(run, hits: list, history: list) -> tuple[list[dict], int]:
    from engine.rules.service import explain
    resolve = getattr(hits, "resolve", None)
    last: dict = {}
    alerts, suppressed = [], 0
    for pos, hit in hits:
        seq, ext, kind, ts, g, _ = history[pos]
        if resolve is not None:
            # decide suppression before gathering values and evidence
            skind, subject, mode = run.subject(hit[0])
            window = subject.suppress_seconds if subject.suppress_seconds is not None else run.ruleset.suppress_seconds
            key = (g, mode, skind, subject.key)
            prev = last.get(key)
            if prev is not None and ts - prev < window:
                suppressed += 1
                continue
            hit = resolve(hit)
        a = explain(run, hit, g, ext, kind, ts)
        window = a.pop("_suppress")
        sk = (g, a["mode"], a["subject_kind"], a["subject"])
        prev = last.get(sk)
        if prev is not None and ts - prev < window:
            suppressed += 1
            continue
        last[sk] = ts
        a["event_seq"] = seq
        alerts.append(a)
    return alerts, suppressed


# -- the vectorised path -------------------------------------------------------------------------

def vectorisable(run) -> bool:
    for inst in run.program.instances:
        for f in inst.rule.features:
            if f.by or f.agg in ("min", "max", "distinct"):
                return False
    return True


class _Columns:
    """Event fields as numpy columns, in (group, ts, seq) order, built on first use.

    Why this shape: reading 100,000 payload dicts is the cost of a vectorised backtest (each
    dict and each value is a cache miss), so every field is read once, at C speed, and a number
    field straight into doubles: ``array("d", map(itemgetter(name), payloads))`` looks each value
    up and converts it in the same pass, and raises ``TypeError`` unless every value is a number
    (``None``, text, lists all fail it, most on the first event) -- an exact type test for free.
    Other fields are read as Python objects (numbers and ``None`` -> floats with NaN; anything
    else stays an object). Columns are permuted into group order with one fancy index each."""

    def __init__(self, history: list, order: np.ndarray):
        self.payloads = list(map(itemgetter(5), history))
        self.order = order
        self.n = len(history)
        self.cache: dict = {}
        self.raws: dict = {}

    def release(self) -> None:
        self.payloads = None
        self.raws.clear()

    def raw(self, name: str) -> np.ndarray:
        """The field's values in history order (``None`` where an event lacks it), as objects."""
        r = self.raws.get(name)
        if r is None:
            try:
                r = np.fromiter(map(itemgetter(name), self.payloads), dtype=object, count=self.n)
            except KeyError:
                r = np.fromiter([p.get(name) for p in self.payloads], dtype=object, count=self.n)
            self.raws[name] = r
        return r

    def floats_direct(self, name: str) -> np.ndarray | None:
        """One pass from the payloads straight into doubles, if every event has the field as a number."""
        col = self.cache.get(("num", name))
        if col is None and name not in self.raws and self.payloads is not None:
            try:
                col = np.frombuffer(array("d", map(itemgetter(name), self.payloads)), dtype=np.float64)[self.order]
            except (KeyError, TypeError, ValueError, OverflowError):
                return None
            self.cache[("num", name)] = self.cache[name] = col
        return col

    def _floats(self, raw: np.ndarray) -> np.ndarray | None:
        try:        # array('d') takes numbers only (None and text raise): the exact test, at C speed
            return np.frombuffer(array("d", raw.tolist()), dtype=np.float64)[self.order]
        except (TypeError, ValueError, OverflowError):
            return None

    def field(self, name: str) -> np.ndarray:
        col = self.cache.get(name)
        if col is None:
            col = self.floats_direct(name)
        if col is None:
            raw = self.raw(name)
            if raw[0] is not None and raw[0].__class__ not in (int, float, bool):
                col = raw[self.order]           # text (or other objects) from the first event on
            elif (col := self._floats(raw)) is not None:
                self.cache[("num", name)] = col
            elif set(map(type, raw.tolist())) <= {int, float, type(None)}:
                col = np.fromiter(raw, dtype=np.float64, count=self.n)[self.order]     # None -> NaN
            else:
                col = raw[self.order]
            self.cache[name] = col
        return col

    def numeric(self, name: str) -> np.ndarray:
        """The field as the stream reads a summed field: numbers as they are, decimal text as floats."""
        col = self.cache.get(("num", name))
        if col is None:
            col = self.floats_direct(name)
        if col is None:
            raw = self.raw(name)
            col = self._floats(raw)
            if col is None:
                col = np.fromiter(map(_num, raw), dtype=np.float64, count=self.n)[self.order]   # None -> NaN
            self.cache[("num", name)] = col
        return col


class VectorHits(list):
    """``[(event position, (subject index, score, None, row))]`` in stream order.

    Feature values and evidence are not built per hit: :meth:`resolve` gathers them for the hits a
    caller keeps (after suppression). Holding only numbers keeps the list invisible to the cyclic
    garbage collector, which would otherwise walk the whole history once per backtest."""

    resolve = None


def _veval(node, env):
    if isinstance(node, ast.Expression):
        return _veval(node.body, env)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return env(node.id)
    if isinstance(node, ast.BinOp):
        a, b = _veval(node.left, env), _veval(node.right, env)
        op = type(node.op)
        with np.errstate(all="ignore"):
            if op is ast.Add:
                return a + b
            if op is ast.Sub:
                return a - b
            if op is ast.Mult:
                return a * b
            if op is ast.Div:
                return np.true_divide(a, b)
            if op is ast.FloorDiv:
                return np.floor_divide(a, b)
            if op is ast.Mod:
                return np.mod(a, b)
            return np.power(a, b)
    if isinstance(node, ast.UnaryOp):
        v = _veval(node.operand, env)
        if isinstance(node.op, ast.Not):
            return ~_bool(v)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BoolOp):
        vals = [_bool(_veval(v, env)) for v in node.values]
        out = vals[0]
        for v in vals[1:]:
            out = (out & v) if isinstance(node.op, ast.And) else (out | v)
        return out
    if isinstance(node, ast.Compare):
        left = _veval(node.left, env)
        out = None
        for op, comp in zip(node.ops, node.comparators):
            right = _veval(comp, env)
            with np.errstate(invalid="ignore"):
                if isinstance(op, (ast.Is, ast.IsNot)):
                    r = _is_none(left, n_of(left))
                    r = ~r if isinstance(op, ast.IsNot) else r
                elif isinstance(op, (ast.In, ast.NotIn)):
                    r = np.isin(left, list(right))
                    r = ~r if isinstance(op, ast.NotIn) else r
                else:
                    r = {ast.Eq: np.equal, ast.NotEq: np.not_equal, ast.Lt: np.less, ast.LtE: np.less_equal,
                         ast.Gt: np.greater, ast.GtE: np.greater_equal}[type(op)](left, right)
            r = _bool(r)
            out = r if out is None else out & r
            left = right
        return out
    if isinstance(node, ast.IfExp):
        return np.where(_bool(_veval(node.test, env)), _veval(node.body, env), _veval(node.orelse, env))
    if isinstance(node, (ast.Tuple, ast.List)):
        return [_veval(e, env) for e in node.elts]
    if isinstance(node, ast.Call) and node.func.id in FUNCTIONS:
        args = [_veval(a, env) for a in node.args]
        name = node.func.id
        if name == "abs":
            return np.abs(args[0])
        if name in ("min", "max"):
            out = args[0]
            for a in args[1:]:
                out = (np.fmin if name == "min" else np.fmax)(out, a)
            return out
        if name == "round":
            return np.round(args[0], *(args[1:2]))
        return np.vectorize(len)(args[0])
    raise ValueError(f"cannot vectorise {type(node).__name__}")


def n_of(v):
    return len(v) if isinstance(v, np.ndarray) else 1


def _is_none(v, n):
    if isinstance(v, np.ndarray):
        if v.dtype == object:
            return np.array([x is None for x in v], dtype=bool)
        return np.isnan(v)
    return np.full(n, v is None)


def _bool(v):
    if isinstance(v, np.ndarray):
        if v.dtype == bool:
            return v
        if v.dtype == object:
            return np.array([bool(x) for x in v], dtype=bool)
        with np.errstate(invalid="ignore"):
            return (v != 0) & ~np.isnan(v)
    return bool(v)


def vector_hits(run, history: list) -> VectorHits:
    n = len(history)
    out = VectorHits()
    if n == 0:
        return out
    prog = run.program
    # factorise at C speed: setdefault keeps the first counter value a key met (codes are unique,
    # not contiguous -- all grouping needs)
    codes: dict = {}
    gcode = np.fromiter(map(codes.setdefault, map(itemgetter(4), history), count()), dtype=np.int64, count=n)
    del codes
    order = _stable_order(gcode)                             # (group, ts, seq): history is in (ts, seq) order
    g = gcode[order]
    ts = np.fromiter(map(itemgetter(3), history), dtype=np.float64, count=n)[order]
    cols = _Columns(history, order)
    starts = np.flatnonzero(np.concatenate(([True], g[1:] != g[:-1])))
    gstart = np.repeat(starts, np.diff(np.append(starts, n)))   # first position of each row's group
    pos = np.arange(n)

    kinds_seen = set(map(itemgetter(2), history))
    kind_cache: dict = {}

    def kind_mask(kind_key: str) -> np.ndarray:
        m = kind_cache.get(kind_key)
        if m is None:
            if kind_key == "record:*":
                wanted = {k for k in kinds_seen if k.startswith("record:")}
            else:
                wanted = {kind_key} & kinds_seen
            if not wanted:
                m = np.zeros(n, dtype=bool)
            elif wanted == kinds_seen:
                m = np.ones(n, dtype=bool)
            else:
                karr = kind_cache.get(None)
                if karr is None:
                    karr = kind_cache[None] = np.fromiter(map(itemgetter(2), history), dtype=object,
                                                          count=n)[order]
                m = np.zeros(n, dtype=bool)
                for k in wanted:
                    m |= karr == k
            kind_cache[kind_key] = m
        return m

    def env_for(rule, features: dict):
        params = rule.params if rule else {}

        def env(name):
            if name in features:
                return features[name]
            if name in params:
                return params[name]
            return cols.numeric(name) if name in numeric else cols.field(name)
        return env

    numeric = prog.numeric
    mask_cache: dict = {}

    def source_mask(src, rule) -> np.ndarray:
        key = (src.signature, id(rule) if rule and rule.params else None)
        m = mask_cache.get(key)
        if m is None:
            m = kind_mask(src.kind_key)
            if src.filter is not None:
                m = m & _as_mask(_veval(src.filter.tree, env_for(rule, {})), n)
            mask_cache[key] = m
        return m

    left_cache: dict = {}

    def time_left(seconds: float) -> np.ndarray:
        """First row of each row's time window: the first row of its group with ``ts >= ts_i - W``.

        One ``searchsorted`` over complex keys ``group + 1j * ts``, which numpy orders by real then
        imaginary part: exact comparisons on both, so the edge is the stream's own test (an item
        leaves when ``item ts < ts - W``, the same float subtraction) and never another group's row."""
        left = left_cache.get(seconds)
        if left is None:
            keys = left_cache.get("keys")
            if keys is None:
                gf = left_cache["g"] = g.astype(np.float64)
                keys = left_cache["keys"] = gf + 1j * ts
            left = left_cache[seconds] = np.searchsorted(keys, left_cache["g"] + 1j * (ts - seconds), side="left")
        return left

    slot_data: dict = {}

    def window(f, rule):
        """(count array, {field: sum array}, member lookup) of a buffer feature for every row."""
        key = (f.buffer_signature, id(rule) if rule and rule.params else None)
        if key in slot_data:
            return slot_data[key]
        m = source_mask(f.source, rule)
        cm = np.concatenate(([0], np.cumsum(m)))
        hi_k = cm[1:]
        if f.window[0] == "time":
            left = time_left(f.window[1])
            lo_k = cm[left]
        else:
            size = int(f.window[1])
            lo_k = np.maximum(hi_k - size, cm[gstart])
            left = None
        data = {"count": hi_k - lo_k, "mask": m, "left": left, "lo_k": lo_k, "hi_k": hi_k, "sums": {}}
        slot_data[key] = data
        return data

    def wsum(data, fld):
        s = data["sums"].get(fld)
        if s is None:
            v = cols.numeric(fld)
            ok = data["mask"] & ~np.isnan(v)
            micro = np.rint(np.where(ok, v, 0.0) * MICRO).astype(np.int64)
            cs = np.concatenate(([0], np.cumsum(micro)))
            s = data["sums"][fld] = (cs[1:] - cs[data["left"]] if data["left"] is not None
                                     else _masked_window_sum(micro, data)) / MICRO
        return s

    results: dict[int, tuple] = {}      # instance -> (fired mask, score array, feature arrays, windows)
    for inst in prog.instances:
        r = inst.rule
        feats: dict = {}
        wins = []
        for f in r.features:
            if f.agg in ("count", "sum"):
                data = window(f, r)
                wins.append((f, data))
                feats[f.key] = data["count"] if f.agg == "count" else wsum(data, f.field)
            elif f.agg == "since_last":
                m = source_mask(f.source, r)
                mpos = np.flatnonzero(m)
                if len(mpos):
                    idx = np.searchsorted(mpos, pos, side="left") - 1
                    prev = mpos[np.maximum(idx, 0)]
                    ok = (idx >= 0) & (g[prev] == g)
                    feats[f.key] = np.where(ok, ts - ts[prev], np.nan)
                else:
                    feats[f.key] = np.full(n, np.nan)
            elif f.agg == "ratio":
                a, b = feats[f.of].astype(np.float64), feats[f.to].astype(np.float64)
                with np.errstate(all="ignore"):
                    feats[f.key] = np.where((b != 0) & ~np.isnan(b), a / np.where(b == 0, 1, b), np.nan)
            elif f.agg == "reference":
                ri = next(i for i, rf in enumerate(prog.references)
                          if (rf.entity, rf.key_field, rf.value_field) == (f.entity, f.key_field, f.value_field))
                table = prog.refs[ri]
                feats[f.key] = _reference(cols, table, f.match) if set(map(type, table.values())) <= {int, float} \
                    else None
                if feats[f.key] is None:
                    vals = list(map(table.get, cols.raw(f.match).tolist()))
                    kinds = set(map(type, table.values()))
                    feats[f.key] = np.fromiter(vals, dtype=np.float64 if kinds <= {int, float} else object,
                                               count=n)[order]                                   # None -> NaN
        env = env_for(r, feats)
        trig = source_mask(r.trigger, r)
        fired = trig & _as_mask(_veval(r.condition.tree, env), n)
        if r.bands:
            on, steps = r.bands
            bv = np.asarray(_veval(on.tree, env), dtype=np.float64) * np.ones(n)
            score = np.where(np.isnan(bv), 0.0, steps[0][1])
            for mn, sc, _ in steps[1:]:
                score = np.where(bv >= mn, sc, score)
        elif isinstance(r.score, float):
            score = np.full(n, r.score)
        else:
            score = np.asarray(_veval(r.score.tree, env), dtype=np.float64) * np.ones(n)
        results[inst.index] = (fired, score, [feats[f.key] for f in r.features], wins, trig)

    # -- hits, in the stream's order, as plain numbers ---------------------------------------------
    parts = []                          # (row indices, tie-break, subject index, scores)
    for inst in prog.instances:
        if inst.rule.alert:
            fired, score = results[inst.index][:2]
            idx = np.flatnonzero(fired)
            parts.append((idx, inst.index, inst.index, score[idx]))
    typology_scores: dict = {}
    for t in prog.typologies:
        if not t.members:
            continue
        rel = np.zeros(n, dtype=bool)
        comps = []
        for mi, wt in t.members:
            fired, score = results[mi][:2]
            comps.append(np.where(fired, score, 0.0))
            rel |= kind_mask(prog.instances[mi].rule.trigger.kind_key)
        total = None            # the stream's float additions, in member order
        for (mi, wt), sc in zip(t.members, comps):
            total = wt * sc if total is None else total + wt * sc
        typology_scores[t.index] = comps
        idx = np.flatnonzero(rel & (total >= t.typology.alert_threshold))
        parts.append((idx, 10_000_000 + t.index, -1 - t.index, total[idx]))
    # the raw field lists are young 100,000-element containers: every collection of the youngest
    # generation would walk them while the hit tuples below are made -- drop them first
    cols.release()
    parts = [p for p in parts if len(p[0])]
    if not parts:
        return out
    rows = np.concatenate([p[0] for p in parts])
    tie = np.concatenate([np.full(len(p[0]), p[1], dtype=np.int64) for p in parts])
    subject = np.concatenate([np.full(len(p[0]), p[2], dtype=np.int64) for p in parts])
    scores = np.concatenate([np.asarray(p[3], dtype=np.float64) for p in parts])
    hp = order[rows]
    o = np.lexsort((tie, hp))       # event order, then rules before typologies: the stream's order
    out.extend(zip(hp[o].tolist(), zip(subject[o].tolist(), scores[o].tolist(), repeat(None), rows[o].tolist())))

    exts: list = []

    def evidence(i: int, wins) -> list:
        if not exts:
            exts.append(np.fromiter(map(itemgetter(1), history), dtype=object, count=n)[order])
        ext_sorted = exts[0]
        ids = []
        for f, data in wins:
            mpos = data.get("mpos")
            if mpos is None:
                mpos = data["mpos"] = np.flatnonzero(data["mask"])
            ids.extend(ext_sorted[mpos[int(data["lo_k"][i]):int(data["hi_k"][i])]].tolist())
        ext = ext_sorted[i]
        if ext not in ids:
            ids.append(ext)
        return list(dict.fromkeys(ids))

    def resolve(hit: tuple) -> tuple:
        """The full hit ``(subject index, score, values, evidence ids)`` of a hit of this list."""
        index, score, _, i = hit
        if index >= 0:
            _, _, arrays, wins, _ = results[index]
            return index, score, tuple(_py(a[i]) for a in arrays), evidence(i, wins)
        ti = prog.typologies[-1 - index]
        comps = typology_scores[ti.index]
        wins = []
        for (mi, _), sc in zip(ti.members, comps):
            if sc[i]:
                wins.extend(results[mi][3])
        return index, score, tuple(float(sc[i]) for sc in comps), evidence(i, wins)

    out.resolve = resolve
    return out


def _reference(cols: _Columns, table: dict, match: str) -> np.ndarray | None:
    """A number-valued reference column in one pass over the payloads (a missing row is NaN, as
    ``None`` is elsewhere); ``None`` when an event lacks the match field or its value cannot be a
    key (the general path then decides)."""
    if cols.payloads is None:
        return None
    floats = {k: float(v) for k, v in table.items()}
    try:
        got = array("d", map(floats.get, map(itemgetter(match), cols.payloads), repeat(np.nan)))
    except (KeyError, TypeError):
        return None
    return np.frombuffer(got, dtype=np.float64)[cols.order]


def _stable_order(codes: np.ndarray) -> np.ndarray:
    """A stable argsort of non-negative group codes. Codes below 2**16 sort as uint16, which numpy
    sorts stably by radix in linear time (about 20x a comparison sort of int64 here); more groups
    take two such passes (low half, then high half), up to 2**32 groups."""
    top = int(codes.max()) if len(codes) else 0
    if top < 1 << 16:
        return np.argsort(codes.astype(np.uint16), kind="stable")
    if top < 1 << 32:
        o = np.argsort((codes & 0xFFFF).astype(np.uint16), kind="stable")
        return o[np.argsort((codes[o] >> 16).astype(np.uint16), kind="stable")]
    return np.argsort(codes, kind="stable")


def _py(v):
    if isinstance(v, (np.floating, float)):
        return None if np.isnan(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def _masked_window_sum(micro: np.ndarray, data: dict) -> np.ndarray:
    """Sums over count windows: cumulative sums over the matching events only."""
    cs = np.concatenate(([0], np.cumsum(micro[data["mask"]])))
    return cs[data["hi_k"]] - cs[data["lo_k"]]


def _as_mask(v, n: int) -> np.ndarray:
    if isinstance(v, np.ndarray):
        return _bool(v)
    return np.full(n, bool(v))
