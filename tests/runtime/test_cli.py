"""The `loom` command line, as a user runs it."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from engine.runtime.cli import main
from tests.conftest import BUNDLES, PG_URL


@pytest.fixture
def run(settings):
    env = {"LOOM_INSTANCE_PATH": str(settings.instance_path), "LOOM_FIELD_KEY": settings.field_key,
           "LOOM_SECRET_KEY": settings.secret_key, "LOOM_DATABASE_URL": settings.database_url,
           "LOOM_DB_SCHEMA": settings.db_schema}
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(main, list(args), env=env, input=input, catch_exceptions=False)
    return invoke


def test_init_creates_tables_and_an_admin_once(run):
    first = run("init")
    assert first.exit_code == 0
    assert "created administrator `admin` with password:" in first.output
    password = first.output.split("password:")[1].split()[0]
    assert len(password) >= 12
    second = run("init")
    assert second.exit_code == 0 and "created administrator" not in second.output


def test_validate_reports_file_line_and_exits_nonzero(run, bundle_copy):
    run("init")
    ok = run("app", "validate", str(BUNDLES / "mini"))
    assert ok.exit_code == 0 and "valid" in ok.output
    path = bundle_copy()
    (path / "entities" / "branch.yaml").write_text("key: branch\nlabel: x\nfields:\n  - {key: code, type: txt}\n")
    bad = run("app", "validate", str(path))
    assert bad.exit_code == 1
    assert "entities/branch.yaml:4:" in bad.output and "`txt` is not one of" in bad.output


def test_install_list_export_uninstall(run, tmp_path):
    run("init")
    dry = run("app", "install", str(BUNDLES / "mini"), "--dry-run")
    assert dry.exit_code == 0 and "create_table mini_customer" in dry.output
    listed = run("app", "list")
    assert "no bundles installed" in listed.output
    inst = run("app", "install", str(BUNDLES / "mini"), "--yes")
    assert inst.exit_code == 0 and "installed mini 1.0.0" in inst.output
    again = run("app", "install", str(BUNDLES / "mini"), "--yes")
    assert "nothing to do" in again.output
    listed = run("app", "list")
    assert "mini" in listed.output and "1.0.0" in listed.output and "迷你客户" in listed.output
    out = tmp_path / "export.zip"
    exp = run("app", "export", "mini", "-o", str(out))
    assert exp.exit_code == 0 and out.exists()
    un = run("app", "uninstall", "mini")
    assert un.exit_code == 0 and "data kept" in un.output
    verify = run("audit", "verify")
    assert verify.exit_code == 0 and "intact" in verify.output


def test_schema_prints_self_contained_json_schema(run):
    out = run("schema", "entity")
    schema = json.loads(out.output)
    assert schema["$schema"].endswith("2020-12/schema")
    assert "label" in schema["$defs"] and "field" in schema["$defs"]
    bad = CliRunner().invoke(main, ["schema", "widget"])
    assert bad.exit_code != 0 and "unknown kind" in bad.output
