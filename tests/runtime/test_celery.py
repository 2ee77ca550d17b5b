"""Tasks reach a real worker through Redis, and run in-process when no broker is set."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.celery
def test_round_trip_through_a_real_worker(celery_worker):
    code = ("from engine.runtime.celery_app import ping, celery;"
            "r = ping.delay('hello').get(timeout=20);"
            "assert not celery.conf.task_always_eager;"
            "print(r['pong'], r['pid'])")
    out = subprocess.run([sys.executable, "-c", code], env=celery_worker, cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    pong, pid = out.stdout.split()
    assert pong == "hello" and int(pid) != os.getpid()


def test_without_a_broker_tasks_run_in_process(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "LOOM_BROKER_URL"}
    env["LOOM_INSTANCE_PATH"] = str(tmp_path)
    code = ("import os; from engine.runtime.celery_app import ping, celery;"
            "assert celery.conf.task_always_eager;"
            "print(ping.delay(1).get()['pid'] == os.getpid())")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "True", out.stderr
