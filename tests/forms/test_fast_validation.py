"""The generated fast validator and the marshmallow schema (the reference) agree.

For many generated good and bad records: whenever the fast path accepts a record, marshmallow
accepts it too with exactly the same typed values; and ``RecordValidator.load`` (fast path with
fallback) fails on the same fields with the same codes as the marshmallow path.
"""
from __future__ import annotations

import random
from datetime import date, datetime
from decimal import Decimal

import pytest

from engine.errors import InvalidInput
from engine.forms import build_model

OPTIONS = [{"value": "C1", "label": {"zh-CN": "保守型", "en": "Low"}}, {"value": "C2", "label": "中"}, "C3"]
SPEC = {
    "key": "probe", "label": "probe",
    "fields": [
        {"key": "name", "type": "text", "required": True, "max_length": 8, "min_length": 2},
        {"key": "code", "type": "text", "pattern": "^[A-Z]{2}\\d+$"},
        {"key": "plain", "type": "text"},
        {"key": "notes", "type": "long_text"},
        {"key": "qty", "type": "integer", "min": -5, "max": 1000},
        {"key": "amount", "type": "decimal", "precision": 8, "scale": 2, "min": 0},
        {"key": "rate", "type": "decimal", "scale": 4},
        {"key": "flag", "type": "boolean"},
        {"key": "day", "type": "date", "min": "2000-01-01"},
        {"key": "at", "type": "datetime"},
        {"key": "risk", "type": "select", "required": True, "options": OPTIONS},
        {"key": "tags", "type": "multi_select", "options": ["vip", "new", "dormant"]},
        {"key": "email", "type": "email"},
        {"key": "mobile", "type": "phone"},
        {"key": "extra", "type": "json"},
        {"key": "rows", "type": "table", "fields": [
            {"key": "number", "type": "text", "required": True, "max_length": 5},
            {"key": "n", "type": "integer"},
            {"key": "sub", "type": "table", "fields": [{"key": "s", "type": "decimal", "scale": 1}]},
        ]},
    ],
}

ODD = [None, True, False, 0, 1, 2, -1, 1.0, 1.5, float("nan"), "", " ", "x", b"abc", [], {}, ["a"], {"a": 1},
       Decimal("1.5"), Decimal("NaN"), date(2020, 1, 1), datetime(2020, 1, 1, 8, 0), ("vip",)]
GOOD = {
    "name": ["张三", "ab", "abcdefgh", " 李四 "],
    "code": ["AB1", "ZZ99999"],
    "plain": ["x" * 255, "hello", "中文"],
    "notes": ["long " * 100, ""],
    "qty": [0, -5, 1000, "12", " 1,000 ", 7],
    "amount": ["0", "12.345", "1,234.5", 0, 5, Decimal("3.14159"), "999999.99", "999999.995", "1e3"],
    "rate": ["0.00005", "-3", 2],
    "flag": [True, False, "是", "否", "yes", "0", 1, 0, " TRUE "],
    "day": ["2020-02-29", "2000-01-01", "2021-03-04T10:00:00", date(2022, 1, 1)],
    "at": ["2024-01-01T10:00:00", "2024-01-01T10:00:00Z", "2024-01-01 10:00:00+08:00", "2024-01-01"],
    "risk": ["C1", "C2", " C3 ", "C3"],
    "tags": [["vip"], ["vip", "new", "vip"], "vip,new", "vip；dormant", []],
    "email": ["a@b.cn", " x.y@z.com "],
    "mobile": ["13800138000", " 19912345678 "],
    "extra": [{"a": [1, 2]}, [1], "s", 3],
    "rows": [[], [{"number": "A1"}], [{"number": "A1", "n": "3", "sub": [{"s": "1.25"}]}, {"number": "B", "id": 4}]],
}
BAD = {
    "name": ["a", "x" * 9, 123],
    "code": ["ab1", "AB"],
    "plain": ["x" * 256],
    "qty": [1001, -6, "1.5", "abc", 2.5],
    "amount": ["-1", "1000000", "abc", "Infinity"],
    "day": ["1999-12-31", "2020-13-01", "20200101"],
    "at": ["yesterday", "2024-13-01T00:00:00"],
    "risk": ["C9", "c1"],
    "tags": [["gold"], "vip,gold", 5],
    "email": ["nope", "a@b"],
    "mobile": ["12345678901", "1380013800"],
    "rows": [[{"n": 1}], [{"number": "toolong"}], [{"number": "A", "zz": 1}], ["x"], {"number": "A"}],
}


@pytest.fixture(scope="module")
def validator():
    model = build_model({"t": "t"}, [("t", SPEC, 1)], [], revision=1)
    return model.entity("t.probe").validator


def _canon(v):
    """Values compared with their types (Decimal('1.0') and Decimal('1.00') differ here)."""
    if isinstance(v, dict):
        return {k: _canon(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_canon(x) for x in v]
    return (type(v).__name__, str(v), getattr(v, "tzinfo", None) and str(v.utcoffset()))


def _outcome(fn, data):
    try:
        return "ok", _canon(fn(data))
    except InvalidInput as exc:
        return "bad", sorted({(p.field, p.code) for p in exc.problems})


def _record(rng: random.Random) -> dict:
    data = {}
    all_good = rng.random() < 0.5
    for f in SPEC["fields"]:
        roll = rng.random()
        if roll < 0.2:
            continue
        key = f["key"]
        if all_good or roll < 0.8 or key not in BAD:
            pool = GOOD[key]
        elif roll < 0.92:
            pool = BAD[key]
        else:
            pool = ODD
        data[key] = rng.choice(pool)
    if not all_good and rng.random() < 0.1:
        data["unknown_field"] = 1
    return data


def test_fast_path_agrees_with_marshmallow(validator):
    rng = random.Random(20240501)
    fast_accepted = fell_back = 0
    for _ in range(6000):
        data = _record(rng)
        try:
            fast = validator.fast(dict(data))
        except Exception:  # noqa: BLE001 -- fell back: fine, the reference decides
            fell_back += 1
        else:
            fast_accepted += 1
            ref = validator.load_reference(dict(data))
            assert _canon(fast) == _canon(ref), data
        # the public road (fast path + fallback) and the reference fail on the same fields
        assert _outcome(validator.load, dict(data)) == _outcome(validator.load_reference, dict(data)), data
    # both kinds of input were really exercised
    assert fast_accepted > 500 and fell_back > 500


def test_bad_record_reports_every_failing_field_in_both_languages(validator):
    data = {"name": "a", "qty": "x", "risk": "C9", "rows": [{"n": 1}]}
    for locale, word in (("zh-CN", "至少"), ("en", "at least")):
        with pytest.raises(InvalidInput) as exc:
            validator.load(data, locale=locale)
        fields = {p.field for p in exc.value.problems}
        assert fields == {"name", "qty", "risk"} or fields >= {"name", "qty", "risk"}
        assert any(word in p.message for p in exc.value.problems if p.field == "name")


def test_generated_source_embeds_no_definition_values(validator):
    src = validator.fast.source
    assert "保守" not in src and "vip" not in src and "^[A-Z]" not in src and "'name'" in src
