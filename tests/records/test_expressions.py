"""Computed fields, defaults, visibility and cross-field rules, all evaluated in the sandbox."""
from __future__ import annotations

import pytest

from engine.errors import InvalidInput, Problem
from engine.security import Actor
from tests.conftest import BUNDLES

SALES = Actor(user_id=42, username="sales", locale="en", is_system=True)


@pytest.fixture
def calc(loom):
    loom.install(BUNDLES / "calc")
    return loom


def test_computed_fields_are_stored_and_chain_in_dependency_order(calc):
    rec = calc.records.create("calc.order", {"qty": 3, "price": "9.99", "discount": "0.1"}, SALES)
    assert rec["total"] == "26.97" and rec["band"] == "small"
    rec = calc.records.update("calc.order", rec["id"], {"qty": 2000}, SALES)
    assert rec["total"] == "17982.00" and rec["band"] == "large"     # recomputed on write


def test_computed_values_sent_by_a_client_are_ignored(calc):
    rec = calc.records.create("calc.order", {"qty": 1, "price": "1", "total": "999"}, SALES)
    assert rec["total"] == "1.00"


def test_child_rows_compute_too(calc):
    rec = calc.records.create("calc.order", {"qty": 1, "price": "1", "lines": [{"item": "a", "n": 4}]}, SALES)
    assert rec["lines"][0]["n2"] == 8


def test_default_expression_knows_the_acting_user(calc):
    rec = calc.records.create("calc.order", {"qty": 1, "price": "1"}, SALES)
    assert rec["owner"] == 42 and rec["discount"] == "0.0000"


def test_cross_field_rules_report_their_message_at_the_field(calc):
    with pytest.raises(InvalidInput) as exc:
        calc.records.create("calc.order", {"qty": 1, "price": "1", "start": "2026-02-01", "end": "2026-01-01",
                                          "discount": "0.3"}, SALES)
    assert {(p.field, p.message) for p in exc.value.problems} == {
        ("end", "The end date cannot be before the start date"), ("reason", "A discount above 20% needs a reason")}
    zh = Actor(user_id=42, username="sales", locale="zh-CN", is_system=True)
    with pytest.raises(InvalidInput) as exc:
        calc.records.create("calc.order", {"qty": 1, "price": "1", "start": "2026-02-01", "end": "2026-01-01"}, zh)
    assert exc.value.problems == [Problem("结束日期不能早于开始日期", field="end", code="rule")]


def test_visibility_expression_evaluates(calc):
    reason = calc.model.entity("calc", "order").fields["reason"]
    from decimal import Decimal
    assert reason.visible_if.evaluate({"discount": Decimal("0.3")}) is True
    assert reason.visible_if.evaluate({"discount": Decimal("0.1")}) is False


def test_a_hostile_expression_is_refused_at_install(loom, bundle_copy):
    path = bundle_copy("calc")
    text = (path / "entities" / "order.yaml").read_text(encoding="utf-8")
    (path / "entities" / "order.yaml").write_text(
        text.replace("'large' if total >= 10000 else 'small'", "().__class__.__base__.__subclasses__()"), encoding="utf-8")
    with pytest.raises(InvalidInput) as exc:
        loom.install(path)
    p = exc.value.problems[0]
    assert p.file == "entities/order.yaml" and p.line == text.splitlines().index("  - key: band") + 4


def test_lists_filter_and_sort_on_computed_fields(calc):
    from engine.records import ListRequest
    for qty in (1, 10, 2000):
        calc.records.create("calc.order", {"qty": qty, "price": "9.99"}, SALES)
    ent = calc.model.entity("calc", "order")
    big = calc.query.list(ent, SALES, ListRequest.from_params({"total__gte": "50", "sort": "-total"}))
    assert [i["total"] for i in big["items"]] == ["19980.00", "99.90"]
    assert calc.query.list(ent, SALES, ListRequest.from_params({"band": "large"}))["total"] == 1
