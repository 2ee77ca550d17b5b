"""Time, memory, iteration and recursion budgets, enforced inside the evaluating thread.

Why not signals or rlimits: ``SIGALRM`` only reaches the main thread and ``RLIMIT_AS`` limits the
whole process, while Loom evaluates scripts in web-server and worker threads that must keep
serving. So the budget travels with the evaluation, in a thread-local :class:`Run`, and the code
checks it itself:

* every place Python code can repeat -- each item a ``for`` loop or comprehension takes
  (``_getiter_``), the top of every ``while`` body, every call of a function or lambda the script
  defines -- calls :func:`tick`. A tick is a counter decrement; every ``batch`` ticks
  :meth:`Run.check` looks at the clock, the iteration count and (every few milliseconds) the
  process's resident memory. The batch adapts so checks happen about once a millisecond whatever
  the loop body costs;
* operations that can build a big value from a small one (``*``, ``**``, ``<<``, ``+``, ``%``,
  padding, ``join``, ``range`` ...) estimate the size first and call :func:`charge`, which refuses
  anything above the budget before a byte is allocated (see ``guards.py``);
* once a budget is exceeded the run stays exceeded: every later tick raises again, exception
  handlers in the script re-raise, and a run that swallowed the error still fails at the end.

Memory beyond single values is measured as growth of the process's resident set since the run
started. That is exact for one evaluation at a time and conservative when other threads allocate
at the same moment (they count against the script); see the package docstring for what this
design cannot stop.
"""
from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from time import monotonic

from engine.sandbox.errors import SandboxBudgetExceeded

MB = 1 << 20


