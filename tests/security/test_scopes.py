"""Scope expressions are translated to SQL, never evaluated; anything outside the small language
is refused when the bundle is validated, with the file and line of the role."""
from __future__ import annotations

import pytest

from engine.records.query import ListRequest
from engine.security import Actor
from engine.security.scopes import ScopeError, compile_scope


@pytest.fixture(scope="module")
def secure_model(tmp_path_factory):
    from engine.runtime.loom import Loom
    from tests.conftest import BUNDLES, make_settings
    lm = Loom(make_settings(tmp_path_factory.mktemp("scopes")))
    lm.init_db()
    lm.install(BUNDLES / "secure")
    yield lm.model
    lm.dispose()
    if lm.settings.db_schema:
        from engine.db import drop_schema
        drop_schema(lm.settings.database_url, lm.settings.db_schema)


@pytest.mark.parametrize("text", [
    "__import__('os').system('id') == 0",
    "name.upper() == 'X'",
    "user.password_hash == 'x'",
    "nope == 1",
    "id_number == '1'",               # encrypted: ciphertext cannot be compared
    "advisor == user.id; 1",
    "(lambda: 1)() == 1",
    "advisor + 1 == 2",
    "user == 1",
    "advisor is 3",
    "linked:name",
])
def test_bad_scopes_are_refused(secure_model, text):
    ent = secure_model.entity("secure.customer")
    with pytest.raises(ScopeError):
        compile_scope(text, ent)


def _rows(world, scope_text, actor):
    import sqlalchemy as sa
    ent = world.loom.model.entity("secure.customer")
    clause = compile_scope(scope_text, ent).clause(actor, ent, lambda col, target: sa.true())
    q = sa.select(ent.table.c.id)
    if clause is not None:
        q = q.where(clause)
    with world.loom.db.connect() as conn:
        rev = {v: k for k, v in world.customers.items()}
        return {rev[r[0]] for r in conn.execute(q)}


def test_expressions_translate_to_sql(world):
    adv1 = world.actor("adv1")
    assert _rows(world, "advisor == user.id", adv1) == {"c1"}
    assert _rows(world, "user.id == co_advisor", adv1) == {"c2"}
    assert _rows(world, "advisor == user.id or co_advisor == user.id", adv1) == {"c1", "c2"}
    assert _rows(world, "not (advisor == user.id)", adv1) == {"c2", "c3"}
    assert _rows(world, "risk_level in ['C3', 'C5'] and co_advisor is None", adv1) == {"c1", "c3"}
    assert _rows(world, "name != 'Customer c1' and id >= 2", adv1) == {"c2", "c3"}
    assert _rows(world, "True", adv1) == {"c1", "c2", "c3"}
    assert _rows(world, "team", adv1) == {"c1"}                       # T1 only holds adv1
    assert _rows(world, "branch", world.actor("mgr1")) == {"c1", "c2"}


def test_a_missing_user_attribute_matches_nothing(world):
    nobody = Actor(user_id=None, username="ghost", roles=frozenset({"secure.advisor"}))
    assert _rows(world, "co_advisor == user.team", nobody) == set()   # not "co_advisor IS NULL"
    assert _rows(world, "own", nobody) == set()


def test_a_bundle_with_a_bad_scope_is_rejected_with_its_line(loom, bundle_copy):
    path = bundle_copy("secure")
    text = (path / "roles.yaml").read_text()
    (path / "roles.yaml").write_text(text.replace('scope: "linked:account"', 'scope: "__class__ == 1"'))
    _, problems = loom.validate_bundle(path)
    scoped = [p for p in problems if p.code == "scope"]
    assert scoped, problems
    p = scoped[0]
    assert p.file == "roles.yaml" and p.line == 10 and "__class__" in p.message
    text = (path / "roles.yaml").read_text()
    (path / "roles.yaml").write_text(text.replace("{bank_card: masked}}", "{bank_crad: masked}}", 1))
    _, problems = loom.validate_bundle(path)
    assert any("bank_crad" in p.message and p.line == 9 for p in problems), problems


def test_roles_inherit_permissions(loom, bundle_copy):
    path = bundle_copy("secure")
    text = (path / "roles.yaml").read_text()
    text += ("  - key: senior_advisor\n    label: {en: Senior}\n    inherits: [advisor]\n"
             "    permissions:\n      - {entity: trade, actions: [export]}\n")
    (path / "roles.yaml").write_text(text)
    loom.install(path)
    pol = loom.policy
    assert pol.expand({"secure.senior_advisor"}) == {"secure.senior_advisor", "secure.advisor"}
    actor = Actor(user_id=99, username="s", roles=frozenset({"secure.senior_advisor"}))
    ent = loom.model.entity("secure.customer")
    assert pol.can(actor, ent, "read") and pol.field_rules(actor, ent)["id_number"] == "masked"
    assert pol.can(actor, loom.model.entity("secure.trade"), "export")
    assert loom.query.list(ent, actor, ListRequest())["items"] == []
