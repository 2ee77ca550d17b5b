"""Shared fixtures: a fresh Loom on its own database for every test that asks for one.

SQLite (a file in the test's temp folder) by default. With ``LOOM_TEST_DATABASE_URL`` set to a
PostgreSQL URL, each Loom gets its own schema, dropped afterwards, so parallel runs and reruns
never see each other's data.
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from engine.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BUNDLES = Path(__file__).resolve().parent / "bundles"
PG_URL = os.environ.get("LOOM_TEST_DATABASE_URL", "")


def make_settings(tmp_path: Path, **overrides) -> Settings:
    env = {"LOOM_INSTANCE_PATH": str(tmp_path / "instance"), "LOOM_FIELD_KEY": "test-field-key",
           "LOOM_SECRET_KEY": "test-secret"}
    if PG_URL:
        env["LOOM_DATABASE_URL"] = PG_URL
        env["LOOM_DB_SCHEMA"] = "t_" + uuid.uuid4().hex[:16]
    env.update(overrides)
    return Settings.from_env(env)


@pytest.fixture
def settings(tmp_path):
    s = make_settings(tmp_path)
    yield s
    if s.db_schema:
        from engine.db import drop_schema
        drop_schema(s.database_url, s.db_schema)


@pytest.fixture
def loom(settings):
    from engine.runtime.loom import Loom
    lm = Loom(settings)
    lm.init_db()
    yield lm
    lm.dispose()


@pytest.fixture
def bundle_copy(tmp_path):
    """Copy a test bundle to a temp folder so a test can break it."""
    def copy(name: str = "mini") -> Path:
        dst = tmp_path / f"bundle_{name}_{uuid.uuid4().hex[:6]}"
        shutil.copytree(BUNDLES / name, dst)
        return dst
    return copy


@pytest.fixture
def mini(loom):
    """A Loom with the `mini` test bundle installed."""
    loom.install(BUNDLES / "mini")
    return loom


BROKER_URL = os.environ.get("LOOM_TEST_BROKER_URL", "")


@pytest.fixture
def celery_worker(settings, tmp_path):
    """A real Celery worker process on LOOM_TEST_BROKER_URL (Redis), sharing the test's database.

    Skips when no broker is configured. Yields the environment the worker runs with; the worker
    is stopped by its own PID afterwards.
    """
    import signal
    import subprocess
    import sys
    import time

    if not BROKER_URL:
        pytest.skip("set LOOM_TEST_BROKER_URL (Redis) to run tests against a real Celery worker")
    env = dict(os.environ, LOOM_BROKER_URL=BROKER_URL, LOOM_DATABASE_URL=settings.database_url,
               LOOM_DB_SCHEMA=settings.db_schema, LOOM_INSTANCE_PATH=str(settings.instance_path),
               LOOM_FIELD_KEY=settings.field_key, LOOM_SECRET_KEY=settings.secret_key)
    log = open(tmp_path / "worker.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "engine.runtime.celery_app:celery", "worker",
                             "--pool=solo", "--loglevel=INFO", "--without-gossip", "--without-mingle",
                             "--without-heartbeat"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.time() + 30
        while "ready" not in (tmp_path / "worker.log").read_text() and time.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError("celery worker exited:\n" + (tmp_path / "worker.log").read_text())
            time.sleep(0.2)
        yield env
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
