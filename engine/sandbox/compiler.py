"""Compile once, run many times: ``compile_expression`` / ``compile_script`` -> :class:`Compiled`.

Definitions are compiled when they are published (and cached here, by source, mode and name);
every record save, gateway or rule evaluation then only runs a code object. The compile step is
RestrictedPython's ``compile_restricted_eval/exec`` with :class:`~engine.sandbox.policy.LoomPolicy`
-- never a plain ``compile``/``exec`` of the source -- and reports every problem with the
definition's name, line and column.

Running: the guards are already bound into the code (``policy.bind_guards``), so an evaluation
is little more than ``eval(code, globals, variables)``. Expressions without nested scopes read the
caller's variables in place (no copy); code that loops or defines functions gets a
:class:`~engine.sandbox.budget.Run` up front, everything else only if it ever needs one.
"""
from __future__ import annotations

import ast
import bisect
import functools
import logging
import types
from typing import Any, Mapping

from RestrictedPython import compile_restricted_eval, compile_restricted_exec

from engine.errors import Problem
from engine.sandbox.api import PreparedApi, is_plain, prepare_api
from engine.sandbox.budget import DEFAULT_BUDGET, Budget, Run, _tl
from engine.sandbox.errors import ApiError, SandboxBudgetExceeded, SandboxCompileError, SandboxError, SandboxRuntimeError
from engine.sandbox.text import short_repr, text_size
from engine.sandbox.library import LIBRARY
from engine.sandbox.patterns import RegexMatch
from engine.sandbox.analysis import free_names, yields_data
from engine.sandbox.policy import bind_guards, make_policy, uses_ticking_guards

log = logging.getLogger("loom.sandbox")

MAX_SOURCE = 100_000
CACHE_SIZE = 4096

#: builtins scripts commonly reach for that Loom deliberately leaves out, with the reason
UNAVAILABLE = {
    "open": "scripts cannot read or write files",
    "__import__": "scripts cannot import modules",
    "compile": "scripts cannot compile code", "exec": "scripts cannot run code from text",
    "eval": "scripts cannot run code from text",
    "globals": "scripts cannot inspect namespaces", "locals": "scripts cannot inspect namespaces",
    "vars": "scripts cannot inspect namespaces", "dir": "scripts cannot inspect objects",
    "type": "scripts cannot inspect types; use isinstance()", "object": "scripts cannot use `object`",
    "super": "class features are not available", "setattr": "scripts cannot change objects' attributes",
    "delattr": "scripts cannot change objects' attributes", "input": "scripts cannot read input",
    "breakpoint": "scripts cannot start a debugger", "memoryview": "not available", "bytearray": "not available",
    "exit": "scripts cannot stop the process", "quit": "scripts cannot stop the process",
    "help": "not available", "id": "not available", "format": "use an f-string",
    "classmethod": "class features are not available", "staticmethod": "class features are not available",
    "property": "class features are not available", "issubclass": "scripts cannot inspect types",
    "pow": "use the ** operator", "print": "use log()",
}

#: globals of expressions that read their variables in place: the library is copied in as well, so a
#: library name is found in the second dict looked at (locals, globals) instead of the third
_BASE_GLOBALS = {**LIBRARY, "__builtins__": LIBRARY}
_SMALL = Budget(memory_mb=1)
_RESULT_TYPES = (RegexMatch, range, type({}.keys()), type({}.values()), type({}.items()))
_NESTED_SCOPES = (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.NamedExpr)


