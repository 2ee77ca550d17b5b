"""Common benchmark machinery.

Every benchmark measures the engine path and a baseline *in the same run, on the same data*, and
checks that both produce the same result before it reports anything; absolute numbers drift
between machines, the ratio is what we track. A benchmark module exposes ``run(ctx) -> list[dict]``
and builds its rows with :func:`result`.
"""
from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable

PACKAGES = ("SQLAlchemy", "Flask", "marshmallow", "jsonschema", "RestrictedPython", "SpiffWorkflow", "celery")


def versions() -> dict:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    return out


@dataclass
class Context:
    """What the runner hands a benchmark: a scratch folder, the database URL, the size knob."""
    workdir: Path
    database_url: str = ""
    quick: bool = False
    settings: dict = field(default_factory=dict)

    def scale(self, full: int, quick: int) -> int:
        return quick if self.quick else full


def timed(fn: Callable[[], object], runs: int = 5, warmup: int = 1) -> tuple[list[float], object]:
    """Run ``fn`` warmup+runs times; return the per-run seconds and the last result."""
    result = None
    for _ in range(warmup):
        result = fn()
    times = []
    for _ in range(runs):
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times, result


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def result(name: str, *, ops: int, engine_times: list[float], baseline_times: list[float], unit: str = "ops/s",
           higher_is_better: bool = True, per_op: list[float] | None = None, settings: dict | None = None,
           target: float | None = None, extra: dict | None = None) -> dict:
    """One JSON row: throughput of engine and baseline (medians) and their ratio.

    ``per_op`` (seconds per operation of the engine path, if measured one by one) gives p50/p99;
    otherwise they are derived from the run times.
    """
    e = statistics.median(engine_times)
    b = statistics.median(baseline_times)
    if unit == "ops/s":
        value, baseline = ops / e, ops / b
    else:  # a time: lower is better
        value, baseline = e, b
    ratio = value / baseline if higher_is_better else baseline / value
    samples = per_op or [t / ops for t in engine_times]
    row = {"name": name, "value": round(value, 3), "unit": unit, "baseline": round(baseline, 3),
           "ratio": round(ratio, 3), "runs": len(engine_times),
           "p50": percentile(samples, 0.5), "p99": percentile(samples, 0.99),
           "versions": versions(), "settings": settings or {}}
    if target is not None:
        row["target"] = target
        row["meets_target"] = ratio >= target
    if extra:
        row.update(extra)
    return row


def emit(row: dict) -> None:
    print(json.dumps(row, ensure_ascii=False, default=str), flush=True)


def new_context(quick: bool = False) -> Context:
    workdir = Path(tempfile.mkdtemp(prefix="loom-bench-"))
    return Context(workdir=workdir, database_url=os.environ.get("LOOM_BENCH_DATABASE_URL", ""), quick=quick)
