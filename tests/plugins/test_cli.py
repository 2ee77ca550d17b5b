"""`loom plugin ...` and `loom script run` as IT uses them."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from engine.runtime.cli import main
from tests.conftest import BUNDLES
from tests.plugins.helpers import PLUGINS, make_plugin


@pytest.fixture
def run(settings):
    env = {"LOOM_INSTANCE_PATH": str(settings.instance_path), "LOOM_FIELD_KEY": settings.field_key,
           "LOOM_SECRET_KEY": settings.secret_key, "LOOM_DATABASE_URL": settings.database_url,
           "LOOM_DB_SCHEMA": settings.db_schema, "LOOM_ADMIN_PASSWORD": "Admin-Pass-123"}
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)
    assert invoke("init").exit_code == 0
    return invoke


def test_install_enable_show_configure(run, tmp_path):
    r = run("plugin", "install", str(PLUGINS / "cn_identity"))
    assert r.exit_code == 0 and "installed cn_identity 1.0.0 (disabled)" in r.output
    assert "disabled" in run("plugin", "list").output
    assert run("plugin", "enable", "cn_identity").output.strip() == "cn_identity enabled"
    assert "enabled" in run("plugin", "list").output
    shown = run("plugin", "show", "cn_identity").output
    assert "identity.py v1" in shown and "(current)" in shown and "function       identity.py:check_id" in shown
    bad = run("plugin", "configure", "cn_identity", "min_birth_year=12")
    assert bad.exit_code == 1 and "minimum" in bad.output
    assert '"min_birth_year": 1920' in run("plugin", "configure", "cn_identity", "min_birth_year=1920").output
    assert run("plugin", "disable", "nope").exit_code == 1


def test_install_refuses_a_hostile_plugin_with_file_and_line(run, tmp_path):
    folder = make_plugin(tmp_path, "evil", {"evil.py": "def f():\n    return open('/etc/passwd')\n"},
                         hooks=[{"point": "function", "script": "evil.py", "function": "f"}])
    r = run("plugin", "install", str(folder))
    assert r.exit_code == 1
    assert "evil.py:2" in r.output and "`open` is not available" in r.output
    assert "no plugins installed" in run("plugin", "list").output


def test_set_script_versions_and_script_run(run, tmp_path):
    run("plugin", "install", str(PLUGINS / "cn_identity"), "--enable")
    new = tmp_path / "identity.py"
    new.write_text((PLUGINS / "cn_identity" / "identity.py").read_text() + "\n# reviewed\n")
    assert "is now version 2" in run("plugin", "set-script", "cn_identity", "identity.py", str(new)).output
    assert "# reviewed" in run("plugin", "show", "cn_identity", "--source", "identity.py").output
    assert "# reviewed" not in run("plugin", "show", "cn_identity", "--source", "identity.py", "--version", "1").output
    script = tmp_path / "try.py"
    script.write_text("log('checking', number)\nok = cn_identity.check_id(number)\n")
    r = run("script", "run", str(script), "--data", json.dumps({"number": "11010519491231002X"}))
    assert r.exit_code == 0, r.output
    assert "log: checking 11010519491231002X" in r.output and '"ok": true' in r.output
    spin = tmp_path / "spin.py"
    spin.write_text("while True:\n    pass\n")
    r = run("script", "run", str(spin), "--seconds", "0.2")
    assert r.exit_code == 1 and "spin.py, line 1" in r.output and "time budget" in r.output


def test_script_run_as_a_user_has_that_users_rights(run, tmp_path):
    run("app", "install", str(BUNDLES / "mini"), "--yes")
    run("user", "add", "bob", "--password", "Bob-Pass-12345", "--role", "mini.advisor")
    script = tmp_path / "w.py"
    script.write_text("r = records.create('mini.branch', {'code': 'X', 'name': 'x'})\n")
    r = run("script", "run", str(script), "--as", "bob")
    assert r.exit_code == 1 and "may not create" in r.output
    r = run("script", "run", str(script))
    assert r.exit_code == 0 and '"code": "X"' in r.output
