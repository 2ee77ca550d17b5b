"""Validate a bundle completely and work out what installing it would change.

The plan is computed against the live database without writing anything: which definitions are
new, changed, unchanged or gone; which tables and columns would be created, widened or archived;
which fixture rows would load. ``loom app install`` prints it, then :mod:`engine.install.apply`
carries it out in one transaction.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from engine.errors import InvalidInput, Problem
from engine.forms import build_model, plan_migration
from engine.forms.model import Model
from dataclasses import replace

from engine.meta import store
from engine.meta.bundle import Bundle, Definition
from engine.meta.merge import MergeConflict, three_way
from engine.meta.validate import validate_bundle
from engine.migrate import MigrationPlan

#: kinds stored in the definition store, in install order
STORED_KINDS = ("entity", "form", "role", "script", "workflow", "report", "dashboard", "rule", "fixture", "migration")


@dataclass
class DefinitionChange:
    kind: str
    key: str
    change: str          # added | changed | merged | kept | unchanged | removed
    file: str | None = None
    conflicts: list = field(default_factory=list)     # MergeConflict, for change == "merged"

    def __str__(self) -> str:
        text = f"{self.change:9} {self.kind} {self.key}" + (f"  ({self.file})" if self.file else "")
        if self.change == "merged":
            text += "  [local changes kept]"
        if self.change == "kept":
            text += "  [your local version; the partner did not change it]"
        for c in self.conflicts:
            text += f"\n      CONFLICT {c}"
        return text


@dataclass
class InstallPlan:
    bundle: Bundle
    app: str
    version: str
    installed_version: str | None
    definitions: list[DefinitionChange] = field(default_factory=list)
    migration: MigrationPlan = field(default_factory=MigrationPlan)
    fixtures: list[tuple[str, str, int]] = field(default_factory=list)   # (file, entity, rows)
    model: Model | None = None
    notes: list[str] = field(default_factory=list)
    #: data migrations (migrations/<version>.py) to run, oldest first
    data_migrations: list[str] = field(default_factory=list)
    #: (kind, key) -> the body that will be published (the bundle's, or the merge with local changes)
    effective: dict = field(default_factory=dict)
    choices: dict = field(default_factory=dict)

    @property
    def changes(self) -> list[DefinitionChange]:
        return [d for d in self.definitions if d.change not in {"unchanged", "kept"}]

    @property
    def conflicts(self) -> list[tuple[DefinitionChange, MergeConflict]]:
        return [(d, c) for d in self.definitions for c in d.conflicts]

    @property
    def unresolved(self) -> list[tuple[DefinitionChange, MergeConflict]]:
        """Conflicts without a choice ("ours"/"theirs") for the definition or the path."""
        out = []
        for d, c in self.conflicts:
            k = f"{d.kind}:{d.key}"
            if not any(x in self.choices for x in (f"{k}:{c.path}", k, "*")):
                out.append((d, c))
        return out

    @property
    def is_noop(self) -> bool:
        return (not self.changes and not self.migration.steps and not self.fixtures
                and not self.data_migrations and self.installed_version == self.version)

    def describe(self) -> list[str]:
        lines = [f"bundle {self.app} {self.installed_version or '(new)'} -> {self.version}"]
        if self.is_noop:
            return lines + ["nothing to do: this version is installed and unchanged"]
        if self.conflicts:
            lines.append(f"conflicts: {len(self.conflicts)} property(ies) changed both locally and by the partner;"
                         " choose with --take ours|theirs or --resolve KIND:KEY[:PATH]=ours|theirs")
        if self.changes:
            lines.append("definitions:")
            lines += [f"  {d}" for d in self.changes]
        if self.migration.steps:
            lines.append("database:")
            lines += [f"  {s}" for s in self.migration.steps]
        if self.data_migrations:
            lines.append("data migrations:")
            lines += [f"  migrations/{v}.py" for v in self.data_migrations]
        if self.fixtures:
            lines.append("fixtures:")
            lines += [f"  {n:6d} rows -> {e}  ({f})" for f, e, n in self.fixtures]
        lines += [f"note: {n}" for n in self.notes]
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {"app": self.app, "version": self.version, "installed_version": self.installed_version,
                "definitions": [{"kind": d.kind, "key": d.key, "change": d.change, "file": d.file,
                                 "conflicts": [c.to_dict() for c in d.conflicts]} for d in self.changes],
                "migration": [s.to_dict() for s in self.migration.steps],
                "fixtures": [{"file": f, "entity": e, "rows": n} for f, e, n in self.fixtures],
                "data_migrations": self.data_migrations, "notes": self.notes,
                "noop": self.is_noop}


def definition_body(d: Definition) -> dict:
    return d.body


def _locator(bundle: Bundle):
    def locate(app, kind, key, path, message):
        d = bundle.find(kind, key)
        if d is None:
            return Problem(message, path="/".join(map(str, path)), code="expression")
        return d.problem(message, path, code="expression")
    return locate


def candidate_model(conn: sa.Connection, bundle: Bundle) -> Model:
    """The model as it would be with this bundle's entities replacing its installed ones."""
    installed = {r.key: r.prefix for r in conn.execute(sa.select(store.apps.c.key, store.apps.c.prefix))
                 if r.key != bundle.key}
    prefix = bundle.manifest.get("prefix") or bundle.key
    for other, other_prefix in installed.items():
        if other_prefix == prefix:
            raise InvalidInput(problems=[bundle.manifest_doc.problem(
                f"`prefix`: `{prefix}` is already used by installed bundle `{other}`", ("prefix",))])
    apps = {**installed, bundle.key: prefix}
    others = [(d.app, d.body, d.version) for d in store.current(conn, kind="entity") if d.app != bundle.key]
    mine = [(bundle.key, d.body, None) for d in bundle.of_kind("entity")]
    forms = [(d.app, d.body) for d in store.current(conn, kind="form") if d.app != bundle.key]
    forms += [(bundle.key, d.body) for d in bundle.of_kind("form")]
    rev = store.revision(conn)
    return build_model(apps, others + mine, forms, revision=rev, locate=_locator(bundle))


