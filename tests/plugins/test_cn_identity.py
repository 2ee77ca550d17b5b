"""The shipped cn_identity plugin: real-format numbers, from expressions, rules, computed fields
and a workflow service action."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from engine.errors import InvalidInput
from engine.sandbox import compile_expression
from tests.plugins.helpers import ADMIN, PLUGINS, customer_bundle, id_number, install, uscc

VALID_IDS = [
    id_number("110105", "19491231", "002"),      # Beijing Chaoyang, female
    id_number("440305", "19880229", "123"),      # Shenzhen, leap day, male
    id_number("510104", "20000101", "456"),
    "11010519491231002X",                        # the standard's own example
]


@pytest.fixture
def identity(mini):
    install(mini, PLUGINS / "cn_identity")
    return mini


def ev(loom, expression, **variables):
    return compile_expression(expression, "test").evaluate(variables, api=loom.sandbox_api(ADMIN))


def test_valid_identity_numbers_pass_and_give_birth_date_and_sex(identity):
    for n in VALID_IDS:
        assert ev(identity, "cn_identity.check_id(n)", n=n), n
    assert ev(identity, "cn_identity.birth_date(n)", n=VALID_IDS[1]) == date(1988, 2, 29)
    assert ev(identity, "cn_identity.sex(n)", n=VALID_IDS[0]) == "F"
    assert ev(identity, "cn_identity.sex(n)", n=VALID_IDS[1]) == "M"
    assert ev(identity, "cn_identity.check_id(n)", n=VALID_IDS[3].lower())      # a lower-case x is fine


def test_bad_identity_numbers_are_refused_with_the_reason(identity):
    good = VALID_IDS[0]
    wrong_check = good[:17] + ("0" if good[17] != "0" else "1")
    future = id_number("110105", (date.today() + timedelta(days=2)).strftime("%Y%m%d"), "001")
    cases = {
        wrong_check: "check character",
        id_number("990105", "19800101", "001"): "region code",        # no province 99
        id_number("110105", "19810229", "001"): "birth date",         # 1981 is not a leap year
        id_number("110105", "19801301", "001"): "birth date",
        future: "future",
        id_number("110105", "18500101", "001"): "birth date",         # before min_birth_year
        "11010519491231002": "17 digits",
        "1101051949123100AX": "17 digits",
        "": "17 digits",
    }
    for number, reason in cases.items():
        assert not ev(identity, "cn_identity.check_id(n)", n=number), number
        problems = ev(identity, "cn_identity.id_problems(n)", n=number)
        assert any(reason in p["en"] for p in problems), (number, problems)
        assert all(p["zh-CN"] for p in problems)
        assert ev(identity, "cn_identity.birth_date(n)", n=number) is None


def test_unified_social_credit_code_and_mobile(identity):
    assert ev(identity, "cn_identity.check_uscc(c)", c="91350100M000100Y43")      # a published real example
    for first17 in ("91110108MA01ABCD1", "12100000400000624", "Y1440300MA5DXXXX8".replace("X", "0")):
        code = uscc(first17)
        assert ev(identity, "cn_identity.check_uscc(c)", c=code), code
        bad = code[:17] + ("0" if code[17] != "0" else "1")
        assert not ev(identity, "cn_identity.check_uscc(c)", c=bad), bad
    assert not ev(identity, "cn_identity.check_uscc(c)", c="91350100M000100Y4")   # 17 characters
    with_i = "91350100M0001I0Y4"
    for last in "0123456789ABCDEFGHJKLMNPQRTUWXY":        # I is not in the alphabet: no check character fits
        assert not ev(identity, "cn_identity.check_uscc(c)", c=with_i + last)
    for good in ("13812345678", "+86 138 1234 5678", "0086-19912345678", "8615012345678"):
        assert ev(identity, "cn_identity.check_mobile(m)", m=good), good
    for bad in ("12812345678", "1381234567", "138123456789", "021-12345678", "abc"):
        assert not ev(identity, "cn_identity.check_mobile(m)", m=bad), bad
    assert ev(identity, "cn_identity.normalize_mobile(m)", m="+86 138-1234-5678") == "13812345678"


def test_used_in_a_validation_rule_and_a_computed_field(loom, bundle_copy):
    bundle = customer_bundle(bundle_copy, extra_fields=(
        "  - {key: id_birth, type: computed, result: date, label: {zh-CN: 出生日期, en: Birth date},"
        " expression: 'cn_identity.birth_date(id_number) if id_number else None'}\n"), extra=(
        "validations:\n"
        "  - expression: 'not id_number or cn_identity.check_id(id_number)'\n"
        "    message: {zh-CN: 身份证号码无效, en: invalid identity number}\n"
        "    fields: [id_number]\n"))
    install(loom, PLUGINS / "cn_identity")
    loom.install(bundle)
    rec = loom.records.create("mini.customer", {"name": "张三", "risk_level": "C3", "id_number": VALID_IDS[1]}, ADMIN)
    assert rec["id_birth"] == "1988-02-29"
    with pytest.raises(InvalidInput) as err:
        loom.records.create("mini.customer", {"name": "李四", "risk_level": "C3",
                                              "id_number": VALID_IDS[1][:17] + "X"}, ADMIN)
    assert [(p.field, p.message) for p in err.value.problems] == [("id_number", "身份证号码无效")]


def test_verify_service_action(identity):
    from engine.workflow.actions import ACTIONS

    class Ctx:
        loom, instance_id, app, bpmn_id, key, actor = identity, 1, "mini", "verify", "k1", ADMIN
    out = ACTIONS["cn_identity.verify"](Ctx(), id_number=VALID_IDS[0])
    assert out == {"valid": True, "birth_date": "1949-12-31", "sex": "F", "problems": []}
    assert ACTIONS["cn_identity.verify"](Ctx(), id_number="123")["valid"] is False
