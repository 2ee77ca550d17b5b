"""Sandbox overhead on the paths every record save takes: a computed field and a 10-rule check.

Each case runs the same logic twice over the same records -- through the sandbox (compiled once,
guards and budgets on) and as a plain Python function -- checks that both give the same answers,
and reports engine ops/s, plain ops/s and their ratio (target: the sandbox at least half as fast
as plain Python). Engine and baseline passes alternate so machine noise hits both alike.

The 10-rule check uses :func:`engine.sandbox.compile_expressions`: all rules of a form evaluated
in one go (each compiled as "is this rule broken?"), the way a record save should check them. An informational row shows the cost of evaluating
the same ten rules one ``evaluate()`` call at a time.
"""
from __future__ import annotations

import random
import time
from datetime import date, timedelta
from decimal import Decimal
from itertools import compress

from bench.harness import Context, result
from engine.sandbox import compile_expression, compile_expressions

TARGET = 0.5

COMPUTED = "(qty * price * (1 - discount)).quantize(Decimal('0.01'))"

RULES = [
    ("qty > 0", "qty must be positive"),
    ("price >= 0", "price must not be negative"),
    ("0 <= discount <= Decimal('0.5')", "discount out of range"),
    ("bool(email) and '@' in email", "email invalid"),
    ("status in ('draft', 'open', 'closed')", "unknown status"),
    ("due_date >= order_date", "due before order"),
    ("len(name) <= 20", "name too long"),
    ("currency in ('CNY', 'USD', 'HKD')", "unknown currency"),
    ("qty * price <= credit_limit", "over the credit limit"),
    ("account_type != 'margin' or risk_ok", "margin accounts need a risk check"),
]
MESSAGES = [m for _, m in RULES]


def plain_total(r):
    return (r["qty"] * r["price"] * (1 - r["discount"])).quantize(Decimal("0.01"))


def plain_rules(r):
    failures = []
    if not r["qty"] > 0:
        failures.append("qty must be positive")
    if not r["price"] >= 0:
        failures.append("price must not be negative")
    if not 0 <= r["discount"] <= Decimal("0.5"):
        failures.append("discount out of range")
    if not (bool(r["email"]) and "@" in r["email"]):
        failures.append("email invalid")
    if r["status"] not in ("draft", "open", "closed"):
        failures.append("unknown status")
    if not r["due_date"] >= r["order_date"]:
        failures.append("due before order")
    if not len(r["name"]) <= 20:
        failures.append("name too long")
    if r["currency"] not in ("CNY", "USD", "HKD"):
        failures.append("unknown currency")
    if not r["qty"] * r["price"] <= r["credit_limit"]:
        failures.append("over the credit limit")
    if not (r["account_type"] != "margin" or r["risk_ok"]):
        failures.append("margin accounts need a risk check")
    return failures


def make_records(n: int, seed: int = 7) -> list[dict]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        order = date(2025, 1, 1) + timedelta(days=rnd.randrange(300))
        rec = {f"extra_{k}": rnd.randrange(1000) for k in range(12)}          # a realistic width
        rec.update(
            id=i, qty=rnd.choice([rnd.randrange(1, 500), Decimal(rnd.randrange(-2, 500))]),
            price=Decimal(rnd.randrange(0, 100_000)) / 100, discount=Decimal(rnd.randrange(0, 60)) / 100,
            email=rnd.choice(["a@b.cn", "zhang.san@broker.cn", "", "broken"]),
            status=rnd.choice(["draft", "open", "closed", "lost"]), order_date=order,
            due_date=order + timedelta(days=rnd.randrange(-5, 60)), name=rnd.choice(["张三", "李四", "王" * 25]),
            currency=rnd.choice(["CNY", "USD", "HKD", "JPY"]), credit_limit=Decimal(rnd.randrange(1000, 200_000)),
            account_type=rnd.choice(["cash", "margin"]), risk_ok=rnd.random() < 0.7)
        out.append(rec)
    return out


