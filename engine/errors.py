"""Errors every package shares.

A `Problem` is one thing wrong with some input, located as precisely as we can: the file, line
and column of a definition, the path inside the document (``fields/3/options``) or the field of a
record. Everything that rejects input -- the bundle validator, the record service, the sandbox
compiler, the BPMN deployer -- reports a list of problems at once rather than stopping at the
first, so an analyst can fix them in one go.
"""
from __future__ import annotations

from dataclasses import dataclass, field, asdict
from typing import Any


@dataclass(frozen=True)
class Problem:
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    path: str | None = None          # location inside a document: "fields/3/options/0"
    field: str | None = None         # a record field, for record validation
    code: str | None = None          # machine-readable kind: "required", "unique", "schema", ...

    def where(self) -> str:
        parts = []
        if self.file:
            loc = self.file
            if self.line:
                loc += f":{self.line}"
                if self.column:
                    loc += f":{self.column}"
            parts.append(loc)
        if self.path:
            parts.append(self.path)
        if self.field and not self.path:
            parts.append(f"field `{self.field}`")
        return ": ".join(parts)

    def __str__(self) -> str:
        where = self.where()
        return f"{where}: {self.message}" if where else self.message

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


class LoomError(Exception):
    """Base of every error the engine raises on purpose."""

    status = 500
    title = "Internal error"

    def __init__(self, message: str = "", problems: list[Problem] | None = None, **extra: Any):
        self.problems = list(problems or [])
        if not message and self.problems:
            message = "; ".join(str(p) for p in self.problems[:5])
            if len(self.problems) > 5:
                message += f" (and {len(self.problems) - 5} more)"
        super().__init__(message or self.title)
        self.message = message or self.title
        self.extra = extra


class InvalidInput(LoomError):
    """Input (a definition, a record, a script) is wrong; nothing was changed."""

    status = 422
    title = "Invalid input"


class Unauthorized(LoomError):
    """No one is logged in, or the credentials are unknown, expired or revoked."""

    status = 401
    title = "Unauthorized"


class NotFound(LoomError):
    status = 404
    title = "Not found"


class Forbidden(LoomError):
    status = 403
    title = "Forbidden"


class Conflict(LoomError):
    """A stale write: the record or definition changed since the caller read it."""

    status = 409
    title = "Conflict"