@dataclass(frozen=True)
class Budget:
    """Limits for one evaluation. Pass one per call or rely on :data:`DEFAULT_BUDGET`.

    ``seconds``: wall-clock time of the evaluation, API calls included (a script that loops over
    slow API calls is still stopped). ``memory_mb``: the largest single value and the largest growth
    of the process's memory the script may cause. ``max_iterations``: loop iterations and calls
    together -- deterministic, unlike time. ``max_depth``: nesting of calls to functions the script
    defines. ``max_int_bits``: the largest integer an operation may produce (huge integers make
    every later operation slow, long before they use much memory).
    """

    seconds: float = 1.0
    memory_mb: float = 64
    max_iterations: int = 10_000_000
    max_depth: int = 100
    max_int_bits: int = 100_000

    def __post_init__(self):
        for name in ("seconds", "memory_mb", "max_iterations", "max_depth", "max_int_bits"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Budget.{name} must be a positive number, got {value!r}")

    @property
    def max_bytes(self) -> int:
        return int(self.memory_mb * MB)

    @property
    def max_items(self) -> int:
        """Most items a single materialised collection may hold (about 64 bytes per item)."""
        return max(1024, self.max_bytes // 64)


DEFAULT_BUDGET = Budget()

#: checks happen every ``batch`` ticks; the batch adapts to keep checks ~1 ms apart
_MIN_BATCH, _MAX_BATCH, _FIRST_BATCH = 1, 4096, 16
_CHECK_EVERY = 0.001
_RSS_EVERY = 0.004


class _Local(threading.local):
    run = None      # a Run, a Budget (an evaluation that never needed a Run yet), or None
    ambient_bytes = 0
    ambient_at = 0.0


_tl = _Local()


class Run:
    """The budget state of one evaluation in one thread."""

    __slots__ = ("budget", "name", "deadline", "left", "batch", "ticks", "depth", "max_depth",
                 "exceeded", "messages", "rss0", "next_rss", "last_check", "max_iterations")

    def __init__(self, budget: Budget, name: str = "<script>", parent: "Run | None" = None):
        now = monotonic()
        self.budget = budget
        self.name = name
        deadline = now + budget.seconds
        if parent is not None and parent.deadline < deadline:
            deadline = parent.deadline      # an API call cannot buy a nested script more time
        self.deadline = deadline
        self.batch = _FIRST_BATCH
        self.left = _FIRST_BATCH
        self.ticks = 0
        self.depth = 0
        self.max_depth = budget.max_depth
        self.max_iterations = budget.max_iterations
        self.exceeded: SandboxBudgetExceeded | None = None
        self.messages: list[str] = []
        self.rss0: int | None = None
        self.next_rss = now
        self.last_check = now

    # -- checks ----------------------------------------------------------------------------------

    def check(self) -> None:
        """Called when ``left`` runs out: the clock, the iteration count, memory; adapt the batch."""
        if self.exceeded is not None:
            self.left = -1
            raise self._again()
        now = monotonic()
        self.ticks += self.batch - self.left
        if now > self.deadline:
            self.fail("time", f"ran longer than its time budget of {_secs(self.budget.seconds)}",
                      self.budget.seconds)
        if self.ticks > self.max_iterations:
            self.fail("iterations", f"ran more than {self.max_iterations:,} loop iterations and calls",
                      self.max_iterations)
        if now >= self.next_rss:
            self.next_rss = now + _RSS_EVERY
            self.check_memory(0)
        elapsed = now - self.last_check
        self.last_check = now
        if elapsed > 2 * _CHECK_EVERY and self.batch > _MIN_BATCH:
            self.batch = max(_MIN_BATCH, self.batch // 4)
        elif elapsed < _CHECK_EVERY / 2 and self.batch < _MAX_BATCH:
            self.batch *= 2
        self.left = self.batch

    def check_memory(self, extra: int) -> None:
        """Fail if the process grew by more than the budget since this run's first look."""
        rss = resident_bytes()
        if rss is None:
            return
        if self.rss0 is None:
            self.rss0 = rss
            return
        grown = rss - self.rss0 + extra
        if grown > self.budget.max_bytes:
            self.fail("memory", f"used more than its memory budget of {_mb(self.budget.max_bytes)} "
                                f"(the process grew by {_mb(grown)})", self.budget.max_bytes)

    def fail(self, kind: str, message: str, limit) -> None:
        exc = SandboxBudgetExceeded(f"stopped: the script {message}", kind=kind, limit=limit, name=self.name)
        if self.exceeded is None:
            self.exceeded = exc
        self.left = -1          # every later tick lands in check() and raises again
        raise exc

    def _again(self) -> SandboxBudgetExceeded:
        first = self.exceeded
        return SandboxBudgetExceeded(first.message, kind=first.kind, limit=first.limit, name=self.name)

    # -- calls of functions the script defined ---------------------------------------------------

    def too_deep(self) -> None:
        self.depth -= 1
        self.fail("recursion", f"nested calls deeper than {self.max_depth} (endless recursion?)", self.max_depth)


def current_run() -> Run | None:
    """The Run of the evaluation this thread is in, creating it from a bare Budget if needed.

    None inside a fast evaluation (an expression without loops or calls of its own, run with the
    default budget and no state at all): callers then use a throwaway Run or the ambient account.
    """
    run = _tl.run
    if run is None or type(run) is Run:
        return run
    run = Run(run)          # a tick-free evaluation that now needs state (a big allocation, a log line)
    _tl.run = run
    return run


def current_budget() -> Budget:
    run = _tl.run
    if run is None:
        return DEFAULT_BUDGET
    return run if type(run) is Budget else run.budget


def tick() -> None:
    """One unit of work (a loop iteration, a call). Kept tiny: it runs inside every loop."""
    run = _tl.run
    if type(run) is not Run:
        run = current_run() or Run(DEFAULT_BUDGET)
    run.left -= 1
    if run.left < 0:
        run.check()


def charge(nbytes: int, what: str) -> None:
    """Refuse an operation about to build a value of ``nbytes`` if it breaks the memory budget.

    Called only on the slow path of a guard (a result that may be big), so it can afford to look
    at the process's memory for anything over a megabyte. Without a Run (a fast evaluation) the big
    values built by this thread within a quarter of a second are added up instead.
    """
    budget = current_budget()
    if nbytes > budget.max_bytes:
        raise memory_error(what, nbytes, budget.max_bytes)
    if nbytes >= MB:
        run = _tl.run
        if type(run) is Budget:
            run = current_run()
        if run is not None:
            if run.exceeded is not None:
                raise run._again()
            run.check_memory(nbytes)
        else:
            now = monotonic()
            if now - _tl.ambient_at > 0.25:
                _tl.ambient_bytes = 0
            _tl.ambient_at = now
            _tl.ambient_bytes += nbytes
            if _tl.ambient_bytes > budget.max_bytes:
                raise memory_error(f"{what}, with the other large values built just before,",
                                   _tl.ambient_bytes, budget.max_bytes)


def charge_items(count: int, what: str) -> None:
    """Like :func:`charge` for a collection of ``count`` items (pointers plus small objects)."""
    budget = current_budget()
    if count > budget.max_items:
        raise SandboxBudgetExceeded(
            f"stopped: {what} would hold {count:,} items; the memory budget allows {budget.max_items:,}",
            kind="memory", limit=budget.max_bytes)
    if count >= 16384:
        charge(count * 8, what)


def memory_error(what: str, nbytes: int, limit: int) -> SandboxBudgetExceeded:
    run = _tl.run
    exc = SandboxBudgetExceeded(f"stopped: {what} would need {_mb(nbytes)}; the memory budget is {_mb(limit)}",
                                kind="memory", limit=limit)
    if type(run) is Run and run.exceeded is None:
        run.exceeded = exc
        run.left = -1
    return exc


def _mb(n: int) -> str:
    if n >= 10 * MB:
        return f"{n / MB:,.0f} MB"
    if n >= MB:
        return f"{n / MB:.1f} MB"
    return f"{n / 1024:.0f} KB" if n >= 1024 else f"{n} bytes"


def _secs(s: float) -> str:
    return f"{s:g} s"


# -- resident memory ---------------------------------------------------------------------------

_statm = {"pid": None, "fd": None}
_statm_lock = threading.Lock()
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int | None:
    """Current resident set size of this process, or None where we cannot read it cheaply.

    Linux: ``/proc/self/statm`` through a kept-open descriptor (a few microseconds), reopened after
    a fork because the descriptor names the process that opened it. Elsewhere: peak RSS from
    ``getrusage``, which still catches growth, only never sees memory given back.
    """
    pid = os.getpid()
    if _statm["pid"] != pid:
        with _statm_lock:
            if _statm["pid"] != pid:
                try:
                    _statm["fd"] = os.open("/proc/self/statm", os.O_RDONLY)
                except OSError:
                    _statm["fd"] = None
                _statm["pid"] = pid
    fd = _statm["fd"]
    if fd is not None:
        try:
            return int(os.pread(fd, 64, 0).split()[1]) * _PAGE
        except (OSError, ValueError, IndexError):
            pass
    try:
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
    except Exception:
        return None
