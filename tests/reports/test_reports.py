"""Reports over the `sales` bundle, checked against hand computations (see the fixtures):
2024 trades: 王芳 35000 (3 trades, 2 customers), 李强 48000, 赵敏 27000, 陈静 48000;
北京一组 = 王芳 + 李强, 北京二组 = 赵敏, 上海一组 = 陈静; T11 (2023-12-29, 7000) is outside 2024."""
from __future__ import annotations

from decimal import Decimal

import pytest

from engine.errors import Forbidden, InvalidInput
from tests.reports.conftest import CHENJING, JUNIOR, MANAGER, WANGFANG


def by(rows, key="org"):
    return {r[key]: r for r in rows}


def test_hierarchy_levels_across_five_entities(reports):
    branch = reports.run("advisor_kpi", MANAGER, {}, app="sales")
    rows = by(branch["rows"])
    assert set(rows) == {"北京营业部", "上海营业部"}
    bj = rows["北京营业部"]
    assert (bj["turnover"], bj["commission"], bj["cost"], bj["trades"], bj["customers"]) == \
        ("110000.00", "139.00", "26.80", 7, 4)
    assert bj["net_commission"] == "112.20"                      # derived: commission - cost
    assert bj["net_commission_rate"] == "0.001020"               # derived of derived, safe division
    assert bj["avg_amount"] == "15714.2857" and bj["max_amount"] == "40000.00"
    assert branch["rows"][0]["org"] == "北京营业部"                # sort: -turnover
    assert branch["totals"]["turnover"] == "158000.00" and branch["totals"]["customers"] == 6
    assert branch["hierarchy"]["next"] == "team"

    teams = by(reports.run("advisor_kpi", MANAGER, {}, app="sales", level="team", drill={"branch": bj["org__key"]})["rows"])
    assert {k: v["turnover"] for k, v in teams.items()} == {"北京一组": "83000.00", "北京二组": "27000.00"}
    advisors = reports.run("advisor_kpi", MANAGER, {}, app="sales", level="advisor",
                           drill={"branch": bj["org__key"], "team": teams["北京一组"]["org__key"]})
    assert {r["org"]: r["turnover"] for r in advisors["rows"]} == {"李强": "48000.00", "王芳": "35000.00"}
    assert advisors["hierarchy"]["next"] is None
    top = reports.run("advisor_kpi", MANAGER, {}, app="sales", level="top")
    assert [r["org"] for r in top["rows"]] == ["总部"] and top["rows"][0]["turnover"] == "158000.00"


def test_parameters_filter_and_bad_parameter_is_named(reports):
    res = reports.run("advisor_kpi", MANAGER, {"start_date": "2023-01-01", "min_amount": "20000"}, app="sales",
                      level="advisor")
    # amounts >= 20000 incl. 2023: T02 20000 (王芳), T04 40000 (李强), T08 30000 (陈静)
    assert {r["org"]: r["turnover"] for r in res["rows"]} == {"李强": "40000.00", "陈静": "30000.00", "王芳": "20000.00"}
    res = reports.run("advisor_kpi", MANAGER, {"category": "bond"}, app="sales", level="advisor")
    assert {r["org"]: r["trades"] for r in res["rows"]} == {"王芳": 1, "赵敏": 1, "陈静": 1}
    with pytest.raises(InvalidInput) as exc:
        reports.run("advisor_kpi", MANAGER, {"start_date": "2024-13-01"}, app="sales")
    assert exc.value.problems[0].field == "start_date"
    with pytest.raises(InvalidInput) as exc:
        reports.run("advisor_kpi", MANAGER, {"category": "crypto"}, app="sales")
    assert exc.value.problems[0].field == "category"
    with pytest.raises(InvalidInput) as exc:
        reports.run("advisor_kpi", MANAGER, {"strat_date": "2024-01-01"}, app="sales")
    assert exc.value.problems[0].field == "strat_date"


@pytest.mark.parametrize("bucket,expected", [
    ("day", {"2023-12-29": "7000.00", "2024-01-05": "10000.00"}),
    ("week", {"2023-12-25": "7000.00", "2024-01-01": "10000.00", "2024-02-12": "40000.00"}),
    ("month", {"2023-12": "7000.00", "2024-01": "30000.00", "2024-02": "45000.00", "2024-06": "3000.00"}),
    ("quarter", {"2023-Q4": "7000.00", "2024-Q1": "98000.00", "2024-Q2": "60000.00"}),
    ("year", {"2023": "7000.00", "2024": "158000.00"}),
])
def test_date_buckets(reports, bucket, expected):
    rows = reports.run("trend", MANAGER, {}, app="sales", rows=[bucket])["rows"]
    got = {r[bucket]: r["turnover"] for r in rows}
    for k, v in expected.items():
        assert got[k] == v
    assert sum(Decimal(r["turnover"]) for r in rows) == Decimal("165000.00")


