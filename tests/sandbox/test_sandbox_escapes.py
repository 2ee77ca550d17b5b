"""Escape attempts: each known RestrictedPython CVE and the classic tricks, refused with a clear error.

Every test checks the error class and that the message says what was refused and where, because
an analyst reading "AttributeError" alone cannot tell a typo from a policy.
"""
from __future__ import annotations

import pytest

from engine.sandbox import (ApiNamespace, SandboxBudgetExceeded, SandboxCompileError, SandboxRuntimeError, api_namespace,
                            compile_expression, compile_script)
from engine.sandbox.guards import NATIVE_OK, guarded_getattr


def compile_error(source: str, mode: str = "exec") -> SandboxCompileError:
    with pytest.raises(SandboxCompileError) as info:
        (compile_script if mode == "exec" else compile_expression)(source, "crm.test.script")
    return info.value


def runtime_error(source: str, variables=None, api=None, mode: str = "exec") -> SandboxRuntimeError:
    code = (compile_script if mode == "exec" else compile_expression)(source, "crm.test.script")
    with pytest.raises(SandboxRuntimeError) as info:
        if mode == "exec":
            code.execute(variables or {}, api=api)
        else:
            code.evaluate(variables or {}, api=api)
    return info.value


def records_api():
    secret = {"password": "s3cret"}

    def get(record_id):
        return {"id": record_id, "name": "张三"}

    get.internal = secret           # an engine function with attributes of its own
    return {"records": api_namespace("records", get=get, find=lambda **kw: [])}


# -- RestrictedPython CVEs ------------------------------------------------------------------------------


def test_cve_2023_37271_generator_frame_is_refused_statically_and_dynamically():
    err = compile_error("g = (x for x in [1])\nf = g.gi_frame.f_back.f_globals")
    assert "gi_frame" in err.message and "crm.test.script, line 2" in err.message
    assert err.problems[0].line == 2 and err.problems[0].column

    err = runtime_error("g = (x for x in [1])\nf = getattr(g, 'gi' + '_frame')")
    assert isinstance(err.original, AttributeError)
    assert "gi_frame" in err.message and "line 2" in err.message and "off limits" in err.message


def test_cve_2023_37271_coroutine_and_async_generator_frames():
    err = compile_error("async def f():\n    pass")
    assert "AsyncFunctionDef" in err.message
    err = runtime_error("g = (x for x in [1])\nc = getattr(g, 'cr_frame')")
    assert "cr_frame" in err.message
    err = runtime_error("g = (x for x in [1])\nc = getattr(g, 'ag_frame')")
    assert "ag_frame" in err.message


def test_cve_2023_41039_str_format_is_refused():
    err = compile_error("x = '{0.__class__.__base__}'.format(1)")
    assert "format" in err.message and "f-string" in err.message
    err = runtime_error("x = getattr('{0.__class__}', 'format')(1)")
    assert "format" in err.message and "CVE-2023-41039" in err.message
    err = runtime_error("x = getattr('{a}', 'format_map')({'a': 1})")
    assert "format_map" in err.message


def test_cve_2023_41039_string_formatter_module_is_not_reachable():
    err = runtime_error("import_ = string.Formatter")
    assert "`string`" in err.message or "name 'string'" in err.message


def test_cve_2024_47532_attribute_error_obj_is_refused():
    err = compile_error("try:\n    records.nothing\nexcept AttributeError as e:\n    leak = e.obj")
    assert "obj" in err.message and "CVE-2024-47532" in err.message
    err = runtime_error("try:\n    records.nothing\nexcept AttributeError as e:\n    leak = getattr(e, 'obj')",
                        api=records_api())
    assert "obj" in err.message and "line 4" in err.message


def test_cve_2024_47532_exceptions_expose_only_args():
    code = compile_script("try:\n    {}['k']\nexcept KeyError as e:\n    key = e.args[0]", "t")
    assert code.execute({})["key"] == "k"
    err = runtime_error("try:\n    {}['k']\nexcept KeyError as e:\n    t = getattr(e, 'with_traceback')")
    assert "with_traceback" in err.message


