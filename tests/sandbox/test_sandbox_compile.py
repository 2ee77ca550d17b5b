"""Compiling: RestrictedPython under the hood, every problem located, each source compiled once."""
from __future__ import annotations

import pytest

from engine.errors import InvalidInput
from engine.sandbox import SandboxCompileError, check, compile_expression, compile_script
from engine.sandbox import compiler


def test_syntax_errors_name_definition_line_and_column():
    with pytest.raises(SandboxCompileError) as info:
        compile_script("x = 1\ny = (2 +\n", "crm.customer.score")
    err = info.value
    assert isinstance(err, InvalidInput) and err.status == 422
    assert err.message.startswith("crm.customer.score, line 2, column")
    p = err.problems[0]
    assert p.file == "crm.customer.score" and p.line == 2 and p.column and p.code == "syntax"


def test_statements_in_an_expression_get_a_hint():
    with pytest.raises(SandboxCompileError, match="an expression cannot contain statements"):
        compile_expression("x = 1", "crm.customer.visible_if")


def test_every_policy_problem_is_reported_at_once():
    problems = check("a = x.__class__\nimport os\nclass K:\n    pass\nb = y._secret", mode="exec", name="plugin.p")
    assert [(p.line, p.file) for p in problems] == [(1, "plugin.p"), (2, "plugin.p"), (3, "plugin.p"),
                                                     (5, "plugin.p")]
    assert all(p.column for p in problems)
    assert "import" in problems[1].message and "class definitions" in problems[2].message


def test_check_never_raises():
    assert check("qty * price") == []
    assert check("qty *") and check("", name="x")[0].message == "the source is empty"
    assert check(None)[0].message == "the source must be text"
    assert check("1", mode="single")[0].message.startswith("unknown mode")
    assert check("(" * 500 + ")" * 500)     # too deep for the parser: a problem, not a crash


def test_compile_errors_from_the_python_compiler_are_located():
    with pytest.raises(SandboxCompileError) as info:
        compile_script("x = 1\nreturn x", "wf.gateway")
    assert info.value.problems[0].line == 2 and "outside function" in info.value.message


def test_sources_are_compiled_once_and_cached():
    compiler._compile_cached.cache_clear()
    a = compile_expression("qty * 2", "crm.a")
    b = compile_expression("qty * 2", "crm.a")
    c = compile_expression("qty * 2", "crm.b")        # another definition: its own name in errors
    assert a is b and a is not c and c.name == "crm.b"
    assert compiler._compile_cached.cache_info().hits == 1


def test_the_code_is_restricted_python_with_guards_bound_as_constants():
    code = compile_expression("a * b + x.y", "e").code
    consts = {type(c).__name__ for c in code.co_consts}
    assert "function" in consts                      # the guards
    assert "_getattr_" not in code.co_names and "_op_mul_" not in code.co_names


def test_oversized_source_is_refused():
    with pytest.raises(SandboxCompileError, match="at most 100,000"):
        compile_script("x = 1\n" * 20_000, "big")