def test_pivot_totals_and_subtotals(reports):
    p = reports.run("monthly_pivot", MANAGER, {}, app="sales")["pivot"]
    assert p["columns"] == ["2024-Q1", "2024-Q2"]
    lines = {tuple(ln["keys"]): ln for ln in p["lines"]}
    bj = lines[("北京营业部",)]
    assert bj["subtotal"] and bj["cells"]["2024-Q1"]["turnover"] == "98000.00"
    assert bj["total"] == {"turnover": "110000.00", "customers": 4}     # distinct customers, not a sum of teams
    assert lines[("北京营业部", "北京二组")]["cells"]["2024-Q2"]["turnover"] == "12000.00"
    assert p["column_totals"]["2024-Q2"] == {"turnover": "60000.00", "customers": 3}
    assert p["grand_total"] == {"turnover": "158000.00", "customers": 6}
    order = [tuple(ln["keys"]) for ln in p["lines"]]
    assert order.index(("北京营业部",)) > order.index(("北京营业部", "北京二组"))   # subtotal after its group


def test_top_n_with_filter_on_joined_entity(reports):
    res = reports.run("top_products", MANAGER, {}, app="sales")
    assert [(r["product"], r["turnover"]) for r in res["rows"]] == [("贵州茅台", "105000.00"), ("沪深300ETF", "24000.00")]
    # totals cover every product, not only the top 2; C1 customers' trades are filtered out
    assert res["totals"]["turnover"] == "141000.00"   # 158000 - C1 trades (5000 + 9000 + 3000)


def test_select_dimension_shows_option_labels(reports):
    res = reports.run("customers_by_risk", MANAGER, {}, app="sales")
    assert {r["risk_level"]: r["customers"] for r in res["rows"]} == {"保守型": 2, "稳健型": 2, "积极型": 2}


def test_scope_applies_in_report(reports):
    res = reports.run("advisor_kpi", WANGFANG, {}, app="sales", level="advisor")
    assert [(r["org"], r["turnover"]) for r in res["rows"]] == [("王芳", "35000.00")]
    assert res["totals"]["turnover"] == "35000.00"
    res = reports.run("customers_by_risk", CHENJING, {}, app="sales")
    assert res["totals"]["customers"] == 2


def test_scope_applies_in_drill_down_records(reports):
    mine = reports.records("advisor_kpi", WANGFANG, {}, app="sales", drill={"advisor": "4"})
    assert mine["items"] == []                                       # 陈静's trades stay invisible
    mine = reports.records("advisor_kpi", WANGFANG, {}, app="sales")
    assert sorted(i["ref"] for i in mine["items"]) == ["T01", "T02", "T03"]
    boss = reports.records("advisor_kpi", MANAGER, {}, app="sales", drill={"advisor": "4"})
    assert sorted(i["ref"] for i in boss["items"]) == ["T08", "T09", "T10", "T12"]
    assert boss["list_url"] == "/app/sales/trade?trade_date__gte=2024-01-01&trade_date__lte=2024-12-31&advisor=4"


def test_hidden_field_measure_is_refused(reports):
    with pytest.raises(Forbidden) as exc:
        reports.run("advisor_kpi", JUNIOR, {}, app="sales")
    assert "commission" in exc.value.problems[0].message
    res = reports.run("advisor_kpi", JUNIOR, {}, app="sales", measures=["turnover", "trades"])
    assert res["totals"]["turnover"] == "35000.00"


def test_one_statement_and_no_python_aggregation(reports, sales):
    from sqlalchemy import event
    seen = []
    listener = lambda *a: seen.append(a[2])  # noqa: E731
    event.listen(sales.db, "before_cursor_execute", listener)
    try:
        reports.run("monthly_pivot", MANAGER, {}, app="sales")
    finally:
        event.remove(sales.db, "before_cursor_execute", listener)
    selects = [s for s in seen if "sales_trade" in s]
    assert len(selects) == 1 and "GROUP BY" in selects[0] and "UNION ALL" in selects[0]


def test_expressions_refuse_python(reports, sales):
    from engine.reports import parse_report
    body = dict(reports.definition("sales", "advisor_kpi").body)
    for bad in ["__import__('os').system('x')", "amount.__class__", "[x for x in amount]", "lambda: 1"]:
        with pytest.raises(InvalidInput):
            parse_report("sales", {**body, "filters": [bad]})


def test_install_reports_bad_field_path_with_file(sales, bundle_copy):
    path = bundle_copy("sales")
    (path / "reports" / "broken.yaml").write_text(
        "key: broken\nlabel: B\nsource: trade\nmeasures:\n  - {key: x, agg: sum, field: advisor.team.nope}\n",
        encoding="utf-8")
    with pytest.raises(InvalidInput) as exc:
        sales.plan_install(path)
    msgs = [(p.file, p.message) for p in exc.value.problems]
    assert any("broken" in (f or "") and "nope" in m for f, m in msgs), msgs


def test_statement_cache_keeps_buckets_apart(reports, sales):
    # report statements are cached by SQLAlchemy; the bucket unit is part of the cache key
    month = reports.run("trend", MANAGER, {}, app="sales", rows=["month"])["rows"]
    year = reports.run("trend", MANAGER, {}, app="sales", rows=["year"])["rows"]
    assert [r["month"] for r in month][:2] == ["2023-12", "2024-01"]
    assert [r["year"] for r in year] == ["2023", "2024"]
