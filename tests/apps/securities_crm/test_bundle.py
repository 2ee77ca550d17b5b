"""The bundle validates, installs with its reference data, and reinstalls without duplicating it."""
from __future__ import annotations

import shutil

import yaml

from engine.security import Actor
from tests.apps.securities_crm.conftest import BUNDLE

SYSTEM = Actor.system("test")


def rows(loom, entity):
    from engine.records.query import ListRequest
    ent = loom.model.entity(f"securities_crm.{entity}")
    return loom.query.list(ent, SYSTEM, ListRequest(page_size=500))["items"]


def test_bundle_validates(loom):
    bundle, problems = loom.validate_bundle(BUNDLE)
    assert problems == []
    kinds = {d.kind for d in bundle.definitions}
    assert {"entity", "form", "role", "script", "fixture"} <= kinds


def test_every_label_has_chinese_and_english():
    missing = []

    def walk(node, where):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("label", "label_plural", "message", "title") and isinstance(v, dict):
                    if not (v.get("zh-CN") and v.get("en")):
                        missing.append(f"{where}/{k}")
                walk(v, f"{where}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}/{i}")
    for path in list((BUNDLE / "entities").glob("*.yaml")) + list((BUNDLE / "forms").glob("*.yaml")) + [BUNDLE / "roles.yaml"]:
        walk(yaml.safe_load(path.read_text("utf-8")), path.name)
    assert missing == []


def test_install_loads_reference_data(crm):
    matrix = {(r["customer_level"], r["product_rating"]): r["decision"] for r in rows(crm, "suitability_rule")}
    assert len(matrix) == 35
    assert matrix[("C2", "R4")] == "warn" and matrix[("C1L", "R2")] == "refuse" and matrix[("C5", "R5")] == "allow"
    products = rows(crm, "product")
    assert {p["risk_rating"] for p in products} == {"R1", "R2", "R3", "R4", "R5"}
    star = next(p for p in products if p["code"] == "688981")
    gates = {g["id"]: g for g in rows(crm, "access_gate")}
    assert gates[star["access_gate"]]["code"] == "STAR"
    assert {t["code"] for t in rows(crm, "aml_threshold")} == {"0501", "0502", "0503", "0504"}
    assert {t["code"] for t in rows(crm, "aml_typology")} == {f"S{i}" for i in range(1, 9)}
    assert len(rows(crm, "branch")) >= 3 and len(rows(crm, "team")) >= 6
    years = {h["day"][:4] for h in rows(crm, "holiday")}
    assert {"2026", "2027"} <= years
    q = crm.records.get("securities_crm.questionnaire", rows(crm, "questionnaire")[0]["id"], SYSTEM)
    assert len(q["questions"]) == 10
    assert sum(max(o["score"] for o in qq["options"]) for qq in q["questions"]) == 100
    allocations = rows(crm, "model_allocation")
    assert all(sum(float(a[k]) for k in ("cash_pct", "fixed_income_pct", "equity_pct", "alternatives_pct")) == 100
               for a in allocations)


def test_reinstall_updates_reference_data_in_place(crm, tmp_path):
    copy = tmp_path / "securities_crm"
    shutil.copytree(BUNDLE, copy)
    path = copy / "fixtures" / "parameters.yaml"
    path.write_text(path.read_text("utf-8").replace('{code: dormant_days, value: "180"', '{code: dormant_days, value: "200"'),
                    "utf-8")
    app = copy / "app.yaml"
    app.write_text(app.read_text("utf-8").replace("version: 0.1.0", "version: 0.1.1"), "utf-8")
    before = len(rows(crm, "parameter"))
    crm.install(copy)
    params = {p["code"]: p["value"] for p in rows(crm, "parameter")}
    assert params["dormant_days"] == "200"
    assert len(rows(crm, "parameter")) == before


def test_computed_fields_and_validations(crm):
    cust = crm.records.create("securities_crm.customer", {
        "customer_no": "C900001", "name": "测试客户", "id_number": "11010519491231002X", "mobile": "13800138000"}, SYSTEM)
    acct = crm.records.create("securities_crm.capital_account", {"account_no": "9000000001", "customer": cust["id"],
                                                                 "opened_on": "2026-01-05"}, SYSTEM)
    sec = crm.records.create("securities_crm.securities_account", {
        "account_no": "A900000001", "customer": cust["id"], "capital_account": acct["id"], "market": "SH",
        "opened_on": "2026-01-05"}, SYSTEM)
    trade = crm.records.create("securities_crm.trade", {
        "trade_no": "T1", "customer": cust["id"], "securities_account": sec["id"], "security_code": "600519",
        "side": "buy", "quantity": 300, "price": "1501.2345", "trade_time": "2026-03-02T10:00:00+08:00"}, SYSTEM)
    assert trade["amount"] == "450370.35"
    q = rows(crm, "questionnaire")[0]
    a = crm.records.create("securities_crm.assessment", {
        "customer": cust["id"], "questionnaire": q["id"], "answers": [], "score": 40, "risk_level": "C3",
        "assessed_on": "2026-01-31", "validity_days": 730}, SYSTEM)
    assert a["expires_on"] == "2028-01-31"
    import pytest
    from engine.errors import InvalidInput
    with pytest.raises(InvalidInput) as exc:
        crm.records.update("securities_crm.customer", cust["id"], {"lowest_category": True, "risk_level": "C3"}, SYSTEM)
    assert any(p.field == "risk_level" for p in exc.value.problems)
    with pytest.raises(InvalidInput) as exc:
        crm.records.create("securities_crm.complaint", {
            "complaint_no": "X1", "channel": "csrc_12386", "business_line": "brokerage", "category": "fees",
            "description": "d", "received_at": "2026-03-02T10:00:00+08:00"}, SYSTEM)
    assert any(p.field == "platform_ref" for p in exc.value.problems)
