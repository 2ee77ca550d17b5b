"""Malformed bundles are rejected with file:line messages, all problems at once, nothing changed."""
from __future__ import annotations

import zipfile

import pytest
import sqlalchemy as sa

from engine.errors import InvalidInput
from engine.meta import store
from engine.meta.bundle import read_bundle
from engine.meta.validate import validate_bundle


def problems_of(loom, path):
    _, problems = loom.validate_bundle(path)
    return problems


def table_names(loom):
    with loom.db.connect() as conn:
        return set(sa.inspect(conn).get_table_names())


def assert_untouched(loom, path, before_tables):
    with pytest.raises(InvalidInput):
        loom.install(path)
    assert table_names(loom) == before_tables
    with loom.db.connect() as conn:
        assert store.current(conn) == []
        assert conn.execute(sa.select(sa.func.count()).select_from(store.apps)).scalar() == 0


def test_valid_bundle_has_no_problems(loom, bundle_copy):
    assert problems_of(loom, bundle_copy()) == []


def test_bad_yaml_is_reported_with_line_and_column(loom, bundle_copy):
    path = bundle_copy()
    (path / "entities" / "branch.yaml").write_text("key: branch\nlabel: [unclosed\nfields: []\n", encoding="utf-8")
    problems = problems_of(loom, path)
    assert len(problems) == 1
    p = problems[0]
    assert p.file == "entities/branch.yaml" and p.line == 3 and p.column
    assert "YAML syntax error" in p.message
    assert str(p).startswith("entities/branch.yaml:3:")
    assert_untouched(loom, path, table_names(loom))


def test_schema_violation_names_the_property_and_line(loom, bundle_copy):
    path = bundle_copy()
    text = (path / "entities" / "customer.yaml").read_text(encoding="utf-8")
    text = text.replace("    type: phone", "    type: phnoe").replace("    max_length: 50", "    max_lenght: 50")
    (path / "entities" / "customer.yaml").write_text(text, encoding="utf-8")
    problems = problems_of(loom, path)
    messages = [str(p) for p in problems]
    typo = next(p for p in problems if "phnoe" in p.message)
    assert typo.file == "entities/customer.yaml"
    assert typo.line == text.splitlines().index("    type: phnoe") + 1
    assert "is not one of" in typo.message and "phone" in typo.message
    lenght = next(p for p in problems if "max_lenght" in p.message)
    assert "did you mean `max_length`" in lenght.message
    assert lenght.line == text.splitlines().index("    max_lenght: 50") + 1
    assert len(messages) == 2
    assert_untouched(loom, path, table_names(loom))


def test_fixture_value_not_an_option_reads_like_an_analyst_would_say_it(loom, bundle_copy):
    path = bundle_copy()
    (path / "fixtures" / "customer.csv").write_text(
        "name,mobile,risk_level,branch,aum\n张三,13800138000,C3,北京营业部,10\n李四,13900139000,C6,上海营业部,20\n",
        encoding="utf-8")
    problems = problems_of(loom, path)
    assert len(problems) == 1
    p = problems[0]
    assert (p.file, p.line) == ("fixtures/customer.csv", 3)
    assert "risk_level" in p.message and "option `C6` is not one of C1, C2, C3, C4, C5" in p.message


def test_dangling_references_are_found(loom, bundle_copy):
    path = bundle_copy()
    ent = (path / "entities" / "customer.yaml").read_text(encoding="utf-8")
    (path / "entities" / "customer.yaml").write_text(ent.replace("entity: branch", "entity: office"), encoding="utf-8")
    form = (path / "forms" / "customer.yaml").read_text(encoding="utf-8")
    (path / "forms" / "customer.yaml").write_text(form.replace("fields: [name, mobile,", "fields: [name, phone,"),
                                                  encoding="utf-8")
    roles = (path / "roles.yaml").read_text(encoding="utf-8")
    (path / "roles.yaml").write_text(roles.replace("inherits: [advisor]", "inherits: [auditor]"), encoding="utf-8")
    problems = problems_of(loom, path)
    text = "\n".join(map(str, problems))
    assert "links to entity `office`, which does not exist" in text
    assert "entity `customer` has no field `phone`" in text
    assert "inherits `auditor`, which no roles file defines" in text
    by_file = {p.file for p in problems}
    assert by_file == {"entities/customer.yaml", "forms/customer.yaml", "roles.yaml"}
    assert all(p.line for p in problems)
    assert_untouched(loom, path, table_names(loom))


def test_duplicate_keys_inside_a_file_and_across_files(loom, bundle_copy):
    path = bundle_copy()
    (path / "entities" / "branch2.yaml").write_text(
        (path / "entities" / "branch.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    (path / "fixtures" / "branch.yaml").write_text(
        "entity: branch\nentity: branch\nrecords: []\n", encoding="utf-8")
    problems = problems_of(loom, path)
    text = "\n".join(map(str, problems))
    assert "duplicate entity key `branch` (already defined in entities/branch.yaml)" in text
    assert "fixtures/branch.yaml:2:1: entity: duplicate key `entity`" in text
    assert_untouched(loom, path, table_names(loom))


def test_unknown_kind_is_rejected(loom, bundle_copy):
    path = bundle_copy()
    (path / "widgets").mkdir()
    (path / "widgets" / "x.yaml").write_text("key: x\n", encoding="utf-8")
    problems = problems_of(loom, path)
    assert len(problems) == 1
    assert problems[0].file == "widgets/x.yaml"
    assert "unknown kind" in problems[0].message and "entities/" in problems[0].message
    assert_untouched(loom, path, table_names(loom))


def test_every_problem_is_reported_at_once(loom, bundle_copy):
    path = bundle_copy()
    (path / "entities" / "branch.yaml").write_text("key: Branch\nlabel: 营业部\nfields:\n  - {key: code, type: txt}\n",
                                                  encoding="utf-8")
    (path / "app.yaml").write_text("key: mini\nversion: one\ntitle: x\n", encoding="utf-8")
    problems = problems_of(loom, path)
    files = sorted({p.file for p in problems})
    assert "app.yaml" in files and "entities/branch.yaml" in files
    assert len(problems) >= 3


def test_zip_bundles_read_like_folders(loom, bundle_copy, tmp_path):
    path = bundle_copy()
    archive = tmp_path / "mini.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in path.rglob("*"):
            if f.is_file():
                zf.write(f, "mini/" + f.relative_to(path).as_posix())
    bundle = read_bundle(archive)
    assert validate_bundle(bundle) == []
    assert bundle.key == "mini" and len(bundle.of_kind("entity")) == 2


def test_zip_with_unsafe_paths_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../etc/app.yaml", "key: x")
    bundle = read_bundle(archive)
    assert bundle.problems and "unsafe path" in bundle.problems[0].message


def test_missing_source(tmp_path):
    bundle = read_bundle(tmp_path / "nope")
    assert bundle.problems[0].message == "no such file or folder"
