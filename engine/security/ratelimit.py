"""An in-process token bucket per key (client address), for login attempts.

Per process: behind several gunicorn workers an attacker gets ``workers x rate``, which the
account lockout (stored in the database) still bounds. Good enough to stop scripted guessing
from one address without an extra service.
"""
from __future__ import annotations

import threading
import time


class TokenBucket:
    def __init__(self, capacity: int = 10, per_seconds: float = 60.0, clock=time.monotonic):
        self.capacity = capacity
        self.rate = capacity / per_seconds          # tokens regained per second
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Take one token for ``key``; False when none is left."""
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (float(self.capacity), now))
            tokens = min(self.capacity, tokens + (now - at) * self.rate)
            if len(self._buckets) > 100_000:        # bound memory under a spray of addresses
                self._buckets.clear()
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                return False
            self._buckets[key] = (tokens - 1, now)
            return True

    def retry_after(self, key: str) -> int:
        tokens, _ = self._buckets.get(key, (self.capacity, 0))
        return max(1, int((1 - tokens) / self.rate) + 1)
