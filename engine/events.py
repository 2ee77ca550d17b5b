"""An in-process event bus.

The record service publishes ``record.created`` / ``record.updated`` / ``record.deleted`` after a
commit; workflow triggers, monitoring rules, rollups and notifications subscribe. Handlers run
synchronously in the publishing thread after the transaction has committed, so a failing handler
never undoes the write it reacts to: its error is logged and the next handler still runs.
Heavy subscribers hand work to Celery themselves.
"""
from __future__ import annotations

import fnmatch
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger(__name__)


@dataclass
class Event:
    name: str                       # "record.created"
    payload: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[Event], None]


class EventBus:
    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self.errors: list[tuple[str, BaseException]] = []

    def subscribe(self, pattern: str, handler: Handler) -> Handler:
        """Subscribe to an event name or a glob such as ``record.*``."""
        self._handlers[pattern].append(handler)
        return handler

    def unsubscribe(self, pattern: str, handler: Handler) -> None:
        if handler in self._handlers.get(pattern, []):
            self._handlers[pattern].remove(handler)

    def publish(self, name: str, **payload: Any) -> None:
        event = Event(name, payload)
        for pattern, handlers in list(self._handlers.items()):
            if pattern == name or fnmatch.fnmatchcase(name, pattern):
                for handler in list(handlers):
                    try:
                        handler(event)
                    except Exception as exc:  # a subscriber must not break the publisher
                        log.exception("event handler %r failed on %s", handler, name)
                        self.errors.append((name, exc))