def validate_deep(conn: sa.Connection | None, bundle: Bundle, checkers=()) -> tuple[list[Problem], Model | None]:
    """Structural validation, then the model (expressions compile), fixtures, and extra checkers
    (workflow deploy checks, rule compilation...) contributed by other packages."""
    problems = validate_bundle(bundle)
    problems += check_migration_scripts(bundle)
    if problems:
        return problems, None
    model = None
    try:
        if conn is not None:
            model = candidate_model(conn, bundle)
        else:
            prefix = bundle.manifest.get("prefix") or bundle.key
            model = build_model({bundle.key: prefix}, [(bundle.key, d.body, None) for d in bundle.of_kind("entity")],
                                [(bundle.key, d.body) for d in bundle.of_kind("form")], locate=_locator(bundle))
    except InvalidInput as exc:
        return exc.problems, None
    problems.extend(check_fixture_values(bundle, model))
    for check in checkers:
        problems.extend(check(bundle, model))
    return problems, model


def check_migration_scripts(bundle: Bundle) -> list[Problem]:
    """Data migrations compile in the sandbox, and are named by a version of this bundle's line."""
    from packaging.version import InvalidVersion, Version

    from engine.sandbox import check
    problems = []
    for d in bundle.of_kind("migration"):
        try:
            v = Version(d.key)
            if bundle.version and v > Version(bundle.version):
                problems.append(Problem(f"migration {d.key} is newer than the bundle's version {bundle.version}",
                                        file=d.file, code="migration"))
        except InvalidVersion:
            problems.append(Problem(f"`{d.key}` is not a version: name data migrations <version>.py, e.g. 1.1.0.py",
                                    file=d.file, code="migration"))
        for p in check(d.body.get("source", ""), mode="exec", name=d.file):
            problems.append(Problem(p.message, file=d.file, line=p.line, column=p.column, code="script"))
    return problems


