"""The sandbox: the one safe home for every expression and script in Loom.

Computed fields, visibility and validation rules, workflow conditions and scripts, report filters,
monitoring-rule conditions and plugin scripts all go through here::

    from engine.sandbox import compile_expression, compile_script, Budget

    total = compile_expression("(qty * price * (1 - discount)).quantize(Decimal('0.01'))", "crm.order.total")
    total.names                          # {'qty', 'price', 'discount', 'Decimal'}
    total.evaluate({"qty": 3, "price": Decimal("9.99"), "discount": Decimal("0.1")})

    script = compile_script(source, "crm.onboarding.score")
    task_data = script.execute(task_data, api={"records": records_api}, budget=Budget(seconds=2))

Layers (each module says why it exists): ``policy`` (compile-time rules, on RestrictedPython),
``guards`` (what compiled code calls instead of touching objects), ``budget`` (time, memory,
iterations, recursion -- per thread, no signals), ``api`` (engine functions as opaque callables),
``library`` (the curated functions instead of imports), ``calendar`` (working days),
``compiler`` (compile once, cache, run, report).

Contracts callers rely on: ``variables`` are plain data (a variable shadows an ``api`` entry of
the same name, which shadows the library); ``api`` entries are wrapped so scripts can call them but
not reach into them -- build the dict once with ``prepare_api`` or ``api_namespace``; ``execute``
returns the plain-data variables the script left (``del`` honoured; functions, API entries and
``_`` names dropped); ``names`` lists the free names the code reads (intersect with the record's
fields to get a computed field's dependencies); ``compile_expressions`` runs a form's rules in one
evaluation.

What the budget cannot stop, by design of an in-process sandbox: a single C-level operation
already running is not interrupted, and it holds the interpreter lock while it runs (summing ten
million numbers, sorting a million items, hashing or comparing a deeply self-similar nested
tuple); the size limits bound each such operation, so the overrun is bounded too. Memory growth
beyond single values is measured on the whole process, so heavy allocation by other threads during
a run counts against the script. Untrusted third-party code should additionally run in a worker
process with a hard time limit.
"""
from engine.sandbox.api import ApiFunction, ApiNamespace, PreparedApi, api_function, api_namespace, prepare_api
from engine.sandbox.budget import DEFAULT_BUDGET, Budget
from engine.sandbox.calendar import (HolidayCalendar, add_working_days, default_calendar, is_working_day,
                                     set_default_calendar, working_days_between)
from engine.sandbox.compiler import (Compiled, CompiledGroup, check, compile_expression, compile_expressions,
                                     compile_script)
from engine.sandbox.errors import (ApiError, SandboxBudgetExceeded, SandboxCompileError, SandboxError,
                                   SandboxRuntimeError)
from engine.sandbox.library import LIBRARY as _LIBRARY


def standard_api() -> dict:
    """The curated library every script sees (a copy: changing it changes nothing)."""
    return {k: v for k, v in _LIBRARY.items() if not k.startswith("_")}


__all__ = [
    "SandboxError", "SandboxCompileError", "SandboxBudgetExceeded", "SandboxRuntimeError", "ApiError",
    "Budget", "DEFAULT_BUDGET", "Compiled", "CompiledGroup", "compile_expression", "compile_script",
    "compile_expressions", "check", "standard_api",
    "api_namespace", "api_function", "prepare_api", "ApiNamespace", "ApiFunction", "PreparedApi",
    "HolidayCalendar", "add_working_days", "working_days_between", "is_working_day", "default_calendar",
    "set_default_calendar",
]
