"""`loom report indexes`: covering indexes proposed from report definitions, printed and created."""
from __future__ import annotations

import sqlalchemy as sa
from click.testing import CliRunner

from engine.reports import propose_indexes


def cli(settings, *args):
    from engine.runtime.cli import main
    env = {"LOOM_INSTANCE_PATH": str(settings.instance_path), "LOOM_FIELD_KEY": settings.field_key,
           "LOOM_SECRET_KEY": settings.secret_key, "LOOM_DATABASE_URL": settings.database_url,
           "LOOM_DB_SCHEMA": settings.db_schema}
    out = CliRunner().invoke(main, ["report", "indexes", *args], env=env, catch_exceptions=False)
    assert out.exit_code == 0, out.output
    return out.output


def test_proposal_puts_filters_first_then_groups_then_measures(reports, sales):
    (p,) = propose_indexes(sales.model, [reports.definition("sales", "advisor_kpi")])
    # parameters (date range, product for the category), filter (amount), the org levels' first
    # step (advisor), then the aggregated columns: everything the report reads from trades
    assert p["columns"] == ["trade_date", "product", "amount", "advisor", "commission", "cost", "customer"]
    assert p["table"] == "sales_trade" and p["name"] == "ix_sales_trade_rpt_advisor_kpi"
    # proposing changes nothing: the live model's table has no new index
    assert "ix_sales_trade_rpt_advisor_kpi" not in {ix.name for ix in sales.model.entity("sales", "trade").table.indexes}


def test_cli_prints_and_creates_indexes(sales, settings):
    out = cli(settings, "--app", "sales")
    assert "-- sales.advisor_kpi" in out
    assert "CREATE INDEX ix_sales_trade_rpt_advisor_kpi ON sales_trade (trade_date, product, amount, advisor" in out
    assert "ix_sales_customer_rpt_customers_by_risk" in out
    schema = settings.db_schema or None
    with sales.db.connect() as conn:
        assert "ix_sales_trade_rpt_advisor_kpi" not in {i["name"] for i in sa.inspect(conn).get_indexes("sales_trade", schema=schema)}
    out = cli(settings, "--app", "sales", "--create")
    assert "created" in out and "ix_sales_trade_rpt_advisor_kpi" in out.split("-- created")[1]
    with sales.db.connect() as conn:
        have = {i["name"]: i["column_names"] for i in sa.inspect(conn).get_indexes("sales_trade", schema=schema)}
    assert have["ix_sales_trade_rpt_advisor_kpi"][:2] == ["trade_date", "product"]
    again = cli(settings, "--app", "sales", "--create")
    assert "created 0 index(es): (all existed)" in again
    # reports still run with the index in place
    from tests.reports.conftest import MANAGER
    res = sales.extensions["reports"].reports.run("advisor_kpi", MANAGER, {}, app="sales")
    assert res["totals"]["turnover"] == "158000.00"


def test_cli_without_reports_says_so(sales, settings):
    assert "no report needs an index" in cli(settings, "--app", "nothing")
