"""Install-time checks of plugin scripts beyond what the sandbox compiler refuses.

The compiler already refuses imports, private names, ``format`` and friends. Some things it leaves
to run time -- calling ``open`` or ``eval`` is a NameError only when the line runs, and
``records.x = 1`` fails only when executed. A plugin is installed once and then runs unattended in
every request, so we refuse those at install with file and line, where IT can still fix them.
"""
from __future__ import annotations

import ast

from engine.errors import Problem
from engine.sandbox import standard_api

try:        # the reasons the sandbox gives for builtins it leaves out
    from engine.sandbox.compiler import UNAVAILABLE as _UNAVAILABLE
except ImportError:  # pragma: no cover - the sandbox moved it
    _UNAVAILABLE = {}

UNAVAILABLE = {"open": "scripts cannot read or write files", "eval": "scripts cannot run code from text",
               "exec": "scripts cannot run code from text", "compile": "scripts cannot compile code",
               "globals": "scripts cannot inspect namespaces", "vars": "scripts cannot inspect namespaces",
               "type": "scripts cannot inspect types", "setattr": "scripts cannot change objects' attributes",
               "delattr": "scripts cannot change objects' attributes", **_UNAVAILABLE}

#: names the engine gives plugin scripts (besides the standard library): never to be written to
ENGINE_NAMES = frozenset({"records", "workflow", "notify", "http", "outbox", "config", "plugin", "user"})


def lint(source: str, file: str, extra_names=()) -> list[Problem]:
    """Problems (file, line, column) of a script that compiles but would fail or misbehave when run."""
    try:
        tree = ast.parse(source, filename=file)
    except SyntaxError:
        return []           # the compiler reports it
    protected = set(standard_api()) | ENGINE_NAMES | set(extra_names)
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    bound |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    bound |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments)
              for a in n.posonlyargs + n.args + n.kwonlyargs + [x for x in (n.vararg, n.kwarg) if x]}
    problems = []

    def add(node, message, code):
        problems.append(Problem(message, file=file, line=node.lineno, column=node.col_offset + 1, code=code))

    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in UNAVAILABLE \
                and node.id not in bound:
            add(node, f"`{node.id}` is not available in scripts ({UNAVAILABLE[node.id]})", "unavailable")
        elif isinstance(node, (ast.Attribute, ast.Subscript)) and isinstance(node.ctx, (ast.Store, ast.Del)):
            root = node.value
            while isinstance(root, (ast.Attribute, ast.Subscript)):
                root = root.value
            if isinstance(root, ast.Name) and root.id in protected and root.id not in bound:
                add(node, f"scripts cannot change `{root.id}` (an engine object)", "api_write")
    problems.sort(key=lambda p: (p.line or 0, p.column or 0))
    return problems


def functions_of(source: str) -> set[str]:
    """Top-level function names a script defines (hooks must name one of them)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