def check_fixture_values(bundle: Bundle, model: Model) -> list[Problem]:
    """Every fixture row through the entity's record schema (types, options, lengths)."""
    problems = []
    for d in bundle.of_kind("fixture"):
        ent = model.entities.get(f"{bundle.key}.{d.body.get('entity')}")
        if ent is None:
            continue
        for i, rec in enumerate(d.body.get("records") or []):
            if not isinstance(rec, dict):
                problems.append(d.problem(f"record {i + 1}: must be a mapping of field values", ("records", i)))
                continue
            # links may name their target by title; they are resolved at install time
            data = {k: v for k, v in rec.items() if k != "id" and not (
                k in ent.fields and ent.fields[k].type == "link" and isinstance(v, str) and not v.isdigit())}
            try:
                ent.validator.load(data, partial=False, locale="en")
            except InvalidInput as exc:
                for p in exc.problems:
                    fname = (p.field or "").split(".")[0].split("[")[0]
                    problems.append(d.problem(f"record {i + 1}: field `{p.field}`: {p.message}",
                                              ("records", i, fname) if fname else ("records", i), code="fixture"))
    return problems


def _merge_with_local(conn: sa.Connection, bundle: Bundle, choices: dict) -> tuple[list[DefinitionChange], dict, Bundle]:
    """Compare the bundle with what is live: new, changed, unchanged, locally customised (merged
    three ways), and definitions the bundle no longer ships. Returns the changes, the bodies to
    publish, and a copy of the bundle carrying those bodies (so validation sees the result)."""
    current = {(d.kind, d.key): d for d in store.current(conn, app=bundle.key)}
    changes, effective, seen = [], {}, set()
    merged_defs = []
    for d in bundle.definitions:
        if d.kind not in STORED_KINDS:
            merged_defs.append(d)
            continue
        seen.add((d.kind, d.key))
        cur = current.get((d.kind, d.key))
        body, conflicts = d.body, []
        if cur is None:
            change = "added"
        elif d.kind == "fixture" or cur.base == cur.body:      # data, or never customised
            change = "unchanged" if cur.checksum == store.checksum(d.body) and cur.shipped == d.body else "changed"
        elif store.checksum(cur.base) == store.checksum(d.body):
            change, body = "kept", cur.body                      # partner unchanged: keep the firm's version
        else:
            k = f"{d.kind}:{d.key}"
            scoped = {key[len(k) + 1:] or "/": v for key, v in choices.items() if key.startswith(k + ":")}
            if k in choices:
                scoped.setdefault("*", choices[k])
            elif "*" in choices:
                scoped.setdefault("*", choices["*"])
            body, conflicts = three_way(cur.base, cur.body, d.body, scoped)
            change = "merged"
        effective[(d.kind, d.key)] = body
        changes.append(DefinitionChange(d.kind, d.key, change, d.file, conflicts))
        merged_defs.append(replace(d, body=body) if body is not d.body else d)
    for (kind, key), cur in current.items():
        if (kind, key) not in seen and not cur.is_local_only:
            changes.append(DefinitionChange(kind, key, "removed", cur.file))
    return changes, effective, replace(bundle, definitions=merged_defs)


