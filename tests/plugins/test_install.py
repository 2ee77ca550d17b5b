"""Installing plugins: everything checked first (file:line), scripts versioned, changes audited,
a separate right to do it, and enable/disable live in every process without a restart."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from engine.errors import Forbidden, InvalidInput
from engine.sandbox import compile_expression
from engine.security import Actor
from plugins import read_plugin
from tests.plugins.helpers import ADMIN, make_plugin

GOOD = "def double(x):\n    return x * 2\n"
FN_HOOK = [{"point": "function", "script": "calc.py", "function": "double"}]

HOSTILE = {
    "import os\n": "`import` is not available",
    "def f():\n    return open('/etc/passwd').read()\n": "`open` is not available",
    "def f():\n    return ().__class__.__base__.__subclasses__()\n": "starts with \"_\"",
    "def f(x):\n    return '{0.__class__}'.format(x)\n": "format",
    "def f(x):\n    return '{a}'.format_map({'a': x})\n": "format",
    "def f():\n    records.get = 1\n": "cannot change `records`",
    "def f():\n    config['secret'] = 'x'\n": "cannot change `config`",
    "def f():\n    return eval('1+1')\n": "Eval",
    "def f():\n    return type(1)\n": "`type` is not available",
    "def f(g):\n    return g.gi_frame.f_back\n": "gi_frame",
    "def f():\n    try:\n        pass\n    except* ValueError:\n        pass\n": "",
    "def f(_getattr_, /):\n    return 1\n": "_getattr_",
    "def f():\n    return getattr(records, '_fn')\n": "",
}


def test_hostile_scripts_are_refused_at_install_with_file_and_line(tmp_path):
    for i, (source, reason) in enumerate(HOSTILE.items()):
        folder = make_plugin(tmp_path, f"bad{i}", {"calc.py": "x = 1\n" + source},
                             hooks=[{"point": "function", "script": "calc.py", "function": "f"}])
        if "getattr(records" in source:
            continue        # refused at run time (see test below): the name is a run-time value
        with pytest.raises(InvalidInput) as err:
            read_plugin(folder)
        probs = err.value.problems
        assert probs and all(p.file.endswith("calc.py") for p in probs), (source, probs)
        assert any(p.line and p.line >= 2 for p in probs), (source, probs)
        assert reason in " ".join(p.message for p in probs), (source, probs)


def test_private_attribute_reads_on_api_objects_fail_at_run_time(loom, tmp_path):
    folder = make_plugin(tmp_path, "peek", {"calc.py": "def f():\n    return getattr(records, '_fn')\n"},
                         hooks=[{"point": "function", "script": "calc.py", "function": "f"}])
    loom.extensions["plugins"].install(folder, ADMIN, enable=True)
    with pytest.raises(Exception) as err:
        compile_expression("peek.f()", "t").evaluate({}, api=loom.sandbox_api(ADMIN))
    assert "_fn" in str(err.value) or "private" in str(err.value).lower() or "underscore" in str(err.value).lower()


def test_manifest_problems_name_the_yaml_line(tmp_path):
    folder = make_plugin(tmp_path, "broken", {"calc.py": GOOD},
                         hooks=[{"point": "function", "script": "calc.py", "function": "triple"},
                                {"point": "schedule", "script": "calc.py", "function": "double", "cron": "every day"},
                                {"point": "nope", "script": "calc.py", "function": "double"}])
    with pytest.raises(InvalidInput) as err:
        read_plugin(folder)
    text = [(p.line, p.message) for p in err.value.problems]
    assert any("'nope' is not one of" in m for _, m in text)
    # schema errors stop before the deeper checks; fix the point and look again
    (folder / "plugin.yaml").write_text((folder / "plugin.yaml").read_text().replace("nope", "function"))
    with pytest.raises(InvalidInput) as err:
        read_plugin(folder)
    messages = {p.message: p.line for p in err.value.problems}
    assert any("defines no function `triple`" in m and line for m, line in messages.items())
    assert any("not a cron expression" in m and line for m, line in messages.items())


def test_versions_and_audit_of_every_change(loom, tmp_path):
    from engine.audit import audit_log, verify
    from plugins import store
    ext = loom.extensions["plugins"]
    folder = make_plugin(tmp_path, "calc", {"calc.py": GOOD}, hooks=FN_HOOK)
    r = ext.install(folder, ADMIN, enable=True)
    assert r["scripts"] == {"calc.py": 1} and r["new"]
    ev = compile_expression("calc.double(21)", "t")
    assert ev.evaluate({}, api=loom.sandbox_api(ADMIN)) == 42
    # re-installing the same files adds no version
    assert ext.install(folder, ADMIN)["scripts"] == {"calc.py": 1}
    # a new script version (CLI/admin road) is live at once
    assert ext.update_script("calc", "calc.py", "def double(x):\n    return x * 3\n", ADMIN) == 2
    assert ev.evaluate({}, api=loom.sandbox_api(ADMIN)) == 63
    # an upgrade from the folder is version 3; the old sources stay readable
    (folder / "calc.py").write_text("def double(x):\n    return x + x\n")
    assert ext.install(folder, ADMIN)["scripts"] == {"calc.py": 3}
    with pytest.raises(InvalidInput) as err:       # a bad new version is refused and changes nothing
        ext.update_script("calc", "calc.py", "import os\ndef double(x):\n    return 0\n", ADMIN)
    assert err.value.problems[0].line == 1
    with loom.db.connect() as conn:
        assert [h["version"] for h in store.script_history(conn, "calc")] == [1, 2, 3]
        assert "x * 3" in store.script_source(conn, "calc", "calc.py", 2)
        entries = conn.execute(sa.select(audit_log.c.action, audit_log.c.actor, audit_log.c.after)
                               .where(audit_log.c.entity == "loom_plugin").order_by(audit_log.c.id)).all()
        assert verify(conn).ok
    assert [e.action for e in entries] == ["plugin.install", "plugin.upgrade", "plugin.script", "plugin.upgrade"]
    assert all(e.actor == "tests" for e in entries)
    assert entries[2].after == {"path": "calc.py", "version": 2}


def test_only_script_administrators_change_plugins(loom, tmp_path):
    ext = loom.extensions["plugins"]
    folder = make_plugin(tmp_path, "calc", {"calc.py": GOOD}, hooks=FN_HOOK)
    clerk = Actor(user_id=7, username="clerk", roles=frozenset({"mini.admin"}))
    with pytest.raises(Forbidden):
        ext.install(folder, clerk)
    ext.install(folder, ADMIN)
    for change in (lambda a: ext.set_enabled("calc", True, a), lambda a: ext.configure("calc", {}, a),
                   lambda a: ext.update_script("calc", "calc.py", GOOD + "\n", a)):
        with pytest.raises(Forbidden):
            change(clerk)
    scripter = Actor(user_id=8, username="it", roles=frozenset({"crm.script_admin"}))
    assert ext.set_enabled("calc", True, scripter) is True


def test_enable_and_disable_take_effect_in_another_process_without_restart(loom, tmp_path):
    from engine.runtime.loom import Loom
    other = Loom(loom.settings, engine=loom.db)         # a second process on the same database
    other.extensions["plugins"].reload_interval = 0
    folder = make_plugin(tmp_path, "calc", {"calc.py": GOOD}, hooks=FN_HOOK)
    loom.extensions["plugins"].install(folder, ADMIN, enable=False)
    ev = compile_expression("calc.double(2)", "t")

    def run():
        other.extensions["plugins"].current()
        return ev.evaluate({}, api=other.sandbox_api(ADMIN))
    with pytest.raises(Exception, match="calc"):
        run()                                          # disabled: the name does not exist
    loom.extensions["plugins"].set_enabled("calc", True, ADMIN)
    assert run() == 4
    loom.extensions["plugins"].set_enabled("calc", False, ADMIN)
    with pytest.raises(Exception, match="calc"):
        run()
