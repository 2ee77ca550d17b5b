"""Shared helpers: run a sandbox call in a worker thread while a bystander thread keeps working.

Web servers evaluate scripts in worker threads, where SIGALRM cannot reach; so every resource-bomb
test runs the bomb in a non-main thread and checks that another thread made progress meanwhile.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from engine.sandbox import compile_expression


@dataclass
class Outcome:
    error: BaseException | None = None
    value: object = None
    seconds: float = 0.0
    bystander_before: int = 0
    bystander_during: int = 0
    bystander_after: int = 0
    bystander_errors: list = field(default_factory=list)


def run_beside_bystander(call, timeout: float = 30.0) -> Outcome:
    """Run ``call()`` in a worker thread while a bystander evaluates a sandboxed expression in a loop."""
    out = Outcome()
    count = [0]
    stop = threading.Event()
    check = compile_expression("sum(x * x for x in values) == expected", "bystander")

    def bystander():
        values = list(range(50))
        expected = sum(x * x for x in values)
        while not stop.is_set():
            try:
                if check.evaluate({"values": values, "expected": expected}) is True:
                    count[0] += 1
            except Exception as exc:  # pragma: no cover - a failure here is the test failing
                out.bystander_errors.append(exc)
            time.sleep(0)

    def worker():
        t0 = time.monotonic()
        try:
            out.value = call()
        except BaseException as exc:  # noqa: B036 - we want whatever the bomb ended with
            out.error = exc
        out.seconds = time.monotonic() - t0

    b = threading.Thread(target=bystander, daemon=True)
    b.start()
    time.sleep(0.05)
    out.bystander_before = count[0]
    w = threading.Thread(target=worker, daemon=True)
    w.start()
    w.join(timeout)
    assert not w.is_alive(), "the sandboxed call was not stopped"
    out.bystander_during = count[0] - out.bystander_before
    mark = count[0]
    time.sleep(0.05)
    out.bystander_after = count[0] - mark
    stop.set()
    b.join(5)
    return out
