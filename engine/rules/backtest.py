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
from itertools import count as counter
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
    last: dict = {}
    alerts, suppressed = [], 0
    for pos, hit in hits:
        seq, ext, kind, ts, g, _ = history[pos]
        if callable(hit[3]):
            # decide suppression before building the (lazy) evidence
            skind, subject, mode = run.subject(hit[0])
            window = subject.suppress_seconds if subject.suppress_seconds is not None else run.ruleset.suppress_seconds
            key = (g, mode, skind, subject.key)
            prev = last.get(key)
            if prev is not None and ts - prev < window:
                suppressed += 1
                continue
            hit = (hit[0], hit[1], hit[2]() if callable(hit[2]) else hit[2], hit[3]())
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

    Columns are read in history order at C speed (``map`` + ``itemgetter`` into ``np.fromiter``)
    and then permuted with one fancy index; fields that are missing somewhere or not numbers
    take the slower general path."""

    def __init__(self, history: list, order: np.ndarray):
        self.payloads = [h[5] for h in history]
        self.order = order
        self.cache: dict = {}

    def _types(self, name: str) -> set | None:
        try:
            return set(map(type, map(itemgetter(name), self.payloads)))
        except KeyError:
            return None                       # missing somewhere: the general path

    def _floats(self, name: str) -> np.ndarray:
        return np.fromiter(map(itemgetter(name), self.payloads), dtype=np.float64,
                           count=len(self.payloads))[self.order]

    def _objects(self, name: str) -> np.ndarray:
        raw = np.empty(len(self.payloads), dtype=object)
        raw[:] = [p.get(name) for p in self.payloads]
        return raw

    def field(self, name: str) -> np.ndarray:
        col = self.cache.get(name)
        if col is None:
            kinds = self._types(name)
            if kinds is not None and kinds <= {int, float}:
                col = self._floats(name)
            else:
                raw = self._objects(name)
                kinds = set(map(type, raw.tolist()))
                if kinds <= {int, float, type(None)}:
                    raw[raw == None] = np.nan  # noqa: E711 -- element-wise
                    col = raw.astype(np.float64)[self.order]
                else:
                    col = raw[self.order]
            self.cache[name] = col
        return col

    def numeric(self, name: str) -> np.ndarray:
        col = self.cache.get(("num", name))
        if col is None:
            kinds = self._types(name)
            if kinds is not None and kinds <= {int, float}:
                col = self._floats(name)
            else:
                vals = [_num(p.get(name)) for p in self.payloads]
                col = np.array([np.nan if v is None else v for v in vals], dtype=np.float64)[self.order]
            self.cache[("num", name)] = col
        return col


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


def vector_hits(run, history: list) -> list[tuple]:
    n = len(history)
    if n == 0:
        return []
    prog = run.program
    # factorise at C speed: setdefault keeps the first counter value a key met (codes are unique,
    # not contiguous -- all grouping needs)
    codes: dict = {}
    gcode = np.fromiter(map(codes.setdefault, map(itemgetter(4), history), counter()), dtype=np.int64, count=n)
    order = np.argsort(gcode, kind="stable")                 # (group, ts, seq): history is in (ts, seq) order
    g = gcode[order]
    ts = np.fromiter(map(itemgetter(3), history), dtype=np.float64, count=n)[order]
    kind_codes: dict = {}
    kcode = np.fromiter(map(kind_codes.setdefault, map(itemgetter(2), history), counter()), dtype=np.int64,
                        count=n)[order]
    cols = _Columns(history, order)
    gstart = np.searchsorted(g, g, side="left")              # first position of each row's group
    tmin = float(ts.min()) if n else 0.0
    span = float(ts.max()) - tmin + 1.0
    pos = np.arange(n)

    def kind_mask(kind_key: str) -> np.ndarray:
        if kind_key == "record:*":
            ids = [c for k, c in kind_codes.items() if k.startswith("record:")]
            return np.isin(kcode, ids)
        c = kind_codes.get(kind_key)
        return kcode == c if c is not None else np.zeros(n, dtype=bool)

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

    slot_data: dict = {}

    def window(f, rule):
        """(count array, {field: sum array}, member lookup) of a buffer feature for every row."""
        key = (f.buffer_signature, id(rule) if rule and rule.params else None)
        if key in slot_data:
            return slot_data[key]
        m = source_mask(f.source, rule)
        cm = np.concatenate(([0], np.cumsum(m)))
        if f.window[0] == "time":
            big = span + f.window[1] + 1.0
            comp = g * big + (ts - tmin)
            left = np.searchsorted(comp, comp - f.window[1], side="left")
            left = np.maximum(left, gstart)
            count = cm[pos + 1] - cm[left]
            lo_k = cm[left]
        else:
            size = int(f.window[1])
            k = cm[pos + 1]
            k0 = cm[gstart]
            count = np.minimum(size, k - k0)
            lo_k = k - count
            left = None
        data = {"count": count, "mask": m, "left": left, "lo_k": lo_k, "hi_k": cm[pos + 1], "sums": {}}
        slot_data[key] = data
        return data

    def wsum(data, fld):
        s = data["sums"].get(fld)
        if s is None:
            v = cols.numeric(fld)
            micro = np.where(data["mask"] & ~np.isnan(v), np.rint(np.nan_to_num(v) * MICRO), 0).astype(np.int64)
            if data["left"] is not None:
                cs = np.concatenate(([0], np.cumsum(micro)))
                total = cs[pos + 1] - cs[data["left"]]
            else:
                mv = micro[data["mask"]]
                cs = np.concatenate(([0], np.cumsum(mv)))
                total = cs[data["hi_k"]] - cs[data["lo_k"]]
            s = data["sums"][fld] = total / MICRO
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
                feats[f.key] = data["count"].astype(np.int64) if f.agg == "count" else wsum(data, f.field)
            elif f.agg == "since_last":
                m = source_mask(f.source, r)
                mpos = np.nonzero(m)[0]
                idx = np.searchsorted(mpos, pos, side="left") - 1
                prev = mpos[np.maximum(idx, 0)]
                ok = (idx >= 0) & (g[prev] == g) if len(mpos) else np.zeros(n, dtype=bool)
                feats[f.key] = np.where(ok, ts - ts[prev] if len(mpos) else 0.0, np.nan)
            elif f.agg == "ratio":
                a, b = feats[f.of].astype(np.float64), feats[f.to].astype(np.float64)
                with np.errstate(all="ignore"):
                    feats[f.key] = np.where((b != 0) & ~np.isnan(b), a / np.where(b == 0, 1, b), np.nan)
            elif f.agg == "reference":
                ri = next(i for i, rf in enumerate(prog.references)
                          if (rf.entity, rf.key_field, rf.value_field) == (f.entity, f.key_field, f.value_field))
                table = prog.refs[ri]
                vals = list(map(table.get, cols.field(f.match).tolist()))
                if all(v is None or v.__class__ in (int, float) for v in vals):
                    feats[f.key] = np.array([np.nan if v is None else v for v in vals], dtype=np.float64)
                else:
                    arr = np.empty(n, dtype=object)
                    arr[:] = vals
                    feats[f.key] = arr
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

    inv = np.empty(n, dtype=np.int64)
    inv[order] = pos                          # sorted position of each history row
    hits: list[tuple] = []

    ext_sorted: list = []

    def evidence(i: int, wins) -> list:
        if not ext_sorted:
            ext_sorted.extend(history[j][1] for j in order.tolist())
        ids = []
        for f, data in wins:
            mpos = data.get("mpos")
            if mpos is None:
                mpos = data["mpos"] = np.nonzero(data["mask"])[0]
            if data["left"] is not None:
                lo = int(data["lo_k"][i])
                rows = mpos[lo:lo + int(data["count"][i])].tolist()
            else:
                rows = mpos[int(data["lo_k"][i]):int(data["hi_k"][i])].tolist()
            ids.extend(ext_sorted[j] for j in rows)
        ext = ext_sorted[i]
        if ext not in ids:
            ids.append(ext)
        return list(dict.fromkeys(ids))

    def py(v):
        if isinstance(v, (np.floating, float)):
            return None if np.isnan(v) else float(v)
        if isinstance(v, np.integer):
            return int(v)
        return v

    rows: list = []
    for inst in prog.instances:
        if not inst.rule.alert:
            continue
        fired, score, arrays, wins, _ = results[inst.index]
        idx = np.nonzero(fired)[0]
        for i, hp, sc in zip(idx.tolist(), order[idx].tolist(), score[idx].tolist()):
            # values and evidence are gathered lazily: only for hits that survive suppression
            rows.append((hp, inst.index, (inst.index, sc, lambda i=i, a=arrays: tuple(py(x[i]) for x in a),
                                          lambda i=i, w=wins: evidence(i, w))))
    for t in prog.typologies:
        if not t.members:
            continue
        rel = np.zeros(n, dtype=bool)
        comps = []
        for mi, wt in t.members:
            fired, score, _, _, trig = results[mi]
            comps.append((mi, np.where(fired, score, 0.0)))
            rel |= kind_mask(prog.instances[mi].rule.trigger.kind_key)
        total = None            # the stream's float additions, in member order
        for (mi, wt), (_, sc) in zip(t.members, comps):
            total = wt * sc if total is None else total + wt * sc
        idx = np.nonzero(rel & (total >= t.typology.alert_threshold))[0]
        for i, hp in zip(idx.tolist(), order[idx].tolist()):
            def ev(i=i, comps=comps):
                wins = []
                for mi, sc in comps:
                    if sc[i]:
                        wins.extend(results[mi][3])
                return evidence(i, wins)
            rows.append((hp, 10_000_000 + t.index, (-1 - t.index, float(total[i]),
                                                     tuple(float(sc[i]) for _, sc in comps), ev)))
    rows.sort(key=itemgetter(0, 1))          # event order, then rules before typologies: the stream's order
    return [(hp, hit) for hp, _, hit in rows]


def _as_mask(v, n: int) -> np.ndarray:
    if isinstance(v, np.ndarray):
        return _bool(v)
    return np.full(n, bool(v))
