"""Rollups (`rollup: true`): a report answered from its summary table gives exactly the figures
of the live query, after inserts, updates, deletes and a bulk import, for a manager and for an
advisor whose row scope can be applied to the rollup; a scope that cannot falls back to the live
query. Rebuild from the command line; refused at install when a measure is not additive."""
from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from engine.errors import InvalidInput
from engine.security import Actor
from tests.reports.conftest import MANAGER, WANGFANG, SalesPolicy

SYSTEM = Actor.system("test")
VIEWS = [dict(level="branch"), dict(level="team"), dict(level="advisor"), dict(level="top"),
         dict(rows=["category"]), dict(rows=["month"]), dict(level="advisor", rows=["org", "category"])]


def rollup_name(sales):
    ext = sales.extensions["reports"]
    return ext.rollups.table_for(ext.reports.definition("sales", "org_rollup")).table.name


def statement_of(reports, actor, **kw):
    return reports.sql("org_rollup", actor, {}, app="sales", **kw)


def assert_same(reports, actor, params=None):
    """Every view of the report: rollup == live query (figures, order, totals, subtotals)."""
    for view in VIEWS:
        with_rollup = reports.run("org_rollup", actor, params or {}, app="sales", **view)
        live = reports.run("org_rollup", actor, params or {}, app="sales", use_rollup=False, **view)
        assert with_rollup == live, view
    return reports.run("org_rollup", actor, params or {}, app="sales", level="advisor")


def org_totals(reports, actor):
    res = reports.run("org_rollup", actor, {}, app="sales", level="advisor", rows=["org"])
    return {r["org"]: (r["turnover"], r["trades"]) for r in res["rows"]}


def advisor_ids(sales):
    t = sales.model.entity("sales", "advisor").table
    with sales.db.connect() as conn:
        return {name: i for i, name in conn.execute(sa.select(t.c.id, t.c.name))}


def ref_id(sales, ref):
    t = sales.model.entity("sales", "trade").table
    with sales.db.connect() as conn:
        return conn.execute(sa.select(t.c.id).where(t.c.ref == ref)).scalar()


def test_rollup_is_used_and_matches_the_live_query(reports, sales):
    assert rollup_name(sales) in statement_of(reports, MANAGER)
    assert rollup_name(sales) not in statement_of(reports, MANAGER, use_rollup=False)
    assert_same(reports, MANAGER)
    assert org_totals(reports, MANAGER)["王芳"] == ("42000.00", 4)           # T01-T03 + T11 (2023)
    res = reports.run("org_rollup", MANAGER, {"start_date": "2024-01-01"}, app="sales", level="advisor",
                      rows=["org"])
    assert {r["org"]: r["turnover"] for r in res["rows"]}["王芳"] == "35000.00"
    assert res["totals"]["rate"] == reports.run("org_rollup", MANAGER, {"start_date": "2024-01-01"}, app="sales",
                                                rows=["org"], use_rollup=False)["totals"]["rate"]


def test_rollup_follows_inserts_updates_and_deletes(reports, sales):
    ids = advisor_ids(sales)
    product = sales.model.entity("sales", "product").table
    customer = sales.model.entity("sales", "customer").table
    with sales.db.connect() as conn:
        p1 = conn.execute(sa.select(product.c.id).order_by(product.c.id)).scalar()
        c1 = conn.execute(sa.select(customer.c.id).order_by(customer.c.id)).scalar()
    rec = sales.records.create("sales.trade", {"ref": "N1", "trade_date": "2024-07-01", "customer": c1,
                                         "advisor": ids["王芳"], "product": p1, "amount": "1000.50",
                                         "commission": "1.25"}, SYSTEM)
    assert org_totals(reports, MANAGER)["王芳"] == ("43000.50", 5)
    assert_same(reports, MANAGER)
    # moving a trade to another advisor and changing its amount: out of one group, into another
    sales.records.update("sales.trade", rec["id"], {"advisor": ids["陈静"], "amount": "2000.00", "cost": "3.00"}, SYSTEM)
    totals = org_totals(reports, MANAGER)
    assert totals["王芳"] == ("42000.00", 4) and totals["陈静"] == ("50000.00", 5)
    assert_same(reports, MANAGER)
    sales.records.delete("sales.trade", rec["id"], SYSTEM)
    sales.records.delete("sales.trade", ref_id(sales, "T01"), SYSTEM)
    assert org_totals(reports, MANAGER)["王芳"] == ("32000.00", 3)
    assert_same(reports, MANAGER)
    assert_same(reports, WANGFANG)


def test_bulk_import_is_one_batched_statement(reports, sales):
    ids = advisor_ids(sales)
    product = sales.model.entity("sales", "product").table
    customer = sales.model.entity("sales", "customer").table
    with sales.db.connect() as conn:
        p_ids = [r[0] for r in conn.execute(sa.select(product.c.id))]
        c1 = conn.execute(sa.select(customer.c.id).order_by(customer.c.id)).scalar()
    rows = [(i + 1, {"ref": f"B{i}", "trade_date": f"2024-0{i % 9 + 1}-1{i % 10}", "customer": c1,
                     "advisor": ids["李强" if i % 2 else "赵敏"], "product": p_ids[i % len(p_ids)],
                     "amount": f"{100 + i}.10", "commission": None if i % 3 else "0.10"})
            for i in range(120)]
    name = rollup_name(sales)
    seen = []
    listener = lambda conn, cursor, stmt, *a: seen.append(stmt)  # noqa: E731
    sa.event.listen(sales.db, "before_cursor_execute", listener)
    try:
        result = sales.records.import_rows("sales.trade", rows, SYSTEM, batch_size=500)
    finally:
        sa.event.remove(sales.db, "before_cursor_execute", listener)
    assert result.inserted == 120
    writes = [s for s in seen if name in s and s.lstrip().upper().startswith("INSERT")]
    assert len(writes) == 1 and "GROUP BY" in writes[0]
    before = org_totals(reports, MANAGER)
    assert before["李强"][1] == 2 + 60 and before["赵敏"][1] == 2 + 60
    assert_same(reports, MANAGER)
    # compaction folds the appended deltas without changing a figure
    ext = sales.extensions["reports"]
    ext.rollups.compact(ext.reports.definition("sales", "org_rollup"), force=True)
    assert org_totals(reports, MANAGER) == before
    assert_same(reports, MANAGER)


