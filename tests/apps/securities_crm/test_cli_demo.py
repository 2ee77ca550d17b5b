"""`loom demo` as a user runs it: the command is registered, refuses an app that is not installed,
and with --if-empty leaves a filled database alone (what `make run` relies on)."""
from __future__ import annotations

from click.testing import CliRunner

from engine.runtime.cli import main
from tests.apps.securities_crm.conftest import settings_env


def test_demo_needs_the_app_installed(loom, settings):
    result = CliRunner().invoke(main, ["demo", "--if-empty"], env=settings_env(settings))
    assert result.exit_code == 1
    assert "not installed" in result.output


def test_if_empty_leaves_existing_data_alone(crm_demo):
    loom, summary = crm_demo
    result = CliRunner().invoke(main, ["demo", "--size", "small", "--if-empty"], env=settings_env(loom.test_settings))
    assert result.exit_code == 0, result.output
    assert "nothing to do" in result.output


def test_unknown_app_is_a_parameter_error(loom, settings):
    result = CliRunner().invoke(main, ["demo", "--app", "no_such_app"], env=settings_env(settings))
    assert result.exit_code == 2 and "--app" in result.output
