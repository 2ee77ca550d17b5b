"""The embedded scheduler: a daemon thread calling ``tick()`` every few seconds in ``loom serve``.

Production runs ``loom beat`` + Celery workers instead (the ``loom.tick`` task calls the same
``tick``); several ticking processes are safe because each due instance is locked
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and saved with an optimistic lock version.
"""
from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


class EmbeddedScheduler:
    def __init__(self, tick, interval: float = 5.0):
        self._tick = tick
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="loom-workflow-scheduler", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._tick()
            except Exception:  # noqa: BLE001  (keep ticking; the error is logged)
                log.exception("workflow scheduler tick failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
