"""Publish one changed definition (the designer's and the admin's road).

A single definition is checked exactly like a bundle: the app's live definitions, with this one
replaced, are assembled into a bundle and run through the same structural validation, model
build (expressions compile) and extra checkers; an entity change is planned as a migration; then
the migration and the new version are applied in one transaction, and audited. The new version
carries the partner's ``shipped`` body forward, so the change survives later upgrades as an
overlay.
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from engine import audit
from engine.errors import Conflict, InvalidInput, NotFound
from engine.forms import apply_migration, plan_migration
from engine.install.plan import candidate_model, check_fixture_values
from engine.meta import store
from engine.meta.bundle import Bundle, Definition
from engine.meta.validate import validate_bundle
from engine.migrate import MigrationPlan
from engine.security import Actor


@dataclass
class PublishResult:
    stored: store.Stored | None
    changed: bool
    migration: MigrationPlan


def live_bundle(conn: sa.Connection, app: str, replace: tuple[str, str, dict] | None = None) -> Bundle:
    """The app's current definitions as a bundle, optionally with one definition replaced/added."""
    row = conn.execute(sa.select(store.apps).where(store.apps.c.key == app)).mappings().first()
    if row is None:
        raise NotFound(f"no installed bundle `{app}`")
    bundle = Bundle(source=f"<live {app}>", manifest=dict(row["manifest"]))
    seen = False
    for d in store.current(conn, app=app):
        body = d.body
        if replace and (d.kind, d.key) == replace[:2]:
            body, seen = replace[2], True
        bundle.definitions.append(Definition(d.kind, d.key, body, d.file or f"{d.kind}:{d.key}"))
    if replace and not seen:
        kind, key, body = replace
        bundle.definitions.append(Definition(kind, key, body, f"{kind}:{key}"))
    return bundle


def live_bundle_many(conn: sa.Connection, app: str, replacements: dict) -> Bundle:
    """The app's live definitions with several replaced or added: {(kind, key): body}."""
    bundle = live_bundle(conn, app)
    present = set()
    for i, d in enumerate(bundle.definitions):
        if (d.kind, d.key) in replacements:
            bundle.definitions[i] = Definition(d.kind, d.key, replacements[(d.kind, d.key)], d.file)
            present.add((d.kind, d.key))
    for (kind, key), body in replacements.items():
        if (kind, key) not in present:
            bundle.definitions.append(Definition(kind, key, body, f"{kind}:{key}"))
    return bundle


def validate_changes(conn: sa.Connection, app: str, replacements: dict, checkers=()) -> tuple[list, object]:
    """Validate the app with some definitions replaced, exactly as a bundle install would:
    structure, cross-references, the model (every expression compiled), fixture values and the
    extensions' checks. Returns (problems, candidate model or None); changes nothing."""
    bundle = live_bundle_many(conn, app, replacements)
    problems = validate_bundle(bundle)
    model = None
    if not problems:
        try:
            model = candidate_model(conn, bundle)
        except InvalidInput as exc:
            problems = list(exc.problems)
    if model is not None:
        problems += check_fixture_values(bundle, model)
        for check in checkers:
            problems += check(bundle, model)
    return problems, model


def publish_definitions(engine: sa.Engine, app: str, items, actor: Actor, *, checkers=(), hooks=(),
                        confirm_destructive: bool = False, dry_run: bool = False,
                        comment: str | None = None) -> list[PublishResult]:
    """Publish ``[(kind, key, body, expected_version)]`` together, in one transaction.

    An entity and its form often only make sense together (a removed field must leave the form
    in the same step), so they are validated as one state of the app, migrated once, and
    published together or not at all. ``hooks`` (conn, app, kind, key, body) run for every
    changed definition inside the transaction (the workflow package deploys processes there).
    """
    items = list(items)
    for kind, key, body, _ in items:
        if body.get("key", key) != key and kind != "fixture":
            raise InvalidInput(f"the definition's key `{body.get('key')}` does not match `{key}`")
    with engine.begin() as conn:
        current = {}
        for kind, key, body, expected in items:
            cur = store.get(conn, app, kind, key)
            current[(kind, key)] = cur
            if expected is not None and (cur.version if cur else 0) != expected:
                raise Conflict(f"{kind} `{key}` was published by {cur.author if cur else 'someone'} as version "
                               f"{cur.version if cur else 0} after you opened version {expected}; reload it",
                               current_version=cur.version if cur else 0)
        problems, model = validate_changes(conn, app, {(k, key): b for k, key, b, _ in items}, checkers)
        if problems:
            raise InvalidInput(f"{len(problems)} problem(s); nothing was published", problems=problems)
        touches_entities = any(k == "entity" for k, *_ in items)
        migration = plan_migration(conn, model, {app}) if touches_entities else MigrationPlan()
        if dry_run:
            conn.rollback()
            return [PublishResult(current[(k, key)], False, migration) for k, key, *_ in items]
        apply_migration(conn, model, migration, {app}, confirm_destructive=confirm_destructive)
        results = []
        for kind, key, body, _ in items:
            cur = current[(kind, key)]
            stored, changed = store.publish(conn, app, kind, key, body, author=actor.username, origin="designer",
                                            comment=comment)
            if changed:
                store.discard_draft(conn, app, kind, key)
                audit.append(conn, "publish", actor_id=actor.user_id, actor=actor.username, address=actor.address,
                             app=app, entity=f"{kind}:{key}", record_id=stored.version,
                             before=cur.body if cur else None, after=body,
                             detail={"migration": migration.describe() if kind == "entity" else [],
                                     "comment": comment})
                for hook in hooks:
                    hook(conn, app, kind, key, body)
            results.append(PublishResult(stored, changed, migration if kind == "entity" else MigrationPlan()))
    return results


def publish_definition(engine: sa.Engine, app: str, kind: str, key: str, body: dict, actor: Actor, *,
                       checkers=(), hooks=(), confirm_destructive: bool = False, expected_version: int | None = None,
                       dry_run: bool = False, comment: str | None = None) -> PublishResult:
    """Validate, migrate and publish one definition; ``expected_version`` guards against
    overwriting a version someone else published since the caller loaded it."""
    return publish_definitions(engine, app, [(kind, key, body, expected_version)], actor, checkers=checkers,
                               hooks=hooks, confirm_destructive=confirm_destructive, dry_run=dry_run,
                               comment=comment)[0]
