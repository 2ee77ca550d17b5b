"""A unit of work: one database transaction plus the events to publish once it commits.

Several record writes (a fixture file, a workflow step that updates a record and its own state,
a bulk-import batch) share one unit so they commit or roll back together; subscribers hear
about them only after the commit, never about work that was rolled back.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable

import sqlalchemy as sa

from engine.events import EventBus


class UnitOfWork:
    def __init__(self, conn: sa.Connection, bus: EventBus | None):
        self.conn = conn
        self.bus = bus
        self.events: list[tuple[str, dict]] = []
        self.after_commit: list[Callable[[], None]] = []

    def emit(self, name: str, **payload) -> None:
        self.events.append((name, payload))

    def flush_events(self) -> None:
        events, self.events = self.events, []
        for cb in self.after_commit:
            cb()
        self.after_commit = []
        if self.bus is not None:
            for name, payload in events:
                self.bus.publish(name, **payload)


@contextmanager
def unit_of_work(engine: sa.Engine, bus: EventBus | None, uow: UnitOfWork | None = None):
    """Open a unit (or join the caller's). Commits and publishes only at the outermost level."""
    if uow is not None:
        yield uow
        return
    with engine.begin() as conn:
        unit = UnitOfWork(conn, bus)
        yield unit
    unit.flush_events()
