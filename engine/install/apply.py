"""Carry out an install plan in one transaction: definitions, tables, fixtures, audit.

Any failure -- a migration step, a fixture row, a contributed install hook -- rolls back the
whole transaction, DDL included (PostgreSQL and SQLite both have transactional DDL), so the
database is exactly as it was.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

import sqlalchemy as sa

from engine import audit
from engine.errors import InvalidInput, Problem
from engine.forms import apply_migration
from engine.install.plan import InstallPlan, STORED_KINDS, fixture_order
from engine.meta import store
from engine.records import ImportRejected, RecordService, UnitOfWork
from engine.security import Actor

InstallHook = Callable[[sa.Connection, InstallPlan, Actor], None]


def _resolve_links(conn, model, app: str, entity_key: str, records: list[dict], key_fields: dict,
                   definition) -> list[dict]:
    """Fixture links may name their target by its key field or its title instead of an id."""
    ent = model.entities[f"{app}.{entity_key}"]
    out, problems = [], []
    cache: dict = {}
    for i, rec in enumerate(records):
        rec = dict(rec)
        for f in ent.fields.values():
            v = rec.get(f.key)
            if f.type == "link" and isinstance(v, str) and not v.isdigit():
                target = model.entities[f.target]
                lookups = [c for c in (key_fields.get(f.target), target.title_field) if c]
                ck = (f.target, v)
                if ck not in cache:
                    cache[ck] = None
                    for col in dict.fromkeys(lookups):
                        found = conn.execute(sa.select(target.table.c.id).where(target.table.c[col] == v)).scalar()
                        if found is not None:
                            cache[ck] = found
                            break
                if cache[ck] is None:
                    problems.append(definition.problem(
                        f"record {i + 1}: field `{f.key}`: no `{target.key}` record has "
                        f"{' or '.join(dict.fromkeys(lookups))} `{v}`", ("records", i, f.key), code="fixture"))
                rec[f.key] = cache[ck]
        out.append(rec)
    if problems:
        raise InvalidInput(f"fixture {definition.file}: unresolved links; nothing was installed", problems=problems)
    return out


def apply_install(engine: sa.Engine, plan: InstallPlan, actor: Actor, *, confirm_destructive: bool = False,
                  hooks: list[InstallHook] = (), records_factory=None, progress=None) -> None:
    bundle = plan.bundle
    if plan.is_noop:
        return
    if plan.unresolved:
        raise InvalidInput("the upgrade has unresolved conflicts between local changes and the partner's; "
                           "choose ours or theirs for each",
                           problems=[Problem(f"{c.path}: yours {c.ours!r}, partner's {c.theirs!r}",
                                             path=f"{d.kind}:{d.key}", code="merge_conflict")
                                     for d, c in plan.unresolved])
    if plan.migration.destructive and not confirm_destructive:
        raise InvalidInput("the install would archive columns; confirm to proceed",
                           problems=[Problem(str(s), code="needs_confirmation") for s in plan.migration.destructive])
    now = datetime.now(timezone.utc)
    with engine.begin() as conn:
        uow = UnitOfWork(conn, None)
        changed = {(d.kind, d.key): d.change for d in plan.definitions}
        for d in bundle.definitions:
            change = changed.get((d.kind, d.key))
            if d.kind in STORED_KINDS and change in {"added", "changed", "merged", "kept"}:
                body = plan.effective.get((d.kind, d.key), d.body)
                # the partner's body becomes the new base; a merge keeps the firm's changes on top
                store.publish(conn, bundle.key, d.kind, d.key, body, author=actor.username, file=d.file,
                              origin="bundle" if body == d.body else "merged", shipped=d.body)
        for ch in plan.definitions:
            if ch.change == "removed":
                store.retire(conn, bundle.key, ch.kind, ch.key)
        prefix = bundle.manifest.get("prefix") or bundle.key
        values = dict(version=bundle.version, title=bundle.manifest.get("title"), manifest=bundle.manifest,
                      prefix=prefix, status="installed", checksum=bundle.checksum(), updated_at=now)
        if conn.execute(sa.select(store.apps.c.key).where(store.apps.c.key == bundle.key)).first():
            conn.execute(store.apps.update().where(store.apps.c.key == bundle.key).values(**values))
        else:
            conn.execute(store.apps.insert().values(key=bundle.key, installed_at=now, **values))
        store.bump_revision(conn)
        apply_migration(conn, plan.model, plan.migration, {bundle.key}, confirm_destructive=confirm_destructive)
        for hook in hooks:
            hook(conn, plan, actor)
        records = (records_factory or (lambda model: RecordService(engine, lambda: model)))(plan.model)
        key_fields = {f"{bundle.key}.{d.body.get('entity')}": d.body.get("key_field")
                      for d in bundle.of_kind("fixture") if d.body.get("key_field")}
        wanted = {f for f, _, _ in plan.fixtures}
        for d in fixture_order(bundle):
            if d.file not in wanted:
                continue
            rows = _resolve_links(conn, plan.model, bundle.key, d.body["entity"], d.body.get("records") or [], key_fields, d)
            lines = [(d.doc.locate(("records", i))[0] or i + 1) if d.doc else i + 1 for i in range(len(rows))]
            try:
                records.import_rows(plan.model.entity(bundle.key, d.body["entity"]), list(zip(lines, rows)), actor,
                                    key_field=d.body.get("key_field"), uow=uow,
                                    progress=(lambda n, f=d.file: progress(f, n)) if progress else None)
            except ImportRejected as exc:
                raise InvalidInput(f"fixture {d.file}: {exc.result.rejected} bad row(s); nothing was installed",
                                   problems=[Problem(p.message, file=d.file, line=p.line, path=p.field, code="fixture")
                                             for p in exc.problems]) from None
        for version in plan.data_migrations:
            _run_data_migration(conn, uow, records, plan, bundle.find("migration", version), actor)
        audit.append(conn, "install", actor_id=actor.user_id, actor=actor.username, address=actor.address,
                     app=bundle.key, detail={"from": plan.installed_version, "to": bundle.version,
                                             "definitions": [str(c) for c in plan.changes],
                                             "migration": plan.migration.describe(),
                                             "data_migrations": plan.data_migrations})


def _migration_api(conn, uow, records, plan, actor):
    """What a data migration may do: read and write this bundle's records, inside the install's
    own transaction (so a failure undoes the schema change too) and through the record service."""
    from engine.records import record_to_json
    from engine.sandbox import api_namespace

    def entity(key):
        return plan.model.entity(key if "." in key else f"{plan.app}.{key}")

    def find(entity_key, where=None, limit=10000):
        ent = entity(entity_key)
        q = sa.select(ent.table)
        for field, value in (where or {}).items():
            if field not in ent.table.c:
                raise InvalidInput(f"entity `{ent.key}` has no field `{field}`")
            q = q.where(ent.table.c[field] == value)
        rows = conn.execute(q.order_by(ent.table.c.id).limit(int(limit))).mappings().all()
        return [record_to_json(ent, records._decode_row(ent, r)) for r in rows]

    def create(entity_key, data):
        return records.create(entity(entity_key), dict(data), actor, uow=uow)

    def update(entity_key, record_id, data):
        return records.update(entity(entity_key), int(record_id), dict(data), actor, uow=uow)

    return {"records": api_namespace("records", find=find, create=create, update=update)}


def _run_data_migration(conn, uow, records, plan, definition, actor) -> None:
    from engine.sandbox import Budget, SandboxError, compile_script
    code = compile_script(definition.body["source"], name=definition.file)
    log: list = []
    try:
        code.execute({"from_version": plan.installed_version, "to_version": plan.version},
                     api=_migration_api(conn, uow, records, plan, actor),
                     budget=Budget(seconds=300, memory_mb=512, max_iterations=500_000_000), messages=log)
    except (SandboxError, InvalidInput) as exc:
        first = exc.problems[0] if exc.problems else None
        raise InvalidInput(f"data migration {definition.file} failed; nothing was installed, version "
                           f"{plan.installed_version} is still in place",
                           problems=[Problem(getattr(exc, "message", str(exc)), file=definition.file,
                                             line=getattr(exc, "line", None) or (first.line if first else None),
                                             code="migration_failed")]) from None
