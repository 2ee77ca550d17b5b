"""Windows that share one buffer (shorter windows as views of a longer one, filtered or not) must
give exactly what a separate buffer per window gives: checked against a brute-force oracle that
rescans the history for every event, across restarts (state snapshots), and against the vectorised
backtest."""
from __future__ import annotations

import json
import random

from engine.rules import state as state_mod
from engine.rules.backtest import replay_hits, run_backtest, vector_hits
from tests.rules.conftest import ev, feed, history, make_run

SELL = "side == 'S'"
BIG = "amount >= 500000"

# (key, agg, field, seconds, source kind, filter, by)
WINDOWS = [
    ("n5m", "count", None, 300, "trade", None, ()),
    ("v1h", "sum", "amount", 3600, "trade", None, ()),
    ("v10m", "sum", "amount", 600, "trade", None, ()),
    ("s10m", "sum", "amount", 600, "trade", SELL, ()),
    ("ns30m", "count", None, 1800, "trade", SELL, ()),
    ("s2h", "sum", "amount", 7200, "trade", SELL, ()),          # filtered, longer than the 1 h window
    ("nb2h", "count", None, 7200, "trade", BIG, ()),
    ("nb1h", "count", None, 3600, "trade", BIG, ()),
    ("ns_sym", "count", None, 900, "trade", SELL, ("symbol",)),
    ("v_sym", "sum", "amount", 3600, "trade", None, ("symbol",)),
    ("n_sym", "count", None, 120, "trade", None, ("symbol",)),
    ("o10m", "count", None, 600, "order", None, ()),
    ("o1m", "count", None, 60, "order", None, ()),
]
FILTERS = {None: lambda p: True, SELL: lambda p: p.get("side") == "S", BIG: lambda p: p.get("amount", 0) >= 500000}


def feature(key, agg, fld, seconds, kind, flt, by) -> dict:
    f = {"key": key, "agg": agg, "window": {"seconds": seconds}, "events": {"event": kind}}
    if flt:
        f["events"]["filter"] = flt
    if fld:
        f["field"] = fld
    if by:
        f["by"] = list(by)
    return f


def rules() -> list[dict]:
    """One rule per window, triggered by trades and by orders (reads from another kind evict too)."""
    out = []
    for trigger in ("trade", "order"):
        for w in WINDOWS:
            if w[6] and trigger == "order":
                continue                      # orders carry no symbol
            out.append({"key": f"{trigger}_{w[0]}", "label": w[0], "trigger": {"event": trigger},
                        "features": [feature(*w)], "condition": "True"})
    return out


def events(n: int, seed: int) -> list[dict]:
    rnd = random.Random(seed)
    out, t = [], 0
    for i in range(n):
        t += rnd.choice([0, 1, 5, 60, 60, 300, 600, 1800, 3600])     # ties and gaps exactly a window long
        acct = f"A{rnd.randint(1, 4)}"
        if rnd.random() < 0.7:
            out.append(ev(f"T{i}", "trade", t, account=acct, symbol=rnd.choice(["X", "Y"]),
                          side=rnd.choice("BS"), amount=round(rnd.uniform(1, 900000), 2)))
        else:
            out.append(ev(f"O{i}", "order", t, account=acct))
    return out


def oracle(evts: list[dict]) -> list[dict]:
    """Every rule's feature value and evidence, by rescanning all earlier events of the group."""
    rows = history(evts)
    out = []
    for i, (_, ext, kind, ts, g, p) in enumerate(rows):
        for r in rules():
            if r["trigger"]["event"] != kind:
                continue
            f = r["features"][0]
            flt = FILTERS[f["events"].get("filter")]
            inside = [(e, q) for _, e, k, t2, g2, q in rows[:i + 1]
                      if g2 == g and k == f["events"]["event"] and t2 >= ts - f["window"]["seconds"] and flt(q)
                      and all(q.get(b) == p.get(b) for b in f.get("by", ()))]
            if f["agg"] == "count":
                value = len(inside)
            else:
                value = sum(round(q[f["field"]] * 1_000_000) for _, q in inside) / 1_000_000.0
            evidence = list(dict.fromkeys([e for e, _ in inside] + [ext]))
            out.append({"rule": r["key"], "event": ext, "features": {f["key"]: value}, "evidence": evidence})
    return out


def strip(hits: list[dict]) -> list[dict]:
    return [{k: h[k] for k in ("rule", "event", "features", "evidence")} for h in hits]


def key(h: dict) -> tuple:
    return h["event"], h["rule"]


def test_shared_windows_equal_a_rescan_of_the_history():
    run = make_run(rules())
    windows = sum(1 for r in rules() for _ in r["features"])
    assert len(run.program.slots) < len({w[:6] + (w[6],) for w in WINDOWS})   # they do share buffers
    assert windows > len(run.program.slots)
    for seed in (1, 2, 3):
        evts = events(400, seed)
        assert sorted(strip(feed(run, evts)), key=key) == sorted(oracle(evts), key=key)


def test_a_restart_in_the_middle_changes_nothing():
    """State written as JSON and read back at every event gives the same hits as one long run."""
    run = make_run(rules())
    evts = events(300, 9)
    fn = run.program.run
    states: dict = {}
    got, hits, errs = [], [], []
    from engine.rules.codegen import _ids
    for seq, ext, kind, ts, g, payload in history(evts):
        raw = states.get(g)
        st = state_mod.load(run.program, json.loads(json.dumps(raw))) if raw else run.program.new_state()
        fn(kind, payload, ts, ext, st, hits, errs)
        for idx, score, values, buffers in hits:
            got.append((run.subject(idx)[1].key, ext, values, _ids(buffers, ext)))
        hits.clear()
        states[g] = state_mod.dump(run.program, st)
    assert not errs
    want = [(h["rule"], h["event"], tuple(h["features"].values()), h["evidence"]) for h in feed(run, evts)]
    assert got == want


def test_vectorised_backtest_equals_the_stream_with_shared_windows():
    plain = [r for r in rules() if "by" not in r["features"][0]]
    run = make_run(plain)
    hist = history(events(500, 4))
    vec = run_backtest(run, hist, "vectorised")
    rep = run_backtest(run, hist, "replay")
    assert vec.method == "vectorised" and len(vec.alerts) > 300
    assert vec.keys() == rep.keys()
    assert [a["explanation"]["evidence"] for a in vec.alerts] == [a["explanation"]["evidence"] for a in rep.alerts]
    assert [a["explanation"]["rules"] for a in vec.alerts] == [a["explanation"]["rules"] for a in rep.alerts]
    assert [p for p, _ in vector_hits(run, hist)] == [p for p, _ in replay_hits(run, hist)]
