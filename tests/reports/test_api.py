"""Reports and dashboards over HTTP: JSON, exports (scoped), dashboards with chart options,
drill-down, personal dashboards, schedules."""
from __future__ import annotations

import io

import pytest

from engine.security.users import create_user, issue_token


@pytest.fixture
def app(sales):
    from engine.runtime.app import create_app
    return create_app(sales, {"TESTING": True})


def _client(app, sales, username, roles, is_admin=False):
    with sales.db.begin() as conn:
        uid = create_user(conn, username, None, roles=roles, is_admin=is_admin, locale="zh-CN")
        token = issue_token(conn, uid, "tests")
    c = app.test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return c


@pytest.fixture
def boss(app, sales):
    return _client(app, sales, "boss", ["manager"])


@pytest.fixture
def wangfang(app, sales):
    return _client(app, sales, "wangfang", ["advisor"])


def test_report_json_and_bad_parameter_422(boss):
    r = boss.get("/api/v1/reports/sales/advisor_kpi?level=team&drill=branch:1")
    assert r.status_code == 200, r.get_json()
    assert {x["org"]: x["turnover"] for x in r.get_json()["rows"]} == {"北京一组": "83000.00", "北京二组": "27000.00"}
    r = boss.get("/api/v1/reports/sales/advisor_kpi?min_amount=lots")
    assert r.status_code == 422 and r.content_type == "application/problem+json"
    assert r.get_json()["errors"][0]["field"] == "min_amount"


def test_export_csv_and_xlsx_are_scoped_with_chinese_headers(boss, wangfang):
    from openpyxl import load_workbook
    r = wangfang.get("/api/v1/reports/sales/advisor_kpi/export?format=csv&level=advisor")
    assert r.status_code == 200
    text = r.data.decode("utf-8-sig")
    lines = text.strip().splitlines()
    assert lines[0].startswith("组织,成交额,佣金")
    assert len(lines) == 3 and "王芳" in lines[1] and "陈静" not in text     # one advisor + the total line
    assert lines[2].startswith("合计") and "35000.00" in lines[2]
    r = boss.get("/api/v1/reports/sales/advisor_kpi/export?format=xlsx&level=advisor")
    ws = load_workbook(io.BytesIO(r.data)).active
    assert ws["A1"].value == "组织" and ws["B1"].value == "成交额"
    assert ws["B2"].value == 48000 and ws["B2"].number_format == "#,##0.00"
    rate_col = [c.column for c in ws[1] if c.value == "净佣金率"][0]
    assert ws.cell(row=2, column=rate_col).number_format.endswith("%")
    assert ws.cell(row=ws.max_row, column=1).value == "合计"


def test_dashboard_widgets_and_drill(boss, wangfang):
    r = boss.get("/api/v1/dashboards/sales/overview")
    assert r.status_code == 200, r.get_json()
    w = {x["key"]: x for x in r.get_json()["widgets"]}
    bar = w["org_bar"]
    assert bar["option"]["xAxis"]["data"] == ["北京营业部", "上海营业部"]
    assert bar["option"]["series"][0]["data"] == [110000.0, 48000.0]
    assert bar["drill"]["next"] == "team"
    assert w["category_pie"]["option"]["series"][0]["type"] == "pie"
    assert w["product_funnel"]["option"]["series"][0]["type"] == "funnel"
    assert w["org_treemap"]["option"]["series"][0]["type"] == "treemap"
    assert w["branch_pivot"]["result"]["pivot"]["grand_total"]["turnover"] == "158000.00"
    assert "function" not in r.get_data(as_text=True)
    # KPI vs the previous period of the same length (2023): only T11 (7000)
    assert w["kpi_turnover"]["value"] == "158000.00" and w["kpi_turnover"]["previous"] == "7000.00"
    # drill: branch 北京 -> teams -> advisors -> record links
    d = bar["drill"]
    r = boss.get(f"{d['url']}?level=team&drill=branch:{d['keys'][0]}")
    team = r.get_json()
    assert team["option"]["xAxis"]["data"] == ["北京一组", "北京二组"]
    r = boss.get(f"{d['url']}?level=advisor&drill={team['drill']['path']},team:{team['drill']['keys'][0]}")
    adv = r.get_json()
    assert adv["option"]["xAxis"]["data"] == ["李强", "王芳"] and adv["drill"]["next"] is None
    assert adv["drill"]["records"][0].startswith("/app/sales/trade?") and "advisor=2" in adv["drill"]["records"][0]
    # the advisor's dashboard shows only their own figures
    mine = {x["key"]: x for x in wangfang.get("/api/v1/dashboards/sales/overview").get_json()["widgets"]}
    assert mine["kpi_turnover"]["value"] == "35000.00"
    assert mine["org_bar"]["option"]["xAxis"]["data"] == ["北京营业部"]