class Compiled:
    """A compiled expression or script. Immutable and shared between threads."""

    __slots__ = ("name", "source", "mode", "names", "code", "ticking", "in_place", "assigned", "fast", "checks")

    def __init__(self, name, source, mode, names, code, ticking, in_place, assigned, checks=True):
        self.name = name
        self.source = source
        self.mode = mode
        #: free variable names the code reads (record fields, task data, library names it uses)
        self.names: frozenset[str] = names
        self.code = code
        self.ticking = ticking          # loops, comprehensions or functions: needs a Run from the start
        self.in_place = in_place        # expression without nested scopes: variables used as locals
        self.assigned = assigned        # names a script binds at module level
        self.fast = mode == "eval" and in_place and not ticking
        #: does the result need a look before it leaves the sandbox? False when the expression can
        #: only produce data (a comparison, arithmetic, a method call...); for a group, the indexes
        #: of the parts that might produce a function or generator
        self.checks = checks

    def __repr__(self) -> str:
        return f"<Compiled {self.mode} {self.name!r}>"

    # -- running ---------------------------------------------------------------------------------

    def evaluate(self, variables: Mapping[str, Any], api: dict | None = None, budget: Budget | None = None,
                 *, messages: list | None = None):
        """Value of the expression over ``variables`` (record fields, task data).

        ``api``: per-call engine functions and values (see :func:`~engine.sandbox.api.api_namespace`;
        :func:`~engine.sandbox.api.prepare_api` once makes every later call cheaper). A variable
        shadows an API entry of the same name, which shadows the library. ``messages``: a list that
        receives what the expression logged.
        """
        if self.fast and api is None and budget is None and messages is None:
            # the common case (a computed field, a rule): no budget state at all -- the code has no
            # loops or calls of its own, and guards on big values charge the thread's ambient account
            try:
                value = eval(self.code, _BASE_GLOBALS, variables)
            except Exception as exc:
                raise self._failure(exc, _tl.run) from exc
        else:
            value = self._run(variables, api, budget, messages, "eval")
        checks = self.checks
        if checks is False or type(value) in _QUICK_RESULTS:
            return value
        if checks is True:
            return self._result(value)
        for i in checks:            # a group: only the parts that might produce a function
            self._result(value[i])
        return value

    def execute(self, variables: Mapping[str, Any], api: dict | None = None, budget: Budget | None = None,
                *, messages: list | None = None) -> dict:
        """Run the script; return the plain-data variables it left (a ``del`` removes one).

        Functions, API objects and names starting with ``_`` are not returned. ``variables`` is not
        changed (the script works on a shallow copy; lists and dicts inside are shared).
        """
        return self._run(variables, api, budget, messages, "exec")

    def _run(self, variables, api, budget, messages, mode):
        if mode != self.mode:
            what = "a script; run it with execute()" if mode == "eval" else "an expression; run it with evaluate()"
            raise TypeError(f"{self.name} is {what}")
        b = budget or DEFAULT_BUDGET
        if api is not None and type(api) is not PreparedApi:
            api = prepare_api(api)
        tl = _tl
        prev = tl.run
        # loops, functions or an outer run: a Run from the start; otherwise only if a guard or an API
        # call needs one (an API call may nest evaluations, which must inherit this one's deadline)
        state = Run(b, self.name, prev if type(prev) is Run else None) if (
            self.ticking or type(prev) is Run) else b
        if mode == "eval" and self.in_place:
            g = api.globals if api else _BASE_GLOBALS
            locals_ = variables
        else:
            g = dict(api) if api else {}
            g.update(variables)
            g["__builtins__"] = LIBRARY
            locals_ = g
        tl.run = state
        try:
            if mode == "eval":
                result = eval(self.code, g, locals_)
            else:
                exec(self.code, g)
        except Exception as exc:
            state = tl.run
            tl.run = prev
            raise self._failure(exc, state) from exc
        except BaseException:
            tl.run = prev
            raise
        state = tl.run
        tl.run = prev
        if state is not b:
            self._finish(state, messages)
        if mode == "eval":
            return result
        return self._leftovers(g, api)

    # -- after the run ---------------------------------------------------------------------------

    def _finish(self, run: Run, messages: list | None) -> None:
        if run.messages:
            if messages is not None:
                messages.extend(run.messages)
            for m in run.messages:
                log.info("%s: %s", self.name, m)
        if run.exceeded is not None:     # the script swallowed the stop (return in finally, ...)
            exc = run.exceeded
            raise self._budget_error(exc, None, run.messages)

    def _result(self, value):
        if is_plain(value) or isinstance(value, _RESULT_TYPES):
            return value
        raise SandboxRuntimeError(
            f"{self.name}: the expression produced {_kind(value)}; expressions must produce data",
            [Problem(f"the expression produced {_kind(value)}", file=self.name, code="result")], name=self.name)

    def _leftovers(self, g: dict, api) -> dict:
        del g["__builtins__"]
        if api:
            for key, value in api.items():
                if g.get(key) is value and key not in self.assigned:
                    del g[key]
        try:
            private = "\n_" in "\n" + "\n".join(g)      # a cheap test before looking key by key
        except TypeError:
            private = True
        if private:
            for key in [k for k in g if not isinstance(k, str) or k.startswith("_")]:
                del g[key]
        for key in self.assigned:
            if key in g and not is_plain(g[key]):
                del g[key]
        return g

    def _failure(self, exc: Exception, state) -> SandboxError:
        _shrink_chain(exc)
        line = _script_line(exc, self.name)
        run_messages = state.messages if type(state) is Run else []
        if isinstance(exc, SandboxBudgetExceeded):
            return self._budget_error(exc, line, run_messages)
        if type(state) is Run and state.exceeded is not None:
            return self._budget_error(state.exceeded, line, run_messages)
        if isinstance(exc, MemoryError):
            return self._budget_error(SandboxBudgetExceeded("stopped: the script ran out of memory", kind="memory"),
                                      line, run_messages)
        if isinstance(exc, RecursionError):
            return self._budget_error(SandboxBudgetExceeded(
                "stopped: nested too deeply (endless recursion or a deeply nested value)", kind="recursion"),
                line, run_messages)
        _shrink_chain(exc)
        original = exc.__cause__ if isinstance(exc, ApiError) and exc.__cause__ is not None else exc
        text = _exception_text(exc)
        where = f"{self.name}, line {line}" if line else self.name
        return SandboxRuntimeError(f"{where}: {text}", [Problem(text, file=self.name, line=line, code="runtime")],
                                   name=self.name, line=line, original=original, messages=run_messages)

    def _budget_error(self, exc: SandboxBudgetExceeded, line, messages) -> SandboxBudgetExceeded:
        where = f"{self.name}, line {line}" if line else self.name
        text = exc.message
        return SandboxBudgetExceeded(f"{where}: {text}", [Problem(text, file=self.name, line=line, code="budget")],
                                     kind=exc.kind, limit=exc.limit, name=self.name, line=line, messages=messages)


