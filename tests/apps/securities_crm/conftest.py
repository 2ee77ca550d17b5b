"""Fixtures for the securities CRM bundle: the bundle installed, and the small demo data set.

The demo set takes a few seconds to build, so it is built once per module (``crm_demo``) on its
own database and only read by the tests that use it.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tests.conftest import ROOT, make_settings

BUNDLE = ROOT / "apps" / "securities_crm"
AS_OF = date(2026, 11, 20)
SEED = 7


def _new_loom(tmp: Path):
    from engine.runtime.loom import Loom
    settings = make_settings(tmp)
    lm = Loom(settings)
    lm.init_db()
    return lm, settings


def _drop(lm, settings):
    lm.dispose()
    if settings.db_schema:
        from engine.db import drop_schema
        drop_schema(settings.database_url, settings.db_schema)


def build_demo(tmp: Path, seed: int = SEED):
    """A Loom with the bundle installed and the small demo set generated; returns (loom, settings, summary)."""
    from engine.runtime.cli_demo import load_generator
    lm, settings = _new_loom(tmp)
    lm.install(BUNDLE)
    gen = load_generator("securities_crm")
    summary = gen.run(lm, seed=seed, size="small", as_of=AS_OF, echo=lambda m: None, out_dir=tmp / "demo")
    return lm, settings, summary


@pytest.fixture
def crm(loom):
    """A fresh Loom with the bundle installed (reference data only)."""
    loom.install(BUNDLE)
    return loom


@pytest.fixture(scope="module")
def crm_demo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("crm_demo")
    lm, settings, summary = build_demo(tmp)
    lm.test_settings = settings
    yield lm, summary
    _drop(lm, settings)


def settings_env(settings) -> dict:
    """Environment variables that make a new process (or CliRunner) open the same database."""
    env = {"LOOM_INSTANCE_PATH": str(settings.instance_path), "LOOM_FIELD_KEY": settings.field_key,
           "LOOM_SECRET_KEY": settings.secret_key, "LOOM_DATABASE_URL": settings.database_url}
    if settings.db_schema:
        env["LOOM_DB_SCHEMA"] = settings.db_schema
    return env