def test_records_endpoint_scoped(boss, wangfang):
    r = wangfang.get("/api/v1/reports/sales/advisor_kpi/records?drill=advisor:4")
    assert r.status_code == 200 and r.get_json()["items"] == []
    r = boss.get("/api/v1/reports/sales/advisor_kpi/records?drill=advisor:4")
    assert sorted(i["ref"] for i in r.get_json()["items"]) == ["T08", "T09", "T10", "T12"]


def test_default_and_personal_dashboard(wangfang):
    r = wangfang.get("/api/v1/dashboards/sales")
    assert r.get_json()["default"] == "overview"
    body = {"widgets": [{"key": "k", "type": "kpi", "report": "advisor_kpi", "measure": "nope"}]}
    r = wangfang.put("/api/v1/me/dashboards/sales", json=body)
    assert r.status_code == 422 and "nope" in r.get_data(as_text=True)
    body["widgets"][0]["measure"] = "turnover"
    assert wangfang.put("/api/v1/me/dashboards/sales", json=body).status_code == 200
    assert wangfang.get("/api/v1/dashboards/sales").get_json()["default"] == "_personal"
    r = wangfang.get("/api/v1/dashboards/sales/_personal")
    assert r.get_json()["widgets"][0]["value"] == "35000.00"


def test_scheduled_email_is_scoped_and_queued(sales, wangfang):
    import sqlalchemy as sa
    from openpyxl import load_workbook
    from engine.reports.tables import outbox
    r = wangfang.post("/api/v1/reports/sales/advisor_kpi/schedules",
                      json={"recipients": ["wf@example.com"], "every": "week", "params": {"start_date": "2024-01-01"}})
    assert r.status_code == 201, r.get_json()
    assert wangfang.post("/api/v1/reports/sales/advisor_kpi/schedules", json={"recipients": "x"}).status_code == 422
    assert sales.extensions["reports"].tick()["emails_queued"] == 1
    assert sales.extensions["reports"].tick()["emails_queued"] == 0        # next run is a week later
    with sales.db.connect() as conn:
        row = conn.execute(sa.select(outbox)).mappings().one()
    assert row["recipients"] == ["wf@example.com"] and row["status"] == "queued"
    ws = load_workbook(io.BytesIO(row["attachment"])).active
    names = [ws.cell(row=i, column=1).value for i in range(2, ws.max_row + 1)]
    assert names == ["北京营业部", "合计"] and ws.cell(row=2, column=2).value == 35000


def test_dashboard_screen_has_no_inline_script(boss):
    r = boss.get("/app/sales/dashboards/overview")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "echarts.min.js" in html and "reports/dashboard.js" in html
    import re
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)


def test_dashboard_screen_speaks_chinese(boss):
    html = boss.get("/app/sales/dashboards/overview").get_data(as_text=True)
    # strings of the report templates, from engine/reports/translations/zh_CN
    assert "返回上一级" in html and "小计" in html and "合计" in html and ">应用<" in html
    assert "Up one level" not in html and "Subtotal" not in html
