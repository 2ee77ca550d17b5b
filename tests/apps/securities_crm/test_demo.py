"""The demo generator: deterministic for a seed, valid identity numbers, labelled episodes, and
the advisor's row scope on the generated data."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from engine.records.query import ListRequest
from engine.sandbox import compile_script
from engine.security import Actor
from tests.apps.securities_crm.conftest import AS_OF, BUNDLE, SEED, _drop, build_demo

SYSTEM = Actor.system("test")


def items(loom, entity, actor=SYSTEM, **params):
    ent = loom.model.entity(f"securities_crm.{entity}")
    out, page = [], 1
    while True:
        res = loom.query.list(ent, actor, ListRequest.from_params({"page": page, "page_size": 500, **params}))
        out.extend(res["items"])
        if not res["has_more"]:
            return out
        page += 1


def total(loom, entity, actor=SYSTEM):
    ent = loom.model.entity(f"securities_crm.{entity}")
    return loom.query.list(ent, actor, ListRequest(page_size=1))["total"]


def test_small_demo_counts(crm_demo):
    loom, summary = crm_demo
    counts = summary["counts"]
    assert counts["customer"] == 300 and counts["capital_account"] == 300 and counts["securities_account"] == 600
    assert 2000 <= counts["trade"] <= 10000 and counts["transfer"] >= 1000
    assert counts["complaint"] == 30 and counts["assessment"] == 300
    for entity, n in counts.items():
        assert total(loom, entity) == n, entity
    branches = {c["branch"] for c in items(loom, "customer")}
    assert len(branches) >= 3
    ratings = {p["risk_rating"] for p in items(loom, "product")}
    assert ratings == {"R1", "R2", "R3", "R4", "R5"}


def test_same_seed_same_data(crm_demo, tmp_path):
    loom, summary = crm_demo
    other, settings, again = build_demo(tmp_path)
    try:
        assert again["counts"] == summary["counts"]
        assert again["episodes"] == summary["episodes"]
        fields = ("customer_no", "name", "id_number", "mobile", "birthday", "risk_level", "advisor_user")
        assert [tuple(c[f] for f in fields) for c in items(other, "customer", sort="id")] == \
               [tuple(c[f] for f in fields) for c in items(loom, "customer", sort="id")]
        tf = ("trade_no", "security_code", "side", "quantity", "price", "amount", "trade_time")
        assert [tuple(t[f] for f in tf) for t in items(other, "trade", sort="id")] == \
               [tuple(t[f] for f in tf) for t in items(loom, "trade", sort="id")]
    finally:
        _drop(other, settings)


def test_identity_numbers_are_valid_and_consistent(crm_demo):
    loom, _ = crm_demo
    check = compile_script((BUNDLE / "scripts" / "id_check.py").read_text("utf-8"), "id_check")
    people = [c for c in items(loom, "customer") if c["id_type"] == "id_card"]
    assert len(people) > 200
    for c in people:
        out = check.execute({"number": c["id_number"], "birthday": c["birthday"], "gender": c["gender"],
                             "today": AS_OF})["result"]
        assert out["valid"], (c["customer_no"], c["id_number"], out["problems"])
    assert all(c["mobile"][:1] == "1" and len(c["mobile"]) == 11 for c in people)


def test_assessments_are_scored_and_snapshotted(crm_demo):
    loom, _ = crm_demo
    customers = {c["id"]: c for c in items(loom, "customer")}
    assessments = items(loom, "assessment")
    assert len(assessments) == len(customers)
    levels = {a["risk_level"] for a in assessments}
    assert len(levels) >= 4
    for a in assessments:
        assert len(a["answers"]) == 10 and sum(x["score"] for x in a["answers"]) == a["score"]
        c = customers[a["customer"]]
        assert (c["risk_level"], c["lowest_category"], c["assessment_expiry"]) == \
               (a["risk_level"], a["lowest_category"], a["expires_on"])
    # some assessments have expired by the as-of date (they block purchases above R1)
    assert any(a["expires_on"] < AS_OF.isoformat() for a in assessments)


def test_episodes_are_labelled_and_point_at_real_rows(crm_demo, tmp_path_factory):
    loom, summary = crm_demo
    eps = summary["episodes"]
    assert {e["typology"] for e in eps} >= {"S1", "S2", "S3", "S4", "S6", "S8", "WASH", "MARKING_CLOSE", "CHURNING"}
    on_disk = json.loads(open(summary["episodes_file"], encoding="utf-8").read())
    assert on_disk["episodes"] == eps and on_disk["seed"] == SEED
    trade_nos = {t["trade_no"]: t for t in items(loom, "trade")}
    transfer_nos = {t["transfer_no"]: t for t in items(loom, "transfer")}
    for e in eps:
        assert all(n in trade_nos for n in e["trades"]) and all(n in transfer_nos for n in e["transfers"])
        assert e["trades"] or e["transfers"]
    s1 = next(e for e in eps if e["typology"] == "S1")
    amounts = [float(transfer_nos[n]["amount"]) for n in s1["transfers"]]
    assert len(amounts) >= 3 and all(45_000 <= a < 50_000 for a in amounts)
    assert all(transfer_nos[n]["kind"] == "cash" for n in s1["transfers"])
    wash = next(e for e in eps if e["typology"] == "WASH")
    group = [c for c in items(loom, "customer") if c["customer_no"] in wash["customers"]]
    assert len({c["mobile"] for c in group}) == 1 and len(group) == 3
    late = next(e for e in eps if e["typology"] == "MARKING_CLOSE")
    buys = [trade_nos[n] for n in late["trades"] if trade_nos[n]["side"] == "buy"]
    cst = timezone(timedelta(hours=8))
    assert buys and all(datetime.fromisoformat(b["trade_time"]).astimezone(cst).strftime("%H:%M") >= "14:50" for b in buys)


def test_if_empty_does_nothing_on_a_filled_database(crm_demo):
    from engine.runtime.cli_demo import load_generator
    loom, _ = crm_demo
    gen = load_generator("securities_crm")
    assert gen.has_data(loom) is True
    with pytest.raises(RuntimeError, match="fresh database"):
        gen.run(loom, seed=1, size="small", as_of=AS_OF, echo=lambda m: None)


def test_demo_logins_have_roles_and_org_units(crm_demo):
    from engine.security.users import check_password, org_units, user_roles, users
    loom, summary = crm_demo
    names = {u for u, _, _ in summary["logins"]}
    assert {"advisor1", "manager1", "compliance1", "operations1", "hq1"} <= names
    with loom.db.connect() as conn:
        row = conn.execute(sa.select(users).where(users.c.username == "advisor1")).mappings().one()
        assert check_password(row["password_hash"], "demo1234")
        roles = {r[0] for r in conn.execute(sa.select(user_roles.c.role).where(user_roles.c.user_id == row["id"]))}
        kind = conn.execute(sa.select(org_units.c.kind).where(org_units.c.id == row["org_unit_id"])).scalar()
    assert roles == {"securities_crm.advisor"} and kind == "team"


def _actor(loom, username):
    from engine.security.identity import load_actor
    from engine.security.users import users
    with loom.db.connect() as conn:
        uid = conn.execute(sa.select(users.c.id).where(users.c.username == username)).scalar()
        return load_actor(conn, uid, expand=lambda r: r)


def test_advisor_sees_only_own_customers_with_masked_ids(crm_demo):
    pytest.importorskip("engine.security.scopes", reason="engine/security has no RolePolicy yet")
    loom, _ = crm_demo
    advisor = _actor(loom, "advisor1")
    every = items(loom, "customer")
    mine = [c for c in every if c["advisor_user"] == advisor.user_id]
    seen = items(loom, "customer", advisor)
    assert mine and len(seen) == len(mine) < len(every)
    assert {c["id"] for c in seen} == {c["id"] for c in mine}
    full = {c["id"]: c["id_number"] for c in mine}
    for c in seen:
        assert c["id_number"] != full[c["id"]] and "*" in c["id_number"]
    # records hanging off customers follow the customer's scope
    trades = items(loom, "trade", advisor)
    assert trades and {t["customer"] for t in trades} <= set(full)
    # the branch manager sees the whole branch, compliance sees everything
    manager = _actor(loom, "manager1")
    branch_customers = items(loom, "customer", manager)
    assert set(full) <= {c["id"] for c in branch_customers}
    assert len(mine) < len(branch_customers) < len(every)
    assert len(items(loom, "customer", _actor(loom, "compliance1"))) == len(every)


def test_suitability_history_follows_the_rules(crm_demo):
    """Demo purchase requests are matched by the bundle's script: refusals are never signed away,
    lowest-category and expired customers are refused above R1, warnings carry reasons."""
    loom, _ = crm_demo
    customers = {c["id"]: c for c in items(loom, "customer")}
    records = items(loom, "suitability")
    assert {r["result"] for r in records} >= {"match", "warn"}
    for r in records:
        c = customers[r["customer"]]
        assert r["reasons"] and all(x["message"]["zh-CN"] and x["message"]["en"] for x in r["reasons"])
        assert not (r["result"] == "refuse" and r["warning_signed"])
        assert r["warning_required"] == (r["result"] == "warn")
        ordinary = c["investor_class"] == "ordinary"
        expired = c["assessment_expiry"] < r["matched_at"][:10]
        if ordinary and (c["lowest_category"] or expired):
            assert r["result"] == "refuse", (c["customer_no"], r)


def test_customer_aum_is_filled(crm_demo):
    loom, _ = crm_demo
    aums = [float(c["aum"]) for c in items(loom, "customer")]
    assert all(a >= 0 for a in aums) and sum(a > 0 for a in aums) > len(aums) * 0.8