def _alternate(engine_pass, plain_pass, runs: int):
    engine_pass()
    plain_pass()        # warm up both
    engine_times, plain_times = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        engine_pass()
        engine_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        plain_pass()
        plain_times.append(time.perf_counter() - t0)
    return engine_times, plain_times


def _per_op(call, records, batch: int = 50) -> list[float]:
    """Per-operation seconds of the engine path, from batches (a timer call per op would dominate)."""
    samples = []
    for i in range(0, len(records) - batch + 1, batch):
        chunk = records[i:i + batch]
        t0 = time.perf_counter()
        for r in chunk:
            call(r)
        samples.append((time.perf_counter() - t0) / batch)
    return samples


def run(ctx: Context | None = None) -> list[dict]:
    quick = bool(ctx and ctx.quick)
    n = 2_000 if quick else 20_000
    runs = 5 if quick else 15
    records = make_records(n)
    settings = {"records": n, "fields_per_record": len(records[0]), "runs": runs}
    rows = []

    # -- a computed field ---------------------------------------------------------------------------
    total = compile_expression(COMPUTED, "bench.order.total")
    evaluate = total.evaluate
    assert [evaluate(r) for r in records] == [plain_total(r) for r in records]
    engine_times, plain_times = _alternate(lambda: [evaluate(r) for r in records],
                                           lambda: [plain_total(r) for r in records], runs)
    rows.append(result("sandbox.computed_field", ops=n, engine_times=engine_times, baseline_times=plain_times,
                       per_op=_per_op(evaluate, records), settings={**settings, "expression": COMPUTED},
                       target=TARGET))

    # -- a 10-rule check, all rules in one evaluation --------------------------------------------------
    # compiled as "is this rule broken?" so the answers pick the messages directly
    rules = compile_expressions([f"not ({c})" for c, _ in RULES], "bench.order.rules")
    rules_evaluate = rules.evaluate

    def sandbox_rules(r):
        return list(compress(MESSAGES, rules_evaluate(r)))

    expected = [plain_rules(r) for r in records]
    assert [sandbox_rules(r) for r in records] == expected
    assert sum(map(bool, expected)) > n // 2            # the data exercises the failure paths
    engine_times, plain_times = _alternate(lambda: [sandbox_rules(r) for r in records],
                                           lambda: [plain_rules(r) for r in records], runs)
    rows.append(result("sandbox.rules_10", ops=n, engine_times=engine_times, baseline_times=plain_times,
                       per_op=_per_op(sandbox_rules, records), settings={**settings, "rules": len(RULES)},
                       target=TARGET))

    # -- informational: the same rules, one evaluate() per rule ------------------------------------------
    singles = [(compile_expression(c, f"bench.order.rule{i}").evaluate, m) for i, (c, m) in enumerate(RULES)]
    plain_singles = [(eval(f"lambda r: {_as_plain(c)}", {"Decimal": Decimal}), m) for c, m in RULES]

    def per_rule(r):
        return [m for ev, m in singles if not ev(r)]

    def per_rule_plain(r):
        return [m for f, m in plain_singles if not f(r)]

    assert [per_rule(r) for r in records] == expected == [per_rule_plain(r) for r in records]
    engine_times, plain_times = _alternate(lambda: [per_rule(r) for r in records],
                                           lambda: [per_rule_plain(r) for r in records], max(3, runs // 3))
    rows.append(result("sandbox.rules_10_one_call_per_rule", ops=n, engine_times=engine_times,
                       baseline_times=plain_times, settings={**settings, "note": "informational: prefer "
                                                             "compile_expressions for a form's rules"}))
    return rows


_FIELDS = ("qty", "price", "discount", "email", "status", "due_date", "order_date", "name", "currency",
           "credit_limit", "account_type", "risk_ok")


def _as_plain(condition: str) -> str:
    import re
    return re.sub(r"\b(" + "|".join(_FIELDS) + r")\b", lambda m: f"r[{m.group(1)!r}]", condition)


if __name__ == "__main__":
    from bench.harness import emit, new_context
    for row in run(new_context(quick=False)):
        emit(row)
