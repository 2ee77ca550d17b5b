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

    def execute(self, script, context, external_context=None):
        variables = {**(external_context or {}), **context}
        result = compiled(script, "exec").execute(variables, api=self.api)
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
    """A script engine whose service failures keep their real message (and the engine error)."""

    def call_service(self, task, **kwargs):
        try:
            return self.environment.call_service(task.data, task=task, **kwargs)
        except WorkflowTaskException:
            raise
        except Exception as exc:
            message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            raise WorkflowTaskException(f"service `{kwargs.get('operation_name')}` failed: {message}",
                                        task=task, exception=exc) from exc