class CompiledGroup(Compiled):
    """Several expressions over the same variables, run as one: ``evaluate`` returns a tuple.

    A form saving a record checks all its validation rules (or visibility conditions) against the
    same fields; one evaluation instead of one per rule saves most of the per-call cost. Errors
    still name the expression: ``crm.order.rules[3], line 1: ZeroDivisionError: ...``.
    """

    __slots__ = ("parts", "starts")

    def _failure(self, exc, state):
        err = super()._failure(exc, state)
        line = err.line
        if not line or not self.starts:
            return err
        i = max(0, bisect.bisect_right(self.starts, line) - 1)
        part_name = f"{self.name}[{i}]"
        own_line = line - self.starts[i] + 1
        text = err.problems[0].message if err.problems else err.message
        cls = type(err)
        kw = {"kind": err.kind, "limit": err.limit} if isinstance(err, SandboxBudgetExceeded) else {
            "original": getattr(err, "original", None)}
        return cls(f"{part_name} `{_short(self.parts[i])}`, line {own_line}: {text}",
                   [Problem(text, file=part_name, line=own_line, code=err.problems[0].code if err.problems else None)],
                   name=part_name, line=own_line, messages=err.messages, **kw)


def _short(source: str) -> str:
    one_line = " ".join(source.split())
    return one_line if len(one_line) <= 60 else one_line[:57] + "..."


