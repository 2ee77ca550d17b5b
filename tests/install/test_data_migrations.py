"""Upgrades with data migrations shipped in the bundle, all or nothing; running processes noted."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from engine.errors import InvalidInput
from engine.meta import store
from tests.conftest import BUNDLES

MIGRATION = '''
# 1.1.0: every customer gets a segment; large accounts are "vip"
for c in records.find("customer"):
    segment = "vip" if c["aum"] is not None and Decimal(c["aum"]) >= Decimal("1000000") else "standard"
    records.update("customer", c["id"], {"segment": segment})
log("segments set")
'''


def upgrade(bundle_copy, migration=MIGRATION):
    path = bundle_copy()
    for name, old, new in (("app.yaml", "version: 1.0.0", "version: 1.1.0"),
                           ("entities/customer.yaml", "  - key: notes\n",
                            "  - key: segment\n    type: select\n    options: [vip, standard]\n  - key: notes\n")):
        p = path / name
        p.write_text(p.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    (path / "migrations").mkdir()
    (path / "migrations" / "1.1.0.py").write_text(migration, encoding="utf-8")
    return path


def columns(loom, table):
    with loom.db.connect() as conn:
        return {c["name"] for c in sa.inspect(conn).get_columns(table)}


def test_the_plan_lists_the_data_migration_and_the_upgrade_runs_it(mini, bundle_copy):
    path = upgrade(bundle_copy)
    plan = mini.plan_install(path)
    assert plan.data_migrations == ["1.1.0"]
    assert "  migrations/1.1.0.py" in plan.describe()
    mini.install(path)
    with mini.db.connect() as conn:
        got = dict(conn.execute(sa.text("SELECT name, segment FROM mini_customer")).all())
    assert got == {"张三": "vip", "李四": "standard"}
    assert mini.plan_install(path).is_noop             # ran once; the same version again does nothing


def test_a_failing_data_migration_leaves_version_1_0_fully_in_place(mini, bundle_copy):
    path = upgrade(bundle_copy, MIGRATION + 'records.update("customer", 1, {"segment": "gold"})\n')
    before = columns(mini, "mini_customer")
    with pytest.raises(InvalidInput) as exc:
        mini.install(path)
    [p] = exc.value.problems
    assert p.file == "migrations/1.1.0.py" and p.code == "migration_failed"
    assert "1.0.0 is still in place" in exc.value.message
    assert columns(mini, "mini_customer") == before                  # the new column was rolled back too
    with mini.db.connect() as conn:
        assert conn.execute(sa.select(store.apps.c.version).where(store.apps.c.key == "mini")).scalar() == "1.0.0"
        assert store.get(conn, "mini", "entity", "customer").version == 1
    assert "segment" not in mini.model.entity("mini", "customer").fields


def test_a_hostile_or_broken_migration_is_refused_before_anything_runs(mini, bundle_copy):
    path = upgrade(bundle_copy, "import os\n")
    with pytest.raises(InvalidInput) as exc:
        mini.plan_install(path)
    assert exc.value.problems[0].file == "migrations/1.1.0.py" and exc.value.problems[0].line == 1
    path = upgrade(bundle_copy)
    (path / "migrations" / "latest.py").write_text("x = 1\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as exc:
        mini.plan_install(path)
    assert "`latest` is not valid: a version like 1.2.0" in str(exc.value.problems[0])


def test_the_plan_names_processes_with_running_instances(loom, bundle_copy):
    loom.install(BUNDLES / "flow")
    from engine.security import Actor
    loom.workflow.start("flow.kyc", Actor.system(), {})
    path = bundle_copy("flow")
    p = path / "app.yaml"
    p.write_text(p.read_text(encoding="utf-8").replace("version: 1.0.0", "version: 1.1.0"), encoding="utf-8")
    kyc = path / "workflows" / "kyc.bpmn"
    kyc.write_text(kyc.read_text(encoding="utf-8").replace("</bpmn:definitions>",
                                                           "<!-- v1.1 --></bpmn:definitions>"), encoding="utf-8")
    plan = loom.plan_install(path)
    assert any("flow.kyc: 1 running instance(s) stay on version 1" in n for n in plan.notes), plan.notes