def test_cve_2025_22153_try_star_is_refused():
    err = compile_error("try:\n    pass\nexcept* ValueError:\n    pass")
    assert "TryStar" in err.message and err.problems[0].line == 1


def test_positional_only_parameter_cannot_shadow_a_guard():
    err = compile_error("def f(_getattr_, /):\n    return _getattr_")
    assert "_getattr_" in err.message and "starts with" in err.message
    err = compile_error("f = lambda _getiter_, /: _getiter_")
    assert "_getiter_" in err.message


def test_a_variable_named_like_a_guard_cannot_replace_it():
    """Guards are code constants: data called `_getattr_` or `_write_` is simply never looked up."""
    code = compile_expression("name.upper() + str(len(items))", "t")
    evil = {"name": "ok", "items": [1], "_getattr_": lambda o, n: o.__class__, "_getitem_": None,
            "_getiter_": iter, "_write_": lambda o: o, "__builtins__": __builtins__}
    assert code.evaluate(evil) == "OK1"
    code = compile_expression("getattr(name, '__class__')", "t")
    with pytest.raises(SandboxRuntimeError, match="private"):
        code.evaluate(evil)


# -- the classic walks -------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", [
    "x = ().__class__",
    "x = ().__class__.__base__.__subclasses__()",
    "x = [].__class__.__mro__",
    "x = f.__globals__",
    "x = f.__code__.co_consts",
    "x = (lambda: 0).__closure__",
])
def test_dunder_walks_are_refused_at_compile_time(source):
    err = compile_error(source)
    assert "starts with" in err.message and "crm.test.script, line 1" in err.message


@pytest.mark.parametrize("attribute", ["__class__", "__subclasses__", "__globals__", "__dict__", "__base__",
                                       "__builtins__", "__self__", "__closure__", "__code__"])
def test_dunder_walks_are_refused_at_run_time(attribute):
    err = runtime_error(f"x = getattr(getattr, {attribute!r})")
    assert attribute in err.message and "private" in err.message


def test_mro_walk_on_a_type_is_refused():
    err = compile_error("x = date.mro()")
    assert "mro" in err.message
    err = runtime_error("x = getattr(date, 'm' + 'ro')()")
    assert "mro" in err.message


def test_type_tricks_are_refused():
    err = runtime_error("x = type(1)")
    assert "`type` is not available" in err.message
    err = runtime_error("x = type('X', (), {})")
    assert "`type` is not available" in err.message
    err = compile_error("class X:\n    pass")
    assert "class definitions are not supported" in err.message


def test_types_in_scope_expose_only_their_constructors_helpers():
    assert compile_expression("date.today() is not None", "t").evaluate({}) is True
    err = runtime_error("x = date.replace")
    assert "replace" in err.message and "type `date`" in err.message
    err = runtime_error("x = list.append")
    assert "list.append" in err.message


@pytest.mark.parametrize("name", ["vars", "globals", "locals", "dir", "compile", "open", "__import__", "input",
                                  "setattr", "delattr", "object", "super", "exit", "memoryview"])
def test_introspection_and_io_builtins_are_not_there(name):
    if name.startswith("_"):
        err = compile_error(f"x = {name}('os')")
        assert name in err.message
        return
    err = runtime_error(f"x = {name}()")
    assert isinstance(err.original, NameError)
    assert f"`{name}` is not available in scripts" in err.message


@pytest.mark.parametrize("source,fragment", [
    ("exec('x = 1')", "Exec calls are not allowed"),
    ("eval('1')", "Eval calls are not allowed"),
    ("breakpoint()", "breakpoint"),
    ("import os", "`import` is not available"),
    ("from os import path", "`import` is not available"),
    ("x = __import__('os')", "__import__"),
])
def test_code_execution_and_imports_are_refused_at_compile_time(source, fragment):
    err = compile_error(source)
    assert fragment in err.message
    assert err.problems and err.problems[0].file == "crm.test.script" and err.problems[0].line == 1


