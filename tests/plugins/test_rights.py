"""A script never has more rights than the actor behind it, nor more than its plugin declared."""
from __future__ import annotations

import pytest

from engine.errors import NotFound
from engine.sandbox import SandboxError, compile_expression
from tests.conftest import BUNDLES
from tests.plugins.helpers import ADMIN, make_plugin
from tests.security.world import build_world

PEEK = '''
def name_of(customer_id):
    return records.get("secure.customer", customer_id)["name"]


def rename(customer_id, name):
    return records.update("secure.customer", customer_id, {"name": name})["name"]


def card_of(account_id):
    return records.get("secure.account", account_id)["bank_card"]


def visible(job):
    return [c["name"] for c in records.find("secure.customer")]
'''


@pytest.fixture
def world(loom, tmp_path):
    w = build_world(loom, BUNDLES)
    folder = make_plugin(tmp_path, "peek", {"peek.py": PEEK},
                         hooks=[{"point": "function", "script": "peek.py", "function": f}
                                for f in ("name_of", "rename", "card_of")],
                         permissions={"entities": [{"entity": "secure.customer", "actions": ["read"]}]})
    loom.extensions["plugins"].install(folder, ADMIN, enable=True)
    return w


def ev(loom, actor, expression, **v):
    return compile_expression(expression, "t").evaluate(v, api=loom.sandbox_api(actor))


def test_a_plugin_function_reads_only_what_the_calling_advisor_may_read(world):
    loom = world.loom
    adv1, adv2 = world.actor("adv1"), world.actor("adv2")
    assert ev(loom, adv1, "peek.name_of(i)", i=world.customers["c1"]) == "Customer c1"
    assert ev(loom, adv2, "peek.name_of(i)", i=world.customers["c2"]) == "Customer c2"
    with pytest.raises(SandboxError) as err:
        ev(loom, adv2, "peek.name_of(i)", i=world.customers["c1"])        # adv1's customer
    assert "records.get" in err.value.message
    assert "Customer c1" not in err.value.message


def test_a_script_run_as_an_advisor_cannot_reach_another_advisors_customer(world):
    ext = world.loom.extensions["plugins"]
    out, _ = ext.run_script("mine = [c['name'] for c in records.find('secure.customer')]", world.actor("adv2"))
    assert out["mine"] == ["Customer c2"]
    with pytest.raises(SandboxError) as err:
        ext.run_script(f"c = records.get('secure.customer', {world.customers['c3']})", world.actor("adv2"))
    assert isinstance(err.value.original, NotFound)
    # masked fields stay masked for the script too
    out, _ = ext.run_script(f"n = records.get('secure.customer', {world.customers['c2']})['id_number']",
                            world.actor("adv2"))
    assert out["n"] != "310101198512125678"


def test_the_plugin_declaration_caps_even_an_administrator(world):
    with pytest.raises(SandboxError, match="did not declare `update`"):
        ev(world.loom, ADMIN, "peek.rename(i, 'X')", i=world.customers["c1"])
    with pytest.raises(SandboxError, match="did not declare `read` on `secure.account`"):
        ev(world.loom, ADMIN, "peek.card_of(i)", i=world.accounts["c1"])
    assert world.loom.records.get("secure.customer", world.customers["c1"], ADMIN)["name"] == "Customer c1"


def test_a_script_cannot_swap_its_actor_or_reach_into_the_api(world):
    ext = world.loom.extensions["plugins"]
    adv2 = world.actor("adv2")
    for src in ("x = records.get('secure.customer', 1, actor=None)",
                "x = records._fn", "x = getattr(records.get, '__closure__')", "records.get = None"):
        with pytest.raises(Exception):
            ext.run_script(src, adv2)