def compile_expressions(sources, name: str = "<expressions>") -> CompiledGroup:
    """Compile expressions to be evaluated together; ``evaluate`` returns one value per source.

    Each source is first compiled on its own, so a compile error names ``name[i]`` and the
    expression's own line and column.
    """
    return _compile_group(tuple(sources), name)


@functools.lru_cache(maxsize=CACHE_SIZE // 4)
def _compile_group(sources: tuple, name: str) -> CompiledGroup:
    problems: list[Problem] = []
    for i, src in enumerate(sources):
        try:
            _compile(src, "eval", f"{name}[{i}]")
        except SandboxCompileError as exc:
            problems.extend(exc.problems)
    if problems:
        first = problems[0]
        raise SandboxCompileError(f"{first.file}, line {first.line}: {first.message}" if first.line else
                                  f"{first.file}: {first.message}", problems, name=name, line=first.line)
    starts, lines, chunks = [], 2, ["(\n"]
    for src in sources:
        starts.append(lines)
        chunks.append(f"({src}\n),\n")
        lines += src.count("\n") + 2
    chunks.append(")")
    single = _compile_cached("".join(chunks), "eval", name)
    group = CompiledGroup.__new__(CompiledGroup)
    for slot in Compiled.__slots__:
        setattr(group, slot, getattr(single, slot))
    group.parts = sources
    group.starts = starts
    unsure = tuple(i for i, src in enumerate(sources) if _compile_cached(src, "eval", f"{name}[{i}]").checks)
    group.checks = unsure or False
    return group


_QUICK_RESULTS = frozenset({bool, int, float, str, type(None)}) | frozenset(
    {__import__("decimal").Decimal, __import__("datetime").date, __import__("datetime").datetime})


def _kind(value) -> str:
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)) or callable(value):
        return "a function"
    if isinstance(value, types.GeneratorType):
        return "a generator (wrap it in list(...))"
    return f"a {type(value).__name__}"


def _shrink_chain(exc: BaseException) -> None:
    """Exceptions leave the sandbox chained to what the script raised (``__cause__``/``__context__``);
    logs and tracebacks print those. A script can put a huge shared structure in an exception's
    arguments, so such arguments are replaced by a short text before anything prints them."""
    seen = set()
    todo = [exc]
    while todo and len(seen) < 50:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if e.args and not isinstance(e, SandboxError):
            size = text_size(e.args, _SMALL)
            if size is None or size > 10_000:
                try:
                    e.args = (_exception_text(e),)
                except Exception:  # pragma: no cover - an exception type with read-only args
                    pass
        todo.append(e.__cause__)
        todo.append(e.__context__)


def _script_line(exc: BaseException, filename: str) -> int | None:
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _exception_text(exc: BaseException) -> str:
    name = type(exc).__name__
    if isinstance(exc, NameError) and getattr(exc, "name", None) in UNAVAILABLE:
        return f"NameError: `{exc.name}` is not available in scripts ({UNAVAILABLE[exc.name]})"
    args = exc.args
    if not args:
        return name
    if len(args) == 1 and type(args[0]) is str:
        text = args[0]
    else:
        text = short_repr.repr(args[0] if len(args) == 1 else args)
    if len(text) > 500:
        text = text[:500] + "..."
    return f"{name}: {text}"


# -- compiling ---------------------------------------------------------------------------------------


def compile_expression(source: str, name: str = "<expression>") -> Compiled:
    """Compile an expression (``qty * price``); raises :class:`SandboxCompileError`."""
    return _compile(source, "eval", name)


def compile_script(source: str, name: str = "<script>") -> Compiled:
    """Compile a script (statements); raises :class:`SandboxCompileError`."""
    return _compile(source, "exec", name)