def check_dependencies(conn: sa.Connection, bundle: Bundle) -> list[Problem]:
    """The engine version and every bundle this one depends on, checked before anything is applied."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    import engine
    problems = []
    doc = bundle.manifest_doc

    def problem(msg, path):
        return doc.problem(msg, path, code="dependency") if doc else Problem(msg, path="/".join(path), code="dependency")

    def spec(text, path):
        try:
            return SpecifierSet(text)
        except InvalidSpecifier:
            problems.append(problem(f"`{text}` is not a version range like '>=1.0,<2'", path))
            return None

    if bundle.manifest.get("engine"):
        s = spec(bundle.manifest["engine"], ("engine",))
        if s is not None and Version(engine.__version__) not in s:
            problems.append(problem(f"needs engine {bundle.manifest['engine']}, this is Loom {engine.__version__}",
                                    ("engine",)))
    installed = {r.key: r.version for r in conn.execute(
        sa.select(store.apps.c.key, store.apps.c.version).where(store.apps.c.status == "installed"))}
    for dep, rng in (bundle.manifest.get("depends") or {}).items():
        s = spec(rng, ("depends", dep))
        if s is None:
            continue
        if dep not in installed:
            problems.append(problem(f"needs bundle `{dep}` {rng}, which is not installed", ("depends", dep)))
            continue
        try:
            ok = Version(installed[dep]) in s
        except InvalidVersion:
            ok = False
        if not ok:
            problems.append(problem(f"needs bundle `{dep}` {rng}, but {installed[dep]} is installed", ("depends", dep)))
    # a bundle others depend on may not move out of their ranges
    for other, manifest in conn.execute(sa.select(store.apps.c.key, store.apps.c.manifest)
                                        .where(store.apps.c.status == "installed", store.apps.c.key != bundle.key)):
        rng = (manifest.get("depends") or {}).get(bundle.key)
        if rng and bundle.version:
            s = spec(rng, ("version",))
            if s is not None and Version(bundle.version) not in s:
                problems.append(problem(f"installed bundle `{other}` needs {bundle.key} {rng}; "
                                        f"{bundle.version} would break it", ("version",)))
    return problems


def plan_install(conn: sa.Connection, bundle: Bundle, checkers=(), choices: dict | None = None) -> InstallPlan:
    """Validate and plan. ``choices`` resolve merge conflicts: keys "*" (everything),
    "kind:key" (one definition) or "kind:key:/path" (one property); values "ours" or "theirs"."""
    choices = dict(choices or {})
    problems = validate_bundle(bundle)
    if not problems:
        problems = check_dependencies(conn, bundle)
    if problems:
        raise InvalidInput(f"bundle `{bundle.key or bundle.source}` has {len(problems)} problem(s)", problems=problems)
    changes, effective, effective_bundle = _merge_with_local(conn, bundle, choices)
    problems, model = validate_deep(conn, effective_bundle, checkers)
    if problems:
        raise InvalidInput(f"bundle `{bundle.key or bundle.source}` has {len(problems)} problem(s)", problems=problems)
    row = conn.execute(sa.select(store.apps).where(store.apps.c.key == bundle.key)).mappings().first()
    installed_version = row["version"] if row and row["status"] == "installed" else None
    plan = InstallPlan(bundle, bundle.key, bundle.version, installed_version, model=model, definitions=changes,
                       effective=effective, choices=choices)
    plan.migration = plan_migration(conn, model, {bundle.key})
    if installed_version is not None:
        from packaging.version import Version
        plan.data_migrations = sorted((d.key for d in bundle.of_kind("migration")
                                       if Version(installed_version) < Version(d.key) <= Version(bundle.version)),
                                      key=Version)
    changed_fixtures = {d.key for d in plan.definitions if d.kind == "fixture" and d.change in {"added", "changed"}}
    for d in fixture_order(bundle):
        if d.key in changed_fixtures and (installed_version is None or d.body.get("key_field")):
            plan.fixtures.append((d.file, d.body.get("entity"), len(d.body.get("records") or [])))
    if plan.migration.destructive:
        plan.notes.append("columns would be archived (kept, renamed); confirm with --confirm-destructive")
    return plan


def fixture_order(bundle: Bundle) -> list[Definition]:
    """Fixtures in the manifest's order, the rest alphabetically, and parents before children
    (a fixture whose entity links to another fixture's entity loads after it)."""
    fixtures = bundle.of_kind("fixture")
    order = bundle.manifest.get("fixtures") or []
    ranked = sorted(fixtures, key=lambda d: (order.index(d.file.split("/", 1)[-1]) if d.file.split("/", 1)[-1] in order
                                             else len(order), d.file))
    if order:
        return ranked
    entities = {d.key: d.body for d in bundle.of_kind("entity")}
    def deps(d):
        ent = entities.get(d.body.get("entity"), {})
        return {f.get("entity") for f in ent.get("fields", []) if f.get("type") == "link"}
    done, out = set(), []
    pending = list(ranked)
    while pending:
        progressed = False
        for d in list(pending):
            others = {p.body.get("entity") for p in pending if p is not d}
            if not (deps(d) & others) or deps(d) <= {d.body.get("entity")}:
                out.append(d)
                done.add(d.body.get("entity"))
                pending.remove(d)
                progressed = True
        if not progressed:
            out.extend(pending)
            break
    return out
