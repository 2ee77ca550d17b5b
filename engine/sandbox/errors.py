"""The errors a sandboxed expression or script can end with.

Callers catch :class:`SandboxError` and show ``message`` to the analyst who wrote the script: every
message names the definition (the ``name`` given at compile time) and the line, because "line 3 of
`crm.customer.risk_score`" is what lets someone fix a script in the designer. Each error also
carries ``problems`` (``engine.errors.Problem``) so the designer and the bundle validator can place
it like any other input problem.
"""
from __future__ import annotations

from engine.errors import InvalidInput, LoomError, Problem


class SandboxError(LoomError):
    """Base of everything the sandbox raises on purpose."""

    status = 500
    title = "Script error"

    def __init__(self, message: str = "", problems: list[Problem] | None = None, *, name: str | None = None,
                 line: int | None = None, messages: list[str] | None = None, **extra):
        super().__init__(message, problems, **extra)
        self.name = name
        self.line = line
        #: what the script logged with ``log(...)`` before it stopped; often the best clue
        self.messages = list(messages or [])


class SandboxCompileError(SandboxError, InvalidInput):
    """The source is not valid Python or uses something scripts may not use; nothing ran.

    ``problems`` lists every problem found (file = definition name, line, column), not just the
    first, so the designer can mark them all at once.
    """

    status = 422
    title = "Invalid script"


class SandboxBudgetExceeded(SandboxError):
    """The script ran out of its time, memory, iteration or recursion budget and was stopped.

    ``kind`` is one of ``"time"``, ``"memory"``, ``"iterations"``, ``"recursion"``; ``limit`` is
    the budget that was hit, in the unit of that kind (seconds, bytes, iterations, call depth).
    A script cannot catch this: handlers re-raise it, and a run that swallowed it still fails.
    """

    status = 422
    title = "Script exceeded its budget"

    def __init__(self, message: str = "", problems: list[Problem] | None = None, *, kind: str = "time",
                 limit: float | int | None = None, **kw):
        super().__init__(message, problems, **kw)
        self.kind = kind
        self.limit = limit


class SandboxRuntimeError(SandboxError):
    """An exception raised inside the script (or by an API function it called), wrapped.

    ``original`` is the exception itself: for an engine error raised by an API function (say
    ``Forbidden`` from ``records.update``) that is the engine's exception, and ``status`` follows it.
    """

    status = 422
    title = "Script failed"

    def __init__(self, message: str = "", problems: list[Problem] | None = None, *,
                 original: BaseException | None = None, **kw):
        super().__init__(message, problems, **kw)
        self.original = original
        if isinstance(original, LoomError):
            self.status = original.status


class ApiError(Exception):
    """What a script sees when an engine API function it called fails.

    Only the message crosses into the script (``args == (message,)``): the engine's own exception
    may hold connections, statements or other rows, so it stays outside, on
    :attr:`SandboxRuntimeError.original`.
    """
