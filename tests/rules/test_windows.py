"""Windows and aggregates of the generated evaluator, without a database."""
from __future__ import annotations

import pytest

from engine.errors import InvalidInput
from tests.rules.conftest import ev, feed, make_run, trade


def rule(key="r", features=(), condition="True", trigger=None, **more) -> dict:
    return {"key": key, "label": key, "trigger": trigger or {"event": "trade"}, "features": list(features),
            "condition": condition, **more}


def values(hits, name):
    return [h["features"][name] for h in hits]


def test_time_window_count_and_sum_include_the_edge_and_drop_older_events():
    run = make_run([rule(features=[{"key": "n", "agg": "count", "window": {"seconds": 60}},
                                   {"key": "s", "agg": "sum", "field": "amount", "window": {"minutes": 1}}])])
    hits = feed(run, [trade("a", 0, amount=100), trade("b", 30, amount=200.5), trade("c", 60, amount=1),
                      trade("d", 61, amount=2), trade("e", 200, amount=7)])
    assert values(hits, "n") == [1, 2, 3, 3, 1]          # at 60 the event at 0 is still inside [0, 60]
    assert values(hits, "s") == [100.0, 300.5, 301.5, 203.5, 7.0]


def test_sums_stay_exact_after_many_events_enter_and_leave_the_window():
    run = make_run([rule(features=[{"key": "s", "agg": "sum", "field": "amount", "window": {"seconds": 10}}])])
    events = [trade(f"e{i}", i * 4, amount=0.1) for i in range(3000)]
    assert values(feed(run, events), "s")[-1] == 0.3      # not 0.30000000000000004 or drifted


def test_count_window_keeps_the_last_n_matching_events():
    run = make_run([rule(features=[{"key": "n", "agg": "count", "window": {"events": 3}},
                                   {"key": "s", "agg": "sum", "field": "amount", "window": {"events": 3}}])])
    hits = feed(run, [trade(str(i), i, amount=i + 1) for i in range(5)])
    assert values(hits, "n") == [1, 2, 3, 3, 3]
    assert values(hits, "s") == [1.0, 3.0, 6.0, 9.0, 12.0]


def test_distinct_min_max_over_a_time_window():
    run = make_run([rule(features=[
        {"key": "d", "agg": "distinct", "field": "symbol", "window": {"seconds": 100}},
        {"key": "lo", "agg": "min", "field": "price", "window": {"seconds": 100}},
        {"key": "hi", "agg": "max", "field": "price", "window": {"seconds": 100}}])])
    hits = feed(run, [trade("a", 0, symbol="X", price=5), trade("b", 10, symbol="Y", price=9),
                      trade("c", 20, symbol="X", price=7), trade("d", 150, symbol="Z", price=8)])
    assert values(hits, "d") == [1, 2, 2, 1]
    assert values(hits, "lo") == [5, 5, 5, 8]
    assert values(hits, "hi") == [5, 9, 9, 8]


def test_ratio_of_two_features_over_other_event_kinds():
    run = make_run([rule(trigger={"event": "cancel"}, features=[
        {"key": "orders", "agg": "count", "window": {"minutes": 10}, "events": {"event": "order"}},
        {"key": "cancels", "agg": "count", "window": {"minutes": 10}, "events": {"event": "cancel"}},
        {"key": "rate", "agg": "ratio", "of": "cancels", "to": "orders"}])])
    events = [ev("c0", "cancel", 0, account="A1")] + \
        [ev(f"o{i}", "order", 1 + i, account="A1") for i in range(4)] + \
        [ev(f"c{i}", "cancel", 10 + i, account="A1") for i in range(1, 4)]
    hits = feed(run, events)
    assert values(hits, "rate") == [None, 0.5, 0.75, 1.0]   # no orders yet -> None, not a crash


def test_since_last_is_the_gap_to_the_previous_matching_event():
    run = make_run([rule(features=[{"key": "gap", "agg": "since_last"}])])
    hits = feed(run, [trade("a", 0), trade("b", 15), trade("c", 45), trade("x", 46, account="B")])
    assert values(hits, "gap") == [None, 15.0, 30.0, None]


