"""Every expression and script a process runs goes through :mod:`engine.sandbox`.

SpiffWorkflow sends script tasks, pre/post scripts, gateway conditions, timer expressions and
service-task parameters to one ``environment``; the upstream default calls bare ``eval``/``exec``.
:class:`RestrictedTaskDataEnvironment` replaces it with sandbox-compiled code (compiled once per
source text and cached), and :class:`EngineScriptEngine` replaces ``call_service``, whose upstream
version turns every service failure into ``NameError: script``.
"""
from __future__ import annotations

import json
import threading
from typing import Callable

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

#: a script task may ask for more time than the sandbox's default budget with the property
#: ``budget.seconds`` (a batch over many records running in a background step); never more than this
BUDGET_PROPERTY = "budget.seconds"
MAX_SCRIPT_SECONDS = 30.0

_cache: dict[tuple[str, str], object] = {}
_cache_lock = threading.Lock()
_CACHE_MAX = 4096


def compiled(source: str, mode: str, name: str = "<bpmn>"):
    """The sandbox-compiled code for ``source`` (``mode`` is "eval" or "exec"), cached."""
    key = (mode, source)
    code = _cache.get(key)
    if code is None:
        from engine.sandbox import compile_expression, compile_script
        code = compile_expression(source, name) if mode == "eval" else compile_script(source, name)
        with _cache_lock:
            if len(_cache) >= _CACHE_MAX:
                _cache.clear()
            _cache[key] = code
    return code


def budget_problem(raw: str) -> str | None:
    """Why ``raw`` is not a valid ``budget.seconds`` value, or None."""
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        return f"`{BUDGET_PROPERTY}` must be a number of seconds, not `{raw}`"
    if not 0 < seconds <= MAX_SCRIPT_SECONDS:
        return f"`{BUDGET_PROPERTY}` must be more than 0 and at most {MAX_SCRIPT_SECONDS:g} seconds, not {raw}"
    return None


def task_budget(task):
    """The sandbox budget a script task declared (``budget.seconds``), or None for the default."""
    props = (getattr(task.task_spec, "extensions", None) or {}).get("properties") or {}
    raw = props.get(BUDGET_PROPERTY)
    if raw in (None, "") or budget_problem(raw):
        return None
    from dataclasses import replace
    from engine.sandbox import DEFAULT_BUDGET
    return replace(DEFAULT_BUDGET, seconds=float(raw))


def _plain(value) -> bool:
    return not callable(value) and type(value).__module__ in {"builtins", "datetime", "decimal", "uuid"}


class RestrictedTaskDataEnvironment(BasePythonScriptEngineEnvironment):
    """Evaluates and executes through the sandbox, with the engine API of the step's actor."""

    def __init__(self, api: dict | None = None, services: Callable | None = None):
        super().__init__({})
        self.api = api
        self.services = services

    def evaluate(self, expression, context, external_context=None):
        variables = {**(external_context or {}), **context}
        return compiled(expression.strip(), "eval").evaluate(variables, api=self.api)

    def execute(self, script, context, external_context=None, budget=None):
        variables = {**(external_context or {}), **context}
        result = compiled(script, "exec").execute(variables, api=self.api, budget=budget)
        if isinstance(result, dict):
            for k, v in result.items():
                if not k.startswith("_") and _plain(v) and (external_context is None or k not in external_context):
                    context[k] = v
            for k in [k for k in context if k not in result and not k.startswith("_")]:
                del context[k]      # the sandbox returns the whole namespace: a missing name was `del`eted
        return True

    def call_service(self, context, operation_name=None, operation_params=None, task=None, **_):
        if self.services is None:
            raise RuntimeError(f"no service actions are available to call `{operation_name}`")
        params = {k: p.get("value") if isinstance(p, dict) else p for k, p in (operation_params or {}).items()}
        return json.dumps(self.services(operation_name, params, task), default=str)


class EngineScriptEngine(PythonScriptEngine):
    """A script engine whose service failures keep their real message (and the engine error), and
    whose script tasks run with the budget they declare (``budget.seconds``)."""

    def execute(self, task, script, external_context=None):
        budget = task_budget(task)
        if budget is None or not isinstance(self.environment, RestrictedTaskDataEnvironment):
            return super().execute(task, script, external_context)
        try:
            return self.environment.execute(script, task.data, external_context or {}, budget=budget)
        except Exception as err:
            raise self.create_task_exec_exception(task, script, err) from err

    def call_service(self, task, **kwargs):
        try:
            return self.environment.call_service(task.data, task=task, **kwargs)
        except WorkflowTaskException:
            raise
        except Exception as exc:
            message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            raise WorkflowTaskException(f"service `{kwargs.get('operation_name')}` failed: {message}",
                                        task=task, exception=exc) from exc
