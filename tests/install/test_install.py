"""Installing a bundle: a plan, one transaction, idempotent, and a faithful export."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from engine.errors import InvalidInput
from engine.install import export_bundle, uninstall
from engine.meta import store
from engine.records import ListRequest
from engine.runtime.loom import Loom
from engine.security import Actor
from tests.conftest import BUNDLES, make_settings

SYSTEM_ACTOR = Actor.system("test")


def tables(loom):
    with loom.db.connect() as conn:
        return set(sa.inspect(conn).get_table_names())


def count(loom, app, entity):
    ent = loom.model.entity(app, entity)
    with loom.db.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(ent.table)).scalar()


def test_plan_lists_definitions_tables_and_fixtures(loom):
    plan = loom.plan_install(BUNDLES / "mini")
    text = "\n".join(plan.describe())
    assert "added     entity customer" in text
    assert "create_table mini_customer__accounts__positions" in text
    assert "2 rows -> customer" in text
    assert tables(loom).isdisjoint({"mini_customer", "mini_branch"})   # planning changed nothing


def test_install_creates_tables_loads_fixtures_and_is_audited(mini):
    assert {"mini_branch", "mini_customer", "mini_customer__accounts", "mini_customer__accounts__positions"} <= tables(mini)
    assert count(mini, "mini", "customer") == 2
    items = mini.query.list(mini.model.entity("mini", "customer"), SYSTEM_ACTOR, ListRequest(expand=["branch"]))["items"]
    assert {i["branch"]["name"] for i in items} == {"北京营业部", "上海营业部"}   # links resolved by title
    from engine.audit import audit_log
    with mini.db.connect() as conn:
        actions = [r[0] for r in conn.execute(sa.select(audit_log.c.action))]
    assert "install" in actions


def test_reinstalling_the_same_version_changes_nothing(mini):
    with mini.db.connect() as conn:
        before = [(d.kind, d.key, d.version) for d in store.current(conn)]
        rev = store.revision(conn)
    plan = mini.plan_install(BUNDLES / "mini")
    assert plan.is_noop
    mini.install(BUNDLES / "mini")
    with mini.db.connect() as conn:
        assert [(d.kind, d.key, d.version) for d in store.current(conn)] == before
        assert store.revision(conn) == rev
    assert count(mini, "mini", "customer") == 2
    assert count(mini, "mini", "branch") == 2


def test_failure_in_the_last_fixture_row_installs_nothing(loom, bundle_copy):
    """A duplicate only the database can see (unique code) fails at apply time: everything,
    tables included, is rolled back."""
    path = bundle_copy()
    (path / "fixtures" / "branch.yaml").write_text(
        "entity: branch\nrecords:\n  - {code: BJ01, name: 北京营业部}\n  - {code: SH01, name: 上海营业部}\n"
        "  - {code: BJ01, name: 北京二部}\n", encoding="utf-8")
    before = tables(loom)
    with pytest.raises(InvalidInput) as exc:
        loom.install(path)
    assert any(p.file == "fixtures/branch.yaml" and p.line == 5 and p.path == "code" for p in exc.value.problems), \
        exc.value.problems
    assert tables(loom) == before
    with loom.db.connect() as conn:
        assert store.current(conn) == []
        assert conn.execute(sa.select(sa.func.count()).select_from(store.apps)).scalar() == 0


def test_invalid_last_fixture_row_is_caught_before_anything_is_applied(loom, bundle_copy):
    path = bundle_copy()
    with open(path / "fixtures" / "customer.csv", "a", encoding="utf-8") as f:
        f.write("王五,12345,C3,北京营业部,10\n")
    before = tables(loom)
    with pytest.raises(InvalidInput) as exc:
        loom.install(path)
    assert [(p.file, p.line) for p in exc.value.problems] == [("fixtures/customer.csv", 4)]
    assert "mobile" in exc.value.problems[0].message
    assert tables(loom) == before


def test_changed_bundle_publishes_new_versions_and_migrates(mini, bundle_copy):
    path = bundle_copy()
    text = (path / "entities" / "branch.yaml").read_text(encoding="utf-8")
    text += "  - {key: city, type: text, label: {zh-CN: 城市, en: City}}\n"
    (path / "entities" / "branch.yaml").write_text(text, encoding="utf-8")
    (path / "app.yaml").write_text((path / "app.yaml").read_text(encoding="utf-8").replace("1.0.0", "1.1.0"),
                                   encoding="utf-8")
    plan = mini.plan_install(path)
    assert [str(c).split()[0:3] for c in plan.changes] == [["changed", "entity", "branch"]]
    assert [str(s) for s in plan.migration.steps] == ["add_column mini_branch.city: str(255)"]
    mini.install(path)
    with mini.db.connect() as conn:
        assert [d.version for d in store.history(conn, "mini", "entity", "branch")] == [2, 1]
    assert "city" in mini.model.entity("mini", "branch").fields
    assert count(mini, "mini", "branch") == 2          # fixtures with key_field were upserted, not duplicated


def test_export_then_install_into_a_fresh_database_gives_the_same_definitions(mini, tmp_path):
    out = tmp_path / "exported"
    names = export_bundle(mini.db, "mini", out)
    assert {"app.yaml", "entities/customer.yaml", "roles.yaml", "fixtures/customer.csv"} <= set(names)
    assert "北京营业部" in (out / "fixtures" / "branch.yaml").read_text(encoding="utf-8")   # readable unicode YAML
    other = Loom(make_settings(tmp_path / "other"))
    other.init_db()
    try:
        other.install(out)
        with mini.db.connect() as a, other.db.connect() as b:
            left = {(d.kind, d.key): d.checksum for d in store.current(a)}
            right = {(d.kind, d.key): d.checksum for d in store.current(b)}
        assert left == right
        # and a zip export reads back the same
        export_bundle(other.db, "mini", tmp_path / "mini.zip")
        assert other.plan_install(tmp_path / "mini.zip").is_noop
    finally:
        if other.settings.db_schema:
            from engine.db import drop_schema
            other.dispose()
            drop_schema(other.settings.database_url, other.settings.db_schema)
        else:
            other.dispose()


def test_uninstall_keeps_data_unless_purged(mini):
    uninstall(mini.db, "mini", SYSTEM_ACTOR)
    assert "mini_customer" in tables(mini)
    with mini.db.connect() as conn:
        assert store.current(conn, app="mini") == []
        assert conn.execute(sa.text("SELECT count(*) FROM mini_customer")).scalar() == 2
    # reinstall brings the definitions back over the kept data
    mini.install(BUNDLES / "mini")
    model = mini.reload(force=True)
    uninstall(mini.db, "mini", SYSTEM_ACTOR, purge=True, model=model)
    assert "mini_customer" not in tables(mini)
