"""Each role of the `secure` bundle sees exactly its rows and fields through the engine's read and
write roads (loom.query / loom.records) -- before any HTTP is involved."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from engine.errors import Forbidden, InvalidInput, NotFound
from engine.records.query import ListRequest
from tests.security.world import CARDS, ID_NUMBERS, MOBILES, NOTES, World


def ids(loom, actor, entity, **params):
    ent = loom.model.entity(f"secure.{entity}")
    return {i["id"] for i in loom.query.list(ent, actor, ListRequest.from_params(params))["items"]}


def keys(world, table, found):
    rev = {v: k for k, v in getattr(world, table).items()}
    return {rev[i] for i in found}


@pytest.mark.parametrize("user", list(World.VISIBLE))
def test_each_role_sees_exactly_its_rows(world, user):
    loom, actor = world.loom, world.actor(user)
    expected = World.VISIBLE[user]
    assert keys(world, "customers", ids(loom, actor, "customer")) == expected
    assert keys(world, "accounts", ids(loom, actor, "account")) == expected      # linked:customer
    assert keys(world, "trades", ids(loom, actor, "trade")) == expected          # linked:account -> customer
    for c, cid in world.customers.items():
        if c in expected:
            assert loom.records.get("secure.customer", cid, actor)["id"] == cid
        else:
            with pytest.raises(NotFound):
                loom.records.get("secure.customer", cid, actor)


def test_field_rules_per_role(world):
    loom = world.loom
    adv = loom.records.get("secure.customer", world.customers["c1"], world.actor("adv1"))
    assert adv["id_number"] == "110***********1234" and adv["mobile"] == MOBILES["c1"]
    acc = loom.records.get("secure.account", world.accounts["c1"], world.actor("adv1"))
    assert acc["bank_card"] == "****" + CARDS["c1"][-4:]
    comp = loom.records.get("secure.customer", world.customers["c1"], world.actor("comp"))
    assert comp["mobile"] == "138****5678" and comp["id_number"] == ID_NUMBERS["c1"] and "notes" not in comp
    root = loom.records.get("secure.customer", world.customers["c1"], world.actor("root"))
    assert root["id_number"] == ID_NUMBERS["c1"] and root["notes"] == NOTES["c1"] and root["mobile"] == MOBILES["c1"]


def test_actions_are_enforced(world):
    loom = world.loom
    mgr, comp = world.actor("mgr1"), world.actor("comp")
    with pytest.raises(Forbidden):
        loom.records.create("secure.customer", {"name": "x"}, mgr)          # manager has no create
    with pytest.raises(Forbidden):
        loom.records.update("secure.customer", world.customers["c3"], {"name": "y"}, comp)   # read-only role
    with pytest.raises(Forbidden):
        loom.records.delete("secure.customer", world.customers["c1"], world.actor("adv1"))
    # manager may update inside the branch, not outside
    assert loom.records.update("secure.customer", world.customers["c1"], {"risk_level": "C4"}, mgr)["risk_level"] == "C4"
    with pytest.raises(NotFound):
        loom.records.update("secure.customer", world.customers["c3"], {"risk_level": "C4"}, mgr)


def test_masked_and_readonly_fields_cannot_be_written_or_probed(world):
    loom, adv = world.loom, world.actor("adv1")
    cid = world.customers["c1"]
    # even the right value is refused: an "unchanged" answer would confirm a guess
    for guess in (ID_NUMBERS["c1"], "110101199003070000"):
        with pytest.raises(Forbidden):
            loom.records.update("secure.customer", cid, {"id_number": guess}, adv)
    with pytest.raises(Forbidden):
        loom.records.update("secure.customer", cid, {"advisor": world.users["adv3"]}, adv)   # readonly
    assert loom.records.get("secure.customer", cid, world.actor("root"))["advisor"] == world.users["adv1"]


def test_writes_stay_inside_the_scope(world):
    loom, adv = world.loom, world.actor("adv1")
    mine = loom.records.create("secure.customer", {"name": "新客户", "risk_level": "C2"}, adv)
    assert mine["advisor"] == world.users["adv1"]           # owner field defaults to the creator
    # an account on somebody else's customer: that customer does not exist for this advisor
    with pytest.raises(InvalidInput) as exc:
        loom.records.create("secure.account", {"account_no": "X", "customer": world.customers["c3"]}, adv)
    assert exc.value.problems[0].field == "customer" and exc.value.problems[0].code == "link_missing"
    # an account on a visible customer is fine
    assert loom.records.create("secure.account", {"account_no": "Y", "customer": mine["id"]}, adv)["id"]
    # the manager cannot move a customer out of the branch (WITH CHECK) -- nothing is changed
    mgr = world.actor("mgr1")
    with pytest.raises(Forbidden):
        loom.records.update("secure.customer", world.customers["c1"], {"advisor": world.users["adv3"]}, mgr)
    assert loom.records.get("secure.customer", world.customers["c1"], mgr)["advisor"] == world.users["adv1"]


def test_filters_sorts_and_search_do_not_reveal_hidden_or_masked_values(world):
    loom = world.loom
    adv, comp, root = world.actor("adv1"), world.actor("comp"), world.actor("root")
    ent = loom.model.entity("secure.customer")
    with pytest.raises(Forbidden):
        loom.query.list(ent, adv, ListRequest.from_params({"id_number": ID_NUMBERS["c1"]}))
    with pytest.raises(Forbidden):
        loom.query.list(ent, comp, ListRequest.from_params({"notes__contains": "secret"}))
    with pytest.raises(Forbidden):
        loom.query.list(ent, comp, ListRequest.from_params({"sort": "notes"}))
    assert ids(loom, comp, "customer", q="secret-note-c1") == set()
    assert ids(loom, root, "customer", q="secret-note-c1") == {world.customers["c1"]}
    assert ids(loom, adv, "customer", q=ID_NUMBERS["c1"]) == set()                 # masked: not searchable
    assert ids(loom, comp, "customer", q=ID_NUMBERS["c1"]) == {world.customers["c1"]}   # exact, via blind index
    assert ids(loom, comp, "customer", id_number=ID_NUMBERS["c2"]) == {world.customers["c2"]}


def test_expansions_use_the_target_scope_and_rules(world):
    loom = world.loom
    ent = loom.model.entity("secure.trade")
    items = loom.query.list(ent, world.actor("adv1"), ListRequest.from_params({"expand": "account"}))["items"]
    cards = {i["account"]["bank_card"] for i in items}
    assert cards == {"****" + CARDS["c1"][-4:], "****" + CARDS["c2"][-4:]}


def test_scoped_select_is_the_base_of_every_other_read(world):
    loom = world.loom
    ent = loom.model.entity("secure.customer")
    with loom.db.connect() as conn:
        rows = conn.execute(loom.query.scoped_select(ent, world.actor("mgr1"), "export")).all()
    assert {r.id for r in rows} == {world.customers["c1"], world.customers["c2"]}
    with pytest.raises(Forbidden):
        loom.query.scoped_select(ent, world.actor("adv1"), "export")       # advisors may not export


def test_token_roles_narrow_the_actor(world):
    from engine.security.identity import load_actor
    with world.loom.db.connect() as conn:
        a = load_actor(conn, world.users["sysadmin"], limit_roles=[], expand=world.loom.expand_roles)
    assert not a.is_admin
    with pytest.raises(Forbidden):
        world.loom.records.get("secure.customer", world.customers["c1"], a)


def test_sensitive_values_are_ciphertext_at_rest_and_absent_from_the_audit_log(world):
    loom = world.loom
    ent = loom.model.entity("secure.customer")
    with loom.db.connect() as conn:
        raw = conn.execute(sa.select(ent.table.c.id_number, ent.table.c.id_number__bidx)
                           .where(ent.table.c.id == world.customers["c1"])).one()
        audit_text = " ".join(str(tuple(r)) for r in conn.execute(sa.text("SELECT * FROM loom_audit")))
    assert raw.id_number.startswith("v1:") and ID_NUMBERS["c1"] not in raw.id_number
    assert raw.id_number__bidx and ID_NUMBERS["c1"] not in raw.id_number__bidx
    for value in list(ID_NUMBERS.values()) + list(CARDS.values()):
        assert value not in audit_text
    import hashlib
    assert hashlib.sha256(ID_NUMBERS["c1"].encode()).hexdigest()[:16] not in audit_text   # not an unkeyed hash


def test_roles_combine_most_permissive_wins(world):
    """An advisor who is also a compliance officer: rows are the union, a field is shown plainly
    if any of the roles that can read shows it plainly."""
    from engine.security import admin
    sysadmin = world.actor("sysadmin")
    with world.loom.db.begin() as conn:
        admin.grant(conn, sysadmin, world.users["adv1"], "secure.compliance")
    actor = world.actor("adv1")
    ent = world.loom.model.entity("secure.customer")
    # seen plainly (compliance shows them), but still not writable: the only writing role (advisor)
    # may not write them -- combining roles must not turn a read-only role into write access
    assert world.loom.policy.field_rules(actor, ent) == {"advisor": "readonly", "id_number": "readonly"}
    with pytest.raises(Forbidden):
        world.loom.records.update("secure.customer", world.customers["c1"], {"id_number": "110101199001010000"}, actor)
    rec = world.loom.records.get("secure.customer", world.customers["c3"], actor)
    assert rec["id_number"] == ID_NUMBERS["c3"] and rec["mobile"] == MOBILES["c3"] and rec["notes"] == NOTES["c3"]
    assert world.loom.policy.field_rules(actor, world.loom.model.entity("secure.account")) == {"bank_card": "masked"}


def test_imports_respect_scope_and_field_rules(world, tmp_path):
    """A scoped importer cannot plant records outside the scope or set fields it may not write."""
    from engine.errors import LoomError
    loom = world.loom
    body = loom.model.entity("secure.customer")
    # give advisors the import action for this test through a designer publish of the role
    from engine.meta import store
    with loom.db.connect() as conn:
        role = store.get(conn, "secure", "role", "advisor").body
    role["permissions"][0]["actions"] = role["permissions"][0]["actions"] + ["import"]
    loom.publish("secure", "role", "advisor", role, world.actor("sysadmin"))
    from engine.audit import AuditFilter, search
    with loom.db.connect() as conn:       # a permission change is on the record, before and after
        entry = search(conn, AuditFilter(action="publish", entity="role:advisor"))[0][0]
    assert entry["actor"] == "sysadmin" and "import" in entry["after"]["permissions"][0]["actions"]
    assert "import" not in entry["before"]["permissions"][0]["actions"]
    adv = world.actor("adv1")
    me, other = world.users["adv1"], world.users["adv3"]
    with pytest.raises(LoomError):
        loom.records.import_rows(body, [(2, {"name": "外人", "risk_level": "C1", "advisor": other})], adv)
    with pytest.raises(Forbidden) as exc:
        loom.records.import_rows(body, [(2, {"name": "甲", "risk_level": "C1", "co_advisor": me}),
                                        (3, {"name": "乙", "risk_level": "C1", "co_advisor": me,
                                             "id_number": "110101199001011111"})], adv)
    assert exc.value.problems[0].line == 3 and exc.value.problems[0].field == "id_number"
    with pytest.raises(Forbidden):      # one row inside the scope, one planted on another advisor: nothing
        loom.records.import_rows(body, [(2, {"name": "丙", "risk_level": "C1"}),
                                        (3, {"name": "丙", "risk_level": "C1", "advisor": other,
                                             "co_advisor": other})], adv)
    assert ids(loom, world.actor("root"), "customer", name="丙") == set()        # nothing was written
    # a blank owner belongs to the importer, as with single writes
    res = loom.records.import_rows(body, [(2, {"name": "戊", "risk_level": "C1"})], adv)
    assert res.inserted == 1 and ids(loom, adv, "customer", name="戊")
    res = loom.records.import_rows(body, [(2, {"name": "丁", "risk_level": "C1", "co_advisor": me})], adv)
    assert res.inserted == 1 and ids(loom, adv, "customer", name="丁") == set(res.ids)
