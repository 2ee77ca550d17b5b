"""The engine as scripts see it: `records` through the one read and write road, per actor."""
from __future__ import annotations

import pytest

from engine.sandbox import SandboxRuntimeError, api_namespace, compile_script
from engine.sandbox.api import PreparedApi
from engine.security import Actor


def test_scripts_read_and_write_records_through_the_record_service(mini):
    actor = Actor.system("rules")
    api = mini.sandbox_api(actor)
    assert isinstance(api, PreparedApi) and mini.sandbox_api(actor) is api       # cached per actor
    code = compile_script(
        "found = records.find('mini.customer', {'risk_level': 'C3'})\n"
        "name = records.get('mini.customer', found[0]['id'])['name']\n"
        "new = records.create('mini.customer', {'name': '王五', 'risk_level': 'C2'})\n"
        "changed = records.update('mini.customer', new['id'], {'risk_level': 'C4'}, new['version'])",
        "plugin.sync")
    out = code.execute({}, api=api)
    assert [c["name"] for c in out["found"]] == ["张三"] and out["name"] == "张三"
    assert out["changed"]["risk_level"] == "C4" and out["changed"]["version"] == 2
    assert mini.records.get("mini.customer", out["new"]["id"], actor)["risk_level"] == "C4"


def test_engine_errors_surface_with_the_engine_status(mini):
    api = mini.sandbox_api(Actor.system("rules"))
    code = compile_script("records.update('mini.customer', 1, {'risk_level': 'C9'})", "plugin.bad")
    with pytest.raises(SandboxRuntimeError) as info:
        code.execute({}, api=api)
    assert info.value.message.startswith("plugin.bad, line 1: ApiError: records.update:")
    assert info.value.status == 422


def test_other_packages_add_their_functions(mini):
    sent = []
    mini.extensions["sandbox"].add_api(lambda loom, actor: {
        "notify": api_namespace("notify", send=lambda to, text: sent.append((actor.username, to, text)))})
    api = mini.sandbox_api(Actor.system("rules"))
    compile_script("notify.send('rm', 'hello')", "plugin.n").execute({}, api=api)
    assert sent == [("rules", "rm", "hello")]