def test_reference_value_from_reference_data():
    run = make_run([rule(condition="ref is not None and abs(price - ref) / ref > 0.1", features=[
        {"key": "ref", "agg": "reference", "entity": "t.security", "match": "symbol", "key_field": "symbol",
         "value_field": "ref_price"}])], refs=[{"600000": 10.0}])
    hits = feed(run, [trade("a", 0, price=10.5), trade("b", 1, price=12), trade("c", 2, symbol="999", price=1)])
    assert [h["event"] for h in hits] == ["b"]
    assert hits[0]["features"] == {"ref": 10.0}


def test_windows_are_kept_per_group_key_and_per_sub_key():
    run = make_run([rule(features=[
        {"key": "n", "agg": "count", "window": {"seconds": 100}},
        {"key": "n_sym", "agg": "count", "window": {"seconds": 100}, "by": ["symbol"]}])])
    hits = feed(run, [trade("a", 0, account="A", symbol="X"), trade("b", 1, account="B", symbol="X"),
                      trade("c", 2, account="A", symbol="Y"), trade("d", 3, account="A", symbol="X")])
    assert values(hits, "n") == [1, 1, 2, 3]
    assert values(hits, "n_sym") == [1, 1, 1, 2]


def test_filters_conditions_params_and_bands():
    run = make_run([rule(trigger={"event": "trade", "filter": "side == 'B'"}, params={"limit": 100},
                         condition="amount >= limit",
                         bands={"value": "amount", "steps": [{"min": 0, "score": 1}, {"min": 1000, "score": 5}]})])
    hits = feed(run, [trade("a", 0, amount=500, side="B"), trade("b", 1, amount=5000, side="S"),
                      trade("c", 2, amount=5000, side="B"), trade("d", 3, amount=50, side="B")])
    assert [(h["event"], h["score"]) for h in hits] == [("a", 1.0), ("c", 5.0)]


def test_typology_sums_weighted_rule_scores_and_keeps_evidence():
    big = rule("big", condition="amount >= 1000", score=40, alert=False)
    fast = rule("fast", features=[{"key": "n", "agg": "count", "window": {"seconds": 10}}],
                condition="n >= 3", score=20, alert=False)
    typ = {"key": "combo", "kind": "typology", "label": "c", "rules": [{"rule": "big", "weight": 1},
                                                                        {"rule": "fast", "weight": 1.5}],
           "alert_threshold": 60, "block_threshold": 70}
    run = make_run([big, fast], typologies=[typ])
    hits = feed(run, [trade("a", 0, amount=5000), trade("b", 1, amount=10), trade("c", 2, amount=5000),
                      trade("d", 3, amount=10)])
    assert [(h["rule"], h["event"], h["score"]) for h in hits] == [("combo", "c", 70.0)]
    assert sorted(hits[0]["evidence"]) == ["a", "b", "c"]   # the window the fast rule read


def test_events_without_the_field_do_not_break_other_rules():
    run = make_run([rule("needs_price", condition="price > 5"), rule("always")])
    errors: list = []
    hits = feed(run, [ev("a", "trade", 0, account="A1")], errors=errors)
    assert [h["rule"] for h in hits] == ["always"]
    assert "NoneType" in errors[0][1]                      # counted and logged, not raised


@pytest.mark.parametrize("expr, message", [
    ("amount.real", "attribute access"),
    ("amount.__class__", "_"),
    ("open('x')", "call of `open`"),
    ("x[0]", "subscripts"),
    ("[a for a in b]", "not allowed"),
    ("__import__('os')", "_"),
    ("2 ** amount", "`**`"),
    ("amount >", "syntax error"),
])
def test_expressions_outside_the_rule_language_are_refused_with_a_reason(expr, message):
    with pytest.raises(InvalidInput) as info:
        make_run([rule(condition=expr)])
    text = " ".join(p.message for p in info.value.problems)
    assert message in text and "condition" in text


def test_ratio_must_name_features_defined_before_it():
    with pytest.raises(InvalidInput) as info:
        make_run([rule(features=[{"key": "r", "agg": "ratio", "of": "a", "to": "b"}])])
    assert "`of` names `a`" in info.value.problems[0].message