def check(source: str, mode: str = "eval", name: str | None = None) -> list[Problem]:
    """For the designer: every problem of ``source`` as a list (empty when it compiles). Never raises."""
    name = name or ("<expression>" if mode == "eval" else "<script>")
    if mode not in ("eval", "exec"):
        return [Problem(f"unknown mode {mode!r}; use 'eval' for expressions or 'exec' for scripts", file=name)]
    try:
        _compile(source, mode, name)
    except SandboxCompileError as exc:
        return list(exc.problems)
    except Exception as exc:  # pragma: no cover - a bug in the compiler must not break the designer
        return [Problem(f"could not check the script: {type(exc).__name__}: {exc}", file=name)]
    return []


def _compile(source, mode, name) -> Compiled:
    if not isinstance(source, str):
        raise SandboxCompileError(f"{name}: the source must be text, not {type(source).__name__}",
                                  [Problem("the source must be text", file=name, code="syntax")], name=name)
    if not isinstance(name, str):
        raise TypeError("name must be text")
    return _compile_cached(source, mode, name)


@functools.lru_cache(maxsize=CACHE_SIZE)
def _compile_cached(source: str, mode: str, name: str) -> Compiled:
    def fail(problems):
        first = problems[0]
        loc = f"{name}, line {first.line}" + (f", column {first.column}" if first.column else "") \
            if first.line else name
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return SandboxCompileError(f"{loc}: {first.message}{more}", problems, name=name, line=first.line)

    if len(source) > MAX_SOURCE:
        raise fail([Problem(f"the source is {len(source):,} characters long; at most {MAX_SOURCE:,}",
                            file=name, code="syntax")])
    if not source.strip():
        raise fail([Problem("the source is empty", file=name, line=1, code="syntax")])
    try:
        tree = ast.parse(source, filename=name, mode=mode)
    except SyntaxError as exc:
        raise fail([_syntax_problem(exc, name, mode, source)]) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise fail([Problem(f"cannot parse the source: {type(exc).__name__}: {exc}", file=name, code="syntax")]) \
            from None

    in_place = mode == "eval" and not any(isinstance(n, _NESTED_SCOPES) for n in ast.walk(tree))
    checks = mode == "eval" and not yields_data(tree.body)
    names, assigned = free_names(tree)
    problems: list[Problem] = []
    info: dict = {}
    policy = make_policy(name, problems, info)
    compile_restricted = compile_restricted_eval if mode == "eval" else compile_restricted_exec
    try:
        result = compile_restricted(tree, filename=name, policy=policy)
    except SyntaxError as exc:      # the compiler's own checks (return outside function, ...)
        raise fail([_syntax_problem(exc, name, mode, source)]) from None
    except (RecursionError, MemoryError) as exc:
        raise fail([Problem(f"the source is nested too deeply ({type(exc).__name__})", file=name,
                            code="syntax")]) from None
    if problems or result.errors or result.code is None:
        problems = problems or [Problem(e, file=name, code="restricted") for e in result.errors]
        problems.sort(key=lambda p: (p.line or 0, p.column or 0))
        raise fail(problems)
    code = bind_guards(result.code)
    return Compiled(name, source, mode, frozenset(names), code, uses_ticking_guards(info.get("guards", set())),
                    in_place, frozenset(assigned), checks)


def _syntax_problem(exc: SyntaxError, name: str, mode: str, source: str) -> Problem:
    msg = exc.msg or "invalid syntax"
    if mode == "eval" and msg.startswith("invalid syntax") and any(
            isinstance(n, ast.stmt) for n in _try_parse(source, "exec")):
        msg += " (an expression cannot contain statements such as assignments or `if` blocks)"
    return Problem(msg, file=name, line=exc.lineno, column=exc.offset, code="syntax")


def _try_parse(source, mode):
    try:
        return ast.walk(ast.parse(source, mode=mode))
    except Exception:
        return ()