def test_advisor_scope_is_applied_to_the_rollup(reports, sales):
    # the advisor's filter reads trade.advisor, which the rollup keeps: the rollup serves them too
    sql = statement_of(reports, WANGFANG)
    assert rollup_name(sales) in sql and "username" in sql
    res = assert_same(reports, WANGFANG)
    assert {r["org"] for r in res["rows"]} == {"王芳"}
    assert res["totals"]["turnover"] == "42000.00"


class CustomerScopedPolicy(SalesPolicy):
    """Advisors' trades scoped by the customer column, which the rollup does not keep."""

    def row_filter(self, actor, entity, action="read"):
        if entity.full_key == "sales.trade" and "advisor" in actor.roles:
            cust = self.loom.model.entity("sales", "customer").table
            return entity.table.c.customer.in_(sa.select(cust.c.id).where(cust.c.advisor.in_(self._my_advisors(actor))))
        return super().row_filter(actor, entity, action)


def test_scope_the_rollup_cannot_apply_falls_back_to_the_live_query(reports, sales):
    sales.policy_factory = lambda lm, model: CustomerScopedPolicy(lm)
    sales.reload(force=True)
    assert rollup_name(sales) not in statement_of(reports, WANGFANG)
    assert rollup_name(sales) in statement_of(reports, MANAGER)
    res = reports.run("org_rollup", WANGFANG, {}, app="sales", level="advisor", rows=["org"])
    assert [(r["org"], r["turnover"]) for r in res["rows"]] == [("王芳", "42000.00")]


def test_rebuild_from_the_command_line(sales, settings):
    from engine.runtime.cli import main
    name = rollup_name(sales)
    assert reports_turnover(sales) == "165000.00"          # first use creates and fills the table
    with sales.db.begin() as conn:      # a rollup gone stale (e.g. rows loaded around the record service)
        conn.execute(sa.table(name, sa.column("_count"), schema=settings.db_schema or None)
                     .delete())
    assert reports_turnover(sales) is None
    env = {"LOOM_INSTANCE_PATH": str(settings.instance_path), "LOOM_FIELD_KEY": settings.field_key,
           "LOOM_SECRET_KEY": settings.secret_key, "LOOM_DATABASE_URL": settings.database_url,
           "LOOM_DB_SCHEMA": settings.db_schema}
    out = CliRunner().invoke(main, ["report", "rollup", "rebuild", "sales.org_rollup"], env=env,
                             catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "rollup of sales.org_rollup rebuilt" in out.output
    assert reports_turnover(sales) == "165000.00"
    bad = CliRunner().invoke(main, ["report", "rollup", "rebuild", "sales.advisor_kpi"], env=env)
    assert bad.exit_code != 0 and "cannot be kept in a rollup" in bad.output


def reports_turnover(sales):
    return sales.extensions["reports"].reports.run("org_rollup", MANAGER, {}, app="sales", level="top")["totals"][
        "turnover"]


def test_install_refuses_a_rollup_over_non_additive_measures(sales, bundle_copy):
    path = bundle_copy("sales")
    body = (path / "reports" / "advisor_kpi.yaml").read_text(encoding="utf-8")
    (path / "reports" / "advisor_kpi.yaml").write_text(body + "rollup: true\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as exc:
        sales.plan_install(path)
    msgs = [(p.file or "", p.message) for p in exc.value.problems]
    assert any("advisor_kpi" in f and "max_amount" in m and "rollup" in m for f, m in msgs), msgs


def test_rollup_must_be_a_boolean(sales, bundle_copy):
    path = bundle_copy("sales")
    body = (path / "reports" / "org_rollup.yaml").read_text(encoding="utf-8")
    (path / "reports" / "org_rollup.yaml").write_text(body.replace("rollup: true", "rollup: sometimes"),
                                                      encoding="utf-8")
    with pytest.raises(InvalidInput) as exc:
        sales.plan_install(path)
    assert any("rollup" in (p.message + str(p.path or "")) for p in exc.value.problems)


def test_decimal_noise_from_sqlite_rounds_like_postgresql():
    from engine.reports.compiler import OutputColumn, coerce_measure
    out = OutputColumn("avg", "avg", "measure", "decimal", 4)
    # exact half: 49911.97975 -> .9798, whether SQLite's float came back just below or just above
    assert coerce_measure(Decimal("49911.9797499998"), out, approximate=True) == Decimal("49911.9798")
    assert coerce_measure(49911.97975000001, out) == Decimal("49911.9798")
    # an exact value (PostgreSQL) is rounded once: no double rounding
    assert coerce_measure(Decimal("49911.9797499998"), out) == Decimal("49911.9797")