def test_open_is_refused():
    err = runtime_error("data = open('/etc/hostname').read()")
    assert "`open` is not available in scripts (scripts cannot read or write files)" in err.message


def test_modules_are_never_reachable():
    """The library hands out functions: no `math.__loader__`, no `random._os`, no `json.decoder`."""
    for source in ("x = math.__loader__", "x = json._default_decoder"):
        err = compile_error(source)
        assert "starts with" in err.message
    err = runtime_error("x = json.decoder")
    assert "json has no member `decoder`" in err.message
    err = runtime_error("x = math.sys")
    assert "math has no member `sys`" in err.message


def test_frames_and_tracebacks_are_unreachable_from_exceptions():
    err = compile_error("try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    tb = e.__traceback__")
    assert "__traceback__" in err.message
    err = runtime_error("try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    tb = getattr(e, 'tb_frame')")
    assert "tb_frame" in err.message


# -- API objects ---------------------------------------------------------------------------------------------


def test_api_function_internals_are_unreachable():
    api = records_api()
    err = compile_error("g = records.get.__globals__")
    assert "__globals__" in err.message
    for attr in ("__globals__", "__self__", "__closure__", "__wrapped__", "__dict__"):
        err = runtime_error(f"g = getattr(records.get, {attr!r})", api=api)
        assert attr in err.message and "private" in err.message
    err = runtime_error("g = records.get.internal", api=api)
    assert "internal" in err.message and "API function `records.get`" in err.message
    assert compile_expression("records.get(7)['name']", "t").evaluate({}, api=api) == "张三"


def test_api_objects_cannot_be_written():
    api = records_api()
    err = runtime_error("records.get = None", api=api)
    assert "scripts cannot change `records` (an API)" in err.message
    err = runtime_error("del records.get", api=api)
    assert "scripts cannot change `records`" in err.message
    err = runtime_error("r = records.get\nr.x = 1", api=api)
    assert "scripts cannot change the API function `records.get`" in err.message and "line 2" in err.message
    err = runtime_error("m = math\nm.pi = 3", api=api)
    assert "scripts cannot change `math`" in err.message


def test_api_namespace_only_offers_its_members():
    err = runtime_error("x = records.delete_everything()", api=records_api())
    assert "records has no member `delete_everything`; it offers: find, get" in err.message


def test_builtin_types_cannot_be_written_or_indexed_into_internals():
    err = runtime_error("x = 'abc'\nx.upper = 1")
    assert "scripts cannot change a `str`" in err.message
    err = runtime_error("d = date(2025, 1, 1)\nd.year = 2030")
    assert "scripts cannot change a `date`" in err.message


# -- the native fast path is harmless on everything a script can reach ----------------------------------------


def test_native_attribute_names_expose_nothing_on_sensitive_objects():
    """Names compiled as plain attribute reads must not exist on functions, generators, types'
    metaclass, exceptions or API objects -- otherwise the fast path would be a way around the guard."""
    def gen():
        yield 1

    api = api_namespace("records", get=lambda: 1)
    sensitive = [gen(), (lambda: 0), len, ValueError("x"), api, api._members["get"], type, object]
    for obj in sensitive:
        for name in NATIVE_OK - ({"get"} if obj is api else set()):
            value = getattr(obj, name, None)
            assert value is None, f"{name!r} is readable natively on {obj!r}: {value!r}"


def test_dynamic_getattr_follows_the_same_rules_as_static_access():
    assert guarded_getattr("abc", "upper")() == "ABC"
    with pytest.raises(AttributeError, match="private"):
        guarded_getattr("abc", "__class__")
    with pytest.raises(AttributeError, match="not available in scripts"):
        guarded_getattr(ValueError("x"), "with_traceback")
    assert guarded_getattr(ApiNamespace("x", {"a": 1}), "a") == 1


