"""Engine functions given to scripts: callable, opaque, and keeping engine objects on their side."""
from __future__ import annotations

import types
from decimal import Decimal

import pytest

from engine.errors import Forbidden
from engine.sandbox import (ApiError, SandboxRuntimeError, api_function, api_namespace, compile_expression,
                            compile_script)
from engine.sandbox.api import PreparedApi, prepare_api


class FakeService:
    """Stands in for RecordService: holds a connection the script must never see."""

    def __init__(self):
        self.connection = object()
        self.rows = {1: {"id": 1, "name": "张三", "aum": Decimal("100.00")}}
        self.writes = []

    def get(self, record_id):
        if record_id not in self.rows:
            raise LookupError(f"record {record_id} not found")
        return dict(self.rows[record_id])

    def update(self, record_id, data):
        if "aum" in data:
            raise Forbidden("you may not change aum")
        self.writes.append((record_id, data))
        return {"id": record_id, **data}

    def leak(self):
        return self.connection

    def crash(self):
        raise RuntimeError("connection to postgres://user:pw@db failed")


def api_for(svc):
    return {"records": api_namespace("records", get=svc.get, update=svc.update, leak=svc.leak, crash=svc.crash),
            "notify": svc.writes.append, "user": {"name": "analyst", "roles": ["rm"]}}


def test_scripts_call_api_functions_and_read_api_values():
    svc = FakeService()
    code = compile_script("c = records.get(1)\nrecords.update(1, {'name': c['name'] + '!'})\n"
                          "notify({'to': user['name']})\nwho = user['roles'][0]", "plugin.s")
    out = code.execute({}, api=api_for(svc))
    assert out["c"]["name"] == "张三" and out["who"] == "rm"
    assert svc.writes == [(1, {"name": "张三!"}), {"to": "analyst"}]
    assert "records" not in out and "notify" not in out and "user" not in out


def test_engine_errors_reach_the_script_as_messages_only():
    svc = FakeService()
    code = compile_script("try:\n    records.update(1, {'aum': 1})\nexcept ApiError as e:\n    why = e.args[0]", "s")
    assert code.execute({}, api=api_for(svc))["why"] == "records.update: you may not change aum"
    code = compile_script("try:\n    records.crash()\nexcept Exception as e:\n    why = str(e)", "s")
    assert code.execute({}, api=api_for(svc))["why"] == "records.crash failed (RuntimeError)"


def test_an_uncaught_engine_error_keeps_the_original_for_the_caller():
    svc = FakeService()
    code = compile_script("x = 1\nrecords.update(1, {'aum': 0})", "plugin.s")
    with pytest.raises(SandboxRuntimeError) as info:
        code.execute({}, api=api_for(svc))
    err = info.value
    assert err.message == "plugin.s, line 2: ApiError: records.update: you may not change aum"
    assert isinstance(err.original, Forbidden) and err.status == 403


def test_engine_objects_cannot_cross_into_the_script():
    svc = FakeService()
    with pytest.raises(SandboxRuntimeError) as info:
        compile_expression("records.leak()", "e").evaluate({}, api=api_for(svc))
    assert "result of records.leak() is a object: API calls take and return plain data" in info.value.message


def test_script_objects_cannot_cross_into_the_engine():
    svc = FakeService()
    with pytest.raises(SandboxRuntimeError) as info:
        compile_expression("records.update(1, {'name': lambda: 1})", "e").evaluate({}, api=api_for(svc))
    assert "argument of records.update() is a function" in info.value.message
    assert svc.writes == []


def test_api_namespace_is_opaque_and_read_only():
    ns = api_namespace("records", get=lambda i: i)
    with pytest.raises(TypeError, match="scripts cannot change records"):
        ns.get = None
    with pytest.raises(AttributeError, match="records has no member `put`; it offers: get"):
        ns.put  # noqa: B018
    fn = ns.get
    assert not any(not n.startswith("_") for n in dir(type(fn)) if not n.startswith("__"))
    with pytest.raises(TypeError):
        fn.x = 1


def test_api_entries_must_be_functions_or_data():
    with pytest.raises(TypeError, match="is a module"):
        prepare_api({"os": types})
    with pytest.raises(TypeError, match="is a class"):
        prepare_api({"Forbidden": Forbidden})
    with pytest.raises(TypeError, match="public identifiers"):
        prepare_api({"_secret": 1})
    with pytest.raises(TypeError, match="plain data"):
        prepare_api({"svc": FakeService()})


def test_prepared_api_is_reused_and_variables_shadow_api_names():
    prepared = prepare_api({"rate": Decimal("0.1"), "double": lambda x: x * 2})
    assert type(prepared) is PreparedApi and prepare_api(prepared) is prepared
    code = compile_expression("double(amount) * rate", "e")
    assert code.evaluate({"amount": Decimal(5)}, api=prepared) == Decimal("1.0")
    assert code.evaluate({"amount": Decimal(5), "rate": 2}, api=prepared) == 20
    assert compile_expression("[double(a) for a in xs]", "e").evaluate({"xs": [1, 2]}, api=prepared) == [2, 4]


def test_api_function_helper_wraps_once():
    wrapped = api_function("notify", print)
    assert api_function("notify", wrapped) is wrapped
    with pytest.raises(ApiError, match="notify"):
        api_function("notify", lambda: 1 / 0)()
