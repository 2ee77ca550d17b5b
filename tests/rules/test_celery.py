"""Scale-out with a real Celery worker: partitions applied by the worker give the same alerts as
one process. Needs LOOM_TEST_BROKER_URL (for example redis://127.0.0.1:6379/15)."""
from __future__ import annotations

import pytest

from tests.rules.conftest import BROKER, activate_all, random_events, rewrite_rule

pytestmark = pytest.mark.celery


def test_partitions_applied_by_a_celery_worker_match_a_single_process(settings, bundle_copy, tmp_path,
                                                                      celery_worker_env):
    from engine.rules import service
    from engine.runtime.celery_app import celery
    from engine.runtime.loom import Loom
    from tests.conftest import make_settings
    from tests.rules.test_stream import alert_rows, signature

    evs = random_events(800, seed=21)
    bundle = bundle_copy("surveil")
    rewrite_rule(bundle, "surveillance", partitions=3)

    single = Loom(make_settings(tmp_path / "single"))
    single.init_db()
    single.install(bundle)
    activate_all(service(single))
    service(single).ingest(evs, final=True)
    expected = signature(alert_rows(single))
    single.dispose()

    saved = {k: celery.conf[k] for k in ("broker_url", "result_backend", "task_always_eager")}
    celery.conf.update(broker_url=BROKER, result_backend=BROKER, task_always_eager=False)
    try:
        loom = Loom(settings.__class__(**{**settings.__dict__, "broker_url": BROKER}))
        loom.init_db()
        loom.install(bundle)
        svc = service(loom)
        assert svc.dispatch is not None                       # a broker: partitions go to the worker
        activate_all(svc)
        svc.ingest(evs[:400], final=True)
        svc.ingest(evs[400:], final=True)
        got = signature(alert_rows(loom))
        loom.dispose()
    finally:
        celery.conf.update(**saved)
    assert got == expected and len(expected) > 10
    log = (tmp_path / "worker.log").read_text()
    assert "loom.rules.apply_partition" in log and "succeeded" in log