def test_subclasses_of_data_types_expose_fields_but_not_their_own_methods():
    class Record(dict):
        def purge(self):                     # engine code nobody vetted for scripts
            raise AssertionError("reached")

        def __setitem__(self, key, value):   # e.g. writes through to the database
            raise AssertionError("reached")

    code = compile_expression("rec.get('a')", "t")
    assert code.evaluate({"rec": Record(a=1)}) == 1
    err = runtime_error("x = rec.purge()", {"rec": Record(a=1)})
    assert "purge" in err.message and "not available in scripts" in err.message
    err = runtime_error("rec['a'] = 2", {"rec": Record(a=1)})
    assert "scripts cannot change a `Record`" in err.message
    assert compile_expression("d.isocalendar().week", "t").evaluate(
        {"d": __import__("datetime").date(2025, 1, 1)}) == 1


def test_exceptions_cannot_smuggle_huge_values_into_messages_or_logs():
    source = "big = [['x' * 1000] * 1000] * 1000\nlog(ValueError(big))\nraise ValueError(big)"
    code = compile_script(source, "plugin.p")
    with pytest.raises(SandboxRuntimeError) as info:
        code.execute({})
    err = info.value
    assert len(err.message) < 1000 and err.messages == ["<ValueError>"]
    assert len(str(err.original)) < 1000          # the engine's log of the cause stays small too
    code = compile_script("big = [['x' * 1000] * 1000] * 1000\ntry:\n    raise KeyError(big)\n"
                          "except KeyError as e:\n    text = str(e)", "plugin.p")
    with pytest.raises(SandboxBudgetExceeded) as info:
        code.execute({})
    assert "line 5" in info.value.message and "converting a value to text" in info.value.message
    context = info.value.__cause__
    while context is not None:          # nothing in the chain the engine would log is huge
        assert len(str(context)) < 1000
        context = context.__cause__ or context.__context__


def test_functions_bound_through_global_do_not_leave_the_script():
    out = compile_script("def setup():\n    global helper\n    helper = lambda: 1\nsetup()\nok = helper()",
                         "s").execute({})
    assert out == {"ok": 1}


ESCAPES = [
    ("x = getattr((), '__cla' + 'ss__')", "private"),
    ("x = getattr(getattr(date, 'm' + 'ro')()[-1], '__subclasses__')()", "mro"),
    ("x = getattr('{0.__class__}', 'format')(1)", "CVE-2023-41039"),
    ("g = (i for i in [1])\nx = getattr(g, 'gi_frame')", "gi_frame"),
    ("x = open('/etc/passwd')", "`open` is not available"),
    ("x = vars()", "`vars` is not available"),
    ("x = globals()['__builtins__']", "`globals` is not available"),
    ("x = locals()", "`locals` is not available"),
    ("x = dir(records)", "`dir` is not available"),
    ("x = type(records)", "`type` is not available"),
    ("x = getattr(records.get, '__globals__')", "private"),
    ("records.get = print", "scripts cannot change `records`"),
    ("x = compile('1', 'f', 'eval')", "`compile` is not available"),
]


def test_refusals_happen_in_worker_threads_beside_other_work():
    from tests.sandbox.helpers import run_beside_bystander

    def attempt_all():
        seen = []
        for source, fragment in ESCAPES:
            try:
                compile_script(source, "plugin.escape").execute({}, api=records_api())
            except (SandboxRuntimeError, SandboxCompileError) as exc:
                seen.append((fragment in exc.message, exc.message))
            else:
                seen.append((False, f"not refused: {source}"))
        return seen

    out = run_beside_bystander(attempt_all)
    assert out.error is None
    assert all(ok for ok, _ in out.value), [m for ok, m in out.value if not ok]
    assert out.bystander_before > 0 and out.bystander_after > 0 and not out.bystander_errors
