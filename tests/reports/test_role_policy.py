"""The real security RolePolicy (engine/security/policy.py), not the reports tests' own policy:
with the scopes below an advisor sees only their own customers' figures in a report, in the
drill-down to records, in an export -- and in a rollup report, which then runs live."""
from __future__ import annotations

import pytest
import yaml

from engine.errors import Forbidden
from engine.reports import export_csv
from engine.security import Actor

ROLES = {"roles": [
    {"key": "advisor", "label": {"zh-CN": "投资顾问", "en": "Advisor"}, "permissions": [
        {"entity": "advisor", "actions": ["read"], "scope": "username == user.username"},
        {"entity": "customer", "actions": ["read"], "scope": "linked:advisor"},
        {"entity": "trade", "actions": ["read", "export"], "scope": "linked:customer"},
        {"entity": "team", "actions": ["read"]},
        {"entity": "branch", "actions": ["read"]},
        {"entity": "product", "actions": ["read"]}]},
    {"key": "manager", "label": {"zh-CN": "经理", "en": "Manager"}, "permissions": [
        {"entity": "*", "actions": ["read", "export"], "scope": "all"}]},
]}


@pytest.fixture
def secured(loom, bundle_copy):
    path = bundle_copy("sales")
    (path / "roles.yaml").write_text(yaml.safe_dump(ROLES, allow_unicode=True), encoding="utf-8")
    loom.install(path)
    from engine.security.policy import RolePolicy
    assert isinstance(loom.policy, RolePolicy)
    return loom


def user(name, role):
    return Actor(user_id=None, username=name, roles=frozenset({f"sales.{role}"}), locale="zh-CN")


def test_advisor_sees_only_own_customers_everywhere(secured):
    reports = secured.extensions["reports"].reports
    wf, boss = user("wangfang", "advisor"), user("boss", "manager")
    res = reports.run("advisor_kpi", wf, {}, app="sales", level="advisor")
    assert [(r["org"], r["turnover"]) for r in res["rows"]] == [("王芳", "35000.00")]
    assert res["totals"]["turnover"] == "35000.00" and res["totals"]["customers"] == 2
    assert reports.run("advisor_kpi", boss, {}, app="sales")["totals"]["turnover"] == "158000.00"
    # customers report over the customer entity: 张三 and 李四 only
    assert reports.run("customers_by_risk", wf, {}, app="sales")["totals"]["customers"] == 2
    # drill-down to the records behind a figure
    assert sorted(i["ref"] for i in reports.records("advisor_kpi", wf, {}, app="sales")["items"]) == ["T01", "T02", "T03"]
    assert reports.records("advisor_kpi", wf, {}, app="sales", drill={"advisor": "4"})["items"] == []
    # export (the `export` action)
    text = export_csv(reports.run("advisor_kpi", wf, {}, app="sales", level="advisor", action="export")).decode("utf-8-sig")
    assert "王芳" in text and "陈静" not in text and "李强" not in text
    # a rollup report: the trade scope reads `customer`, which the rollup does not keep -> live query
    name = secured.extensions["reports"].rollups.table_for(reports.definition("sales", "org_rollup")).table.name
    assert name not in reports.sql("org_rollup", wf, {}, app="sales")
    rolled = reports.run("org_rollup", wf, {}, app="sales", level="advisor", rows=["org"])
    assert [(r["org"], r["turnover"]) for r in rolled["rows"]] == [("王芳", "42000.00")]


def test_export_needs_the_export_action(secured):
    reports = secured.extensions["reports"].reports
    with pytest.raises(Forbidden):
        reports.run("customers_by_risk", user("wangfang", "advisor"), {}, app="sales", action="export")
