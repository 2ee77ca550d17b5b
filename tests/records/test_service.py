"""The record service: validation, nested child tables, optimistic locking, audit, events."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from engine.audit import audit_log, verify
from engine.errors import Conflict, InvalidInput, NotFound
from engine.records import ImportRejected, ListRequest
from engine.security import Actor

ZH = Actor(user_id=7, username="analyst", locale="zh-CN", is_system=True)
EN = Actor(user_id=7, username="analyst", locale="en", is_system=True)


def customer(**extra):
    return {"name": "王五", "risk_level": "C2", **extra}


def test_create_with_nested_child_rows_round_trips(mini):
    rec = mini.records.create("mini.customer", customer(accounts=[
        {"number": "A1", "balance": "10.5", "positions": [{"symbol": "600000", "qty": "100"}, {"symbol": "000001", "qty": 5}]},
        {"number": "A2"}]), ZH)
    got = mini.records.get("mini.customer", rec["id"], ZH)
    assert got["version"] == 1 and got["created_by"] == 7
    assert [a["number"] for a in got["accounts"]] == ["A1", "A2"]
    assert got["accounts"][0]["balance"] == "10.50"                      # exact decimal, as text
    assert [(p["symbol"], p["qty"]) for p in got["accounts"][0]["positions"]] == [("600000", 100), ("000001", 5)]


def test_child_rows_are_replaced_in_order_on_update(mini):
    rec = mini.records.create("mini.customer", customer(accounts=[{"number": "A1"}, {"number": "A2"}]), ZH)
    mini.records.update("mini.customer", rec["id"], {"accounts": [{"number": "B2"}, {"number": "B1"}]}, ZH,
                        expected_version=1)
    got = mini.records.get("mini.customer", rec["id"], ZH)
    assert [a["number"] for a in got["accounts"]] == ["B2", "B1"]
    with mini.db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM mini_customer__accounts WHERE parent_id = :i"),
                            {"i": rec["id"]}).scalar() == 2


@pytest.mark.parametrize("actor,expected", [
    (ZH, {"name": "最多 50 个字符", "mobile": "不是有效的手机号码（11位，1开头）",
          "risk_level": "“C6”不是可选值（C1, C2, C3, C4, C5）", "aum": "不能小于 0",
          "accounts[0].number": "必填"}),
    (EN, {"name": "must have at most 50 characters", "mobile": "is not a valid mainland mobile number",
          "risk_level": "option `C6` is not one of C1, C2, C3, C4, C5", "aum": "must be at least 0",
          "accounts[0].number": "is required"}),
])
def test_validation_reports_every_field_in_the_users_language(mini, actor, expected):
    with pytest.raises(InvalidInput) as exc:
        mini.records.create("mini.customer", {"name": "x" * 51, "mobile": "12345", "risk_level": "C6",
                                              "aum": "-1", "accounts": [{"balance": "1"}]}, actor)
    got = {p.field: p.message for p in exc.value.problems}
    assert got == expected


def test_required_unknown_and_wrong_types(mini):
    with pytest.raises(InvalidInput) as exc:
        mini.records.create("mini.customer", {"nmae": "x", "birthday": "31/12/2000", "aum": "abc"}, EN)
    got = {p.field: p.code for p in exc.value.problems}
    assert got["nmae"] == "unknown" and got["birthday"] == "invalid_date" and got["aum"] == "invalid_decimal"
    with pytest.raises(InvalidInput) as exc:
        mini.records.create("mini.customer", {"mobile": "13800000000"}, EN)
    assert {p.field for p in exc.value.problems} == {"name", "risk_level"}


def test_unique_and_links_are_checked(mini):
    with pytest.raises(InvalidInput) as exc:
        mini.records.create("mini.branch", {"code": "BJ01", "name": "重复"}, EN)
    assert exc.value.problems[0].field == "code" and "already used" in exc.value.problems[0].message
    with pytest.raises(InvalidInput) as exc:
        mini.records.create("mini.customer", customer(branch=999), EN)
    assert exc.value.problems[0].field == "branch" and "999" in exc.value.problems[0].message


def test_stale_update_is_refused_with_the_current_version(mini):
    rec = mini.records.create("mini.customer", customer(), ZH)
    mini.records.update("mini.customer", rec["id"], {"aum": "1"}, ZH, expected_version=1)
    with pytest.raises(Conflict) as exc:
        mini.records.update("mini.customer", rec["id"], {"aum": "2"}, ZH, expected_version=1)
    assert exc.value.extra["current_version"] == 2 and exc.value.status == 409
    assert mini.records.get("mini.customer", rec["id"], ZH)["aum"] == "1.00"


def test_delete_checks_version_and_leaves_an_audit_trail(mini):
    rec = mini.records.create("mini.customer", customer(), ZH)
    with pytest.raises(Conflict):
        mini.records.delete("mini.customer", rec["id"], ZH, expected_version=5)
    mini.records.delete("mini.customer", rec["id"], ZH, expected_version=1)
    with pytest.raises(NotFound):
        mini.records.get("mini.customer", rec["id"], ZH)
    with mini.db.connect() as conn:
        trail = conn.execute(sa.select(audit_log.c.action, audit_log.c.before, audit_log.c.after)
                             .where(audit_log.c.record_id == str(rec["id"]), audit_log.c.entity == "mini.customer")
                             .order_by(audit_log.c.id)).all()
        assert [t.action for t in trail] == ["create", "delete"]
        assert trail[1].before["name"] == "王五"
        assert verify(conn).ok


def test_update_audit_keeps_before_and_after_of_changed_fields_only(mini):
    rec = mini.records.create("mini.customer", customer(), ZH)
    mini.records.update("mini.customer", rec["id"], {"aum": "5", "risk_level": "C3"}, ZH)
    with mini.db.connect() as conn:
        row = conn.execute(sa.select(audit_log).where(audit_log.c.action == "update")).mappings().one()
    assert row["before"] == {"aum": None, "risk_level": "C2"}
    assert row["after"] == {"aum": "5.00", "risk_level": "C3"}


def test_events_fire_after_commit_and_not_for_rolled_back_work(mini):
    seen = []
    mini.bus.subscribe("record.*", lambda e: seen.append((e.name, e.payload["id"])))
    rec = mini.records.create("mini.customer", customer(), ZH)
    assert seen == [("record.created", rec["id"])]
    seen.clear()
    with pytest.raises(RuntimeError):
        with mini.records.unit() as uow:
            mini.records.create("mini.customer", customer(name="回滚"), ZH, uow=uow)
            raise RuntimeError("boom")
    assert seen == []
    items = mini.query.list(mini.model.entity("mini", "customer"), ZH, ListRequest(search="回滚"))
    assert items["total"] == 0


def test_import_all_or_nothing_reports_lines_and_fields(mini):
    ent = mini.model.entity("mini", "customer")
    rows = [(2, customer(name="甲")), (3, customer(name="乙", mobile="1")), (4, customer(name="丙", risk_level="X"))]
    with pytest.raises(ImportRejected) as exc:
        mini.records.import_rows(ent, rows, EN)
    assert [(p.line, p.field) for p in exc.value.problems] == [(3, "mobile"), (4, "risk_level")]
    assert mini.query.list(ent, EN, ListRequest(search="甲"))["total"] == 0


def test_import_good_rows_only_writes_whole_good_rows(mini):
    ent = mini.model.entity("mini", "customer")
    rows = [(2, customer(name="甲")), (3, customer(name="乙", mobile="1")), (4, customer(name="丙"))]
    result = mini.records.import_rows(ent, rows, EN, good_rows_only=True, batch_size=2)
    assert (result.inserted, result.rejected) == (2, 1)
    assert [(p.line, p.field) for p in result.problems] == [(3, "mobile")]
    names = {i["name"] for i in mini.query.list(ent, EN, ListRequest(page_size=100))["items"]}
    assert {"甲", "丙"} <= names and "乙" not in names


def test_import_catches_duplicates_within_the_file(mini):
    ent = mini.model.entity("mini", "branch")
    with pytest.raises(ImportRejected) as exc:
        mini.records.import_rows(ent, [(2, {"code": "GZ01", "name": "广州"}), (3, {"code": "GZ01", "name": "广州2"}),
                                       (4, {"code": "SH01", "name": "上海重复"})], EN)
    assert [(p.line, p.field, p.code) for p in exc.value.problems] == [(3, "code", "unique"), (4, "code", "unique")]


def test_child_row_sent_without_a_field_keeps_its_stored_value(mini):
    rec = mini.records.create("mini.customer", customer(accounts=[{"number": "A1", "balance": "99.00"}]), ZH)
    row_id = rec["accounts"][0]["id"]
    mini.records.update("mini.customer", rec["id"], {"accounts": [{"id": row_id, "number": "A1-new"}, {"number": "A2"}]},
                        ZH, expected_version=1)
    got = mini.records.get("mini.customer", rec["id"], ZH)
    assert [(a["number"], a["balance"]) for a in got["accounts"]] == [("A1-new", "99.00"), ("A2", None)]


def test_integers_beyond_64_bits_are_a_field_error_not_a_crash(mini):
    with pytest.raises(InvalidInput) as exc:
        mini.records.create("mini.customer", customer(accounts=[{"number": "A", "positions": [
            {"symbol": "X", "qty": 2 ** 70}]}]), EN)
    assert [(p.field, p.code) for p in exc.value.problems] == [("accounts[0].positions[0].qty", "max")]
    with pytest.raises(InvalidInput) as exc:
        mini.records.create("mini.customer", customer(branch=str(2 ** 64)), EN)
    assert exc.value.problems[0].field == "branch"


def test_before_save_hooks_run_on_single_writes_and_on_imports(mini):
    from engine.errors import Problem as P

    def no_vip_without_email(entity, record, actor, conn, record_id, problems):
        if entity.key == "customer" and "vip" in (record.get("tags") or []) and not record.get("email"):
            problems.append(P("VIP customers need an email", field="email", code="hook"))

    mini.records.before_save_hooks.append(no_vip_without_email)
    with pytest.raises(InvalidInput) as exc:
        mini.records.create("mini.customer", customer(tags=["vip"]), EN)
    assert exc.value.problems[0].field == "email"
    ent = mini.model.entity("mini", "customer")
    with pytest.raises(ImportRejected) as exc:
        mini.records.import_rows(ent, [(2, customer(name="甲")), (3, customer(name="乙", tags=["vip"]))], EN)
    assert [(p.line, p.field) for p in exc.value.problems] == [(3, "email")]
