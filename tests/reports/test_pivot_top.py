"""Top-N and limit on pivot reports: the first N row keys by the top measure (over all columns);
column totals and the grand total stay over every row."""
from __future__ import annotations

from engine.reports import parse_report
from tests.reports.conftest import MANAGER, WANGFANG


def pivot_report(reports, **extra):
    body = dict(reports.definition("sales", "monthly_pivot").body)
    body.update(rows=["team"], subtotals=False, **extra)
    return parse_report("sales", body)


def test_top_n_rows_of_a_pivot(reports):
    # 2024 turnover per team: 北京一组 83000, 上海一组 48000, 北京二组 27000
    p = reports.run(pivot_report(reports, top={"n": 2, "by": "turnover"}), MANAGER, {})["pivot"]
    lines = {ln["keys"][0]: ln for ln in p["lines"]}
    assert set(lines) == {"北京一组", "上海一组"}
    assert lines["北京一组"]["total"]["turnover"] == "83000.00"
    assert lines["北京一组"]["cells"]["2024-Q1"]["turnover"] == "83000.00"
    assert p["grand_total"]["turnover"] == "158000.00"                 # over all teams
    assert p["column_totals"]["2024-Q2"]["turnover"] == "60000.00"
    top1 = reports.run(pivot_report(reports, top={"n": 1, "by": "turnover"}), MANAGER, {})["pivot"]
    assert [ln["keys"] for ln in top1["lines"]] == [["北京一组"]]


def test_limit_parameter_on_a_pivot_and_scope(reports):
    rep = pivot_report(reports, top={"n": 1, "by": "turnover"})
    # the advisor's scope applies before choosing the top rows: their own team, their own figures
    p = reports.run(rep, WANGFANG, {})["pivot"]
    assert [ln["keys"] for ln in p["lines"]] == [["北京一组"]]
    assert p["lines"][0]["total"]["turnover"] == "35000.00" and p["grand_total"]["turnover"] == "35000.00"
    plain = pivot_report(reports)
    assert len(reports.run(plain, MANAGER, {})["pivot"]["lines"]) == 3
    limited = reports.run(plain, MANAGER, {}, limit=2)["pivot"]
    assert sorted(ln["keys"][0] for ln in limited["lines"]) == ["北京一组", "北京二组"]   # first two team ids
