"""The record service: the one road every write to business data takes.

API, staff screens, fixtures, bulk imports, workflow service tasks and plugin scripts all call
:class:`RecordService`. Each write runs the same steps, in one transaction:

1. permission check (entity action, row scope, field rights) through the policy;
2. deserialization and validation with the entity's compiled schema (field-level problems);
3. defaults, computed fields and cross-field rules, evaluated in the sandbox;
4. the write, with an optimistic version check on updates and deletes;
5. an audit entry (hash-chained) in the same transaction;
6. events after commit (``record.created`` / ``record.updated`` / ``record.deleted``).
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

import sqlalchemy as sa

from engine import audit
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound, Problem
from engine.events import EventBus
from engine.forms import messages
from engine.forms.labels import label_of
from engine.forms.model import EntityModel, Model
from engine.records.serialize import record_to_json
from engine.records.uow import UnitOfWork, unit_of_work
from engine.security import Actor, AllowAll

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(timezone.utc)


class RecordService:
    def __init__(self, engine: sa.Engine, model: Callable[[], Model], *, bus: EventBus | None = None,
                 policy: Callable[[], Any] | None = None, crypto=None, files=None,
                 api_factory: Callable[[Actor], dict] | None = None):
        self.engine = engine
        self._model = model
        self.bus = bus
        self._policy = policy or (lambda: AllowAll())
        self.crypto = crypto
        self.files = files
        self.api_factory = api_factory
        #: fn(entity, record, actor, conn, record_id, problems) run in every create/update after validation;
        #: may change `record` or append Problems (plugins and entity `hooks.before_save` attach here)
        self.before_save_hooks: list[Callable] = []

    # -- helpers ---------------------------------------------------------------------------------

    @property
    def model(self) -> Model:
        return self._model()

    @property
    def policy(self):
        return self._policy()

    def entity(self, entity: str | EntityModel, key: str | None = None) -> EntityModel:
        if isinstance(entity, EntityModel):
            return entity
        return self.model.entity(entity, key)

    def unit(self, uow: UnitOfWork | None = None):
        return unit_of_work(self.engine, self.bus, uow)

    def _check(self, actor: Actor, entity: EntityModel, action: str) -> None:
        if actor.is_system:
            return
        if not self.policy.can(actor, entity, action):
            raise Forbidden(f"{actor.username} may not {action} {entity.title(actor.locale)}",
                            problems=[Problem(f"no `{action}` permission on `{entity.full_key}`", code="forbidden")])

    def field_rules(self, actor: Actor, entity: str | EntityModel) -> dict[str, str]:
        """field key -> hidden | masked | readonly for this actor (child fields as "table.field")."""
        return self._rules(actor, self.entity(entity))

    def _rules(self, actor: Actor, entity: EntityModel) -> dict[str, str]:
        return {} if actor.is_system else self.policy.field_rules(actor, entity)

    def _scoped(self, actor: Actor, entity: EntityModel, action: str):
        if actor.is_system:
            return None
        return self.policy.row_filter(actor, entity, action)

    def _check_in_scope(self, conn, entity: EntityModel, record_id: int, actor: Actor, action: str) -> None:
        """After a write, the record must still be inside the actor's scope for that action
        (like PostgreSQL's RLS ``WITH CHECK``): nobody creates or moves records they could not
        then see. Raises Forbidden, which rolls the transaction back."""
        scope = self._scoped(actor, entity, action)
        if scope is None:
            return
        t = entity.table
        if conn.execute(sa.select(t.c.id).where(t.c.id == record_id, scope)).first() is None:
            raise Forbidden(f"{actor.username} may not {action} this {entity.title(actor.locale)}: "
                            "the record would be outside your scope",
                            problems=[Problem(f"the record is outside your `{action}` scope on `{entity.full_key}`",
                                              code="out_of_scope")])

    # -- reading (the query layer builds on these) -------------------------------------------------

    def _decode_row(self, entity: EntityModel, row: dict) -> dict:
        rec = dict(row)
        for f in entity.column_fields:
            if f.sensitive and self.crypto is not None:
                rec[f.key] = self.crypto.decrypt(rec.get(f.key), entity.full_key + "." + f.key)
            rec.pop(f"{f.key}__bidx", None)
        for k in list(rec):
            if "__archived" in k:
                rec.pop(k)
        return rec

    def _load_children(self, conn: sa.Connection, entity: EntityModel, records: list[dict]) -> None:
        if not records or not entity.child_fields:
            return
        ids = [r["id"] for r in records]
        by_id = {r["id"]: r for r in records}
        for f in entity.child_fields:
            child = f.children
            t = child.table
            for r in records:
                r[f.key] = []
            rows = conn.execute(sa.select(t).where(t.c.parent_id.in_(ids)).order_by(t.c.parent_id, t.c.idx)).mappings().all()
            decoded = [self._decode_row(child, r) for r in rows]
            self._load_children(conn, child, decoded)
            for row in decoded:
                parent = by_id[row["parent_id"]]
                row.pop("parent_id", None)
                row.pop("idx", None)
                parent[f.key].append(row)

    def fetch(self, conn: sa.Connection, entity: EntityModel, record_id: int, *, actor: Actor | None = None,
              action: str = "read", for_update: bool = False) -> dict | None:
        t = entity.table
        q = sa.select(t).where(t.c.id == record_id)
        if actor is not None:
            scope = self._scoped(actor, entity, action)
            if scope is not None:
                q = q.where(scope)
        if for_update and conn.dialect.name == "postgresql":
            q = q.with_for_update()
        row = conn.execute(q).mappings().first()
        if row is None:
            return None
        rec = self._decode_row(entity, row)
        self._load_children(conn, entity, [rec])
        return rec

    def get(self, entity: str | EntityModel, record_id: int, actor: Actor, *, as_json: bool = True,
            uow: UnitOfWork | None = None) -> dict:
        ent = self.entity(entity)
        self._check(actor, ent, "read")
        if uow is not None:
            rec = self.fetch(uow.conn, ent, record_id, actor=actor)
        else:
            # a plain read: never take the write lock (a script reading inside another write would
            # wait on it), and never open a unit that could publish events
            with self.engine.connect() as conn:
                rec = self.fetch(conn, ent, record_id, actor=actor)
        if rec is None:
            raise NotFound(messages.render("not_found", actor.locale, entity=ent.title(actor.locale), id=record_id))
        return record_to_json(ent, rec, self._rules(actor, ent)) if as_json else rec

    # -- computing -------------------------------------------------------------------------------

    def _sandbox_api(self, actor: Actor) -> dict | None:
        return self.api_factory(actor) if self.api_factory else None

    @staticmethod
    def _static_defaults(entity: EntityModel, raw: dict) -> dict:
        """Fill literal defaults into raw input, so they are deserialized like typed-in values."""
        raw = dict(raw)
        for f in entity.fields.values():
            if f.key not in raw and "default" in f.spec and f.type not in {"computed", "table"}:
                raw[f.key] = f.spec["default"]
        for f in entity.child_fields:
            if isinstance(raw.get(f.key), list):
                raw[f.key] = [RecordService._static_defaults(f.children, r) if isinstance(r, dict) else r
                              for r in raw[f.key]]
        return raw

    def _apply_defaults(self, entity: EntityModel, data: dict, actor: Actor) -> None:
        """Defaults computed by expressions (they may read other fields and `user`)."""
        for f in entity.fields.values():
            if f.key in data or f.default_expression is None or f.type in {"computed", "table"}:
                continue
            ns = {**{k: data.get(k) for k in entity.fields}, **data, "user": _user_view(actor)}
            value = f.default_expression.evaluate(ns, api=self._sandbox_api(actor))
            if value is not None:
                value = entity.validator.load({f.key: value}, partial=True, locale=actor.locale)[f.key]
            data[f.key] = value
        for f in entity.child_fields:
            for row in data.get(f.key) or []:
                self._apply_defaults(f.children, row, actor)

    def _compute(self, entity: EntityModel, record: dict, actor: Actor, problems: list, prefix: str = "") -> None:
        for f in entity.child_fields:
            for i, row in enumerate(record.get(f.key) or []):
                self._compute(f.children, row, actor, problems, f"{prefix}{f.key}[{i}].")
        pending = entity.computed_fields
        if not pending:
            return
        from engine.sandbox import SandboxError
        # computed fields may read other computed fields: evaluate in dependency order
        done: set[str] = set()
        for _ in range(len(pending) + 1):
            progressed = False
            for f in pending:
                if f.key in done or f.expression is None:
                    continue
                deps = {n for n in getattr(f.expression, "names", set()) if n in entity.fields
                        and entity.fields[n].type == "computed" and n != f.key}
                if deps - done:
                    continue
                try:
                    value = f.expression.evaluate(_namespace(entity, record), api=self._sandbox_api(actor))
                    record[f.key] = _coerce_result(f, value)
                except SandboxError as exc:
                    problems.append(Problem(messages.render("computed_failed", actor.locale, error=exc.message),
                                            field=prefix + f.key, code="computed_failed"))
                    record[f.key] = None
                done.add(f.key)
                progressed = True
            if not progressed:
                break

    def _rules_check(self, entity: EntityModel, record: dict, actor: Actor, problems: list) -> None:
        if not entity.validations:
            return
        from engine.sandbox import SandboxError

        ns = None
        for v in entity.validations:
            if v.expression is None:
                continue
            ns = ns or _namespace(entity, record)
            try:
                ok = v.expression.evaluate(ns, api=self._sandbox_api(actor))
            except SandboxError as exc:
                problems.append(Problem(messages.render("rule_failed", actor.locale, error=exc.message),
                                        field=(v.fields or [None])[0], code="rule_failed"))
                continue
            if not ok:
                msg = label_of(v.message, actor.locale)
                for fk in v.fields or [None]:
                    problems.append(Problem(msg, field=fk, code="rule"))

    def _check_required(self, entity: EntityModel, record: dict, actor: Actor, problems: list, prefix: str = "") -> None:
        for f in entity.fields.values():
            if f.required and f.type != "computed":
                value = record.get(f.key)
                if value is None or value == "" or (f.type in {"table", "multi_select"} and not value):
                    problems.append(Problem(messages.render("required", actor.locale), field=prefix + f.key, code="required"))
        for f in entity.child_fields:
            for i, row in enumerate(record.get(f.key) or []):
                self._check_required(f.children, row, actor, problems, f"{prefix}{f.key}[{i}].")

    def _check_links_and_unique(self, conn, entity: EntityModel, record: dict, record_id: int | None,
                                actor: Actor, problems: list, prefix: str = "") -> None:
        model = self.model
        for f in entity.column_fields:
            value = record.get(f.key)
            if value is None:
                continue
            if f.type == "link":
                target = model.entities.get(f.target)
                link_q = sa.select(target.table.c.id).where(target.table.c.id == value) if target is not None else None
                scope = self._scoped(actor, target, "read") if target is not None else None
                if scope is not None:    # a record the actor cannot see is, for them, missing
                    link_q = link_q.where(scope)
                if target is not None and conn.execute(link_q).first() is None:
                    problems.append(Problem(messages.render("link_missing", actor.locale, value=value),
                                            field=prefix + f.key, code="link_missing"))
            if f.unique and not entity.is_child:
                t = entity.table
                if f.sensitive and self.crypto is not None:
                    cond = t.c[f"{f.key}__bidx"] == self.crypto.blind_index(value, entity.full_key + "." + f.key)
                else:
                    cond = t.c[f.key] == value
                q = sa.select(t.c.id).where(cond)
                if record_id is not None:
                    q = q.where(t.c.id != record_id)
                if conn.execute(q.limit(1)).first() is not None:
                    problems.append(Problem(messages.render("unique", actor.locale, value=value),
                                            field=prefix + f.key, code="unique"))
            if f.type == "attachment" and self.files is not None:
                for p in self.files.check(value, f.spec, actor.locale):
                    problems.append(Problem(p, field=prefix + f.key, code="attachment"))
        for f in entity.child_fields:
            for i, row in enumerate(record.get(f.key) or []):
                self._check_links_and_unique(conn, f.children, row, None, actor, problems, f"{prefix}{f.key}[{i}].")

    def _check_readonly(self, entity: EntityModel, data: dict, actor: Actor, current: dict | None) -> None:
        rules = self._rules(actor, entity)
        problems = []
        for k in data:
            rule = rules.get(k)
            f = entity.fields.get(k)
            changed = current is None or current.get(k) != data[k]
            # hidden/masked are refused even when "unchanged": otherwise the error would tell
            # whether a guessed value is the stored one
            if rule in {"hidden", "masked"} or (rule == "readonly" and changed):
                problems.append(Problem(messages.render("readonly", actor.locale), field=k, code="readonly"))
            elif f is not None and f.spec.get("readonly") and current is not None and changed:
                problems.append(Problem(messages.render("readonly", actor.locale), field=k, code="readonly"))
        if problems:
            raise Forbidden("read-only fields", problems=problems)

    def _prepare(self, conn, entity: EntityModel, typed: dict, actor: Actor, record_id: int | None) -> dict:
        problems: list[Problem] = []
        self._compute(entity, typed, actor, problems)
        self._check_required(entity, typed, actor, problems)
        self._rules_check(entity, typed, actor, problems)
        for hook in self.before_save_hooks:
            hook(entity, typed, actor, conn, record_id, problems)
        self._check_links_and_unique(conn, entity, typed, record_id, actor, problems)
        if problems:
            raise InvalidInput(problems=problems)
        return typed

    # -- writing ---------------------------------------------------------------------------------

    def _encode(self, entity: EntityModel, values: dict) -> dict:
        row = {}
        for f in entity.column_fields:
            if f.key not in values:
                continue
            v = values[f.key]
            if f.sensitive and self.crypto is not None:
                ctx = entity.full_key + "." + f.key
                row[f"{f.key}__bidx"] = self.crypto.blind_index(v, ctx)
                v = None if v is None else self.crypto.encrypt(v, ctx)
            row[f.key] = v
        return row

    def _write_children(self, conn, entity: EntityModel, parent_id: int, record: dict, replace: bool) -> None:
        for f in entity.child_fields:
            if f.key not in record:
                continue
            child = f.children
            t = child.table
            if replace:
                conn.execute(t.delete().where(t.c.parent_id == parent_id))
            for idx, row in enumerate(record.get(f.key) or []):
                values = self._encode(child, row)
                values.update(parent_id=parent_id, idx=idx)
                if row.get("id"):
                    values["id"] = row["id"]
                new_id = conn.execute(child.insert_statement, values).inserted_primary_key[0]
                row["id"] = new_id
                self._write_children(conn, child, new_id, row, replace=False)

    def create(self, entity: str | EntityModel, data: dict, actor: Actor, *, uow: UnitOfWork | None = None,
               audit_action: str = "create") -> dict:
        """Validate and insert one record; returns it as JSON-ready data (with id and version)."""
        ent = self.entity(entity)
        self._check(actor, ent, "create")
        self._check_readonly(ent, data if isinstance(data, dict) else {}, actor, None)
        typed = self._load_new(ent, data, actor)
        with self.unit(uow) as u:
            rec = self._insert(u, ent, typed, actor, audit_action)
        view = rec.pop("_json")
        rules = self._rules(actor, ent)
        # without field rules the JSON view was already built for the audit entry and the event
        return dict(view) if not rules else record_to_json(ent, rec, rules)

    def _load_new(self, ent: EntityModel, data: dict, actor: Actor) -> dict:
        """Deserialize a new record; on errors, also report missing required fields, so the user
        sees every problem at once rather than one round of errors after another."""
        if isinstance(data, dict):
            data = self._static_defaults(ent, data)
        try:
            typed = ent.validator.load(data, partial=False, locale=actor.locale)
        except InvalidInput as exc:
            raw = dict(data) if isinstance(data, dict) else {}
            missing: list[Problem] = []
            self._check_required(ent, raw, actor, missing)
            reported = {p.field for p in exc.problems}
            exc.problems.extend(p for p in missing if p.field not in reported)
            raise
        self._apply_defaults(ent, typed, actor)
        self._default_owner(ent, typed, actor)
        return typed

    @staticmethod
    def _default_owner(ent: EntityModel, typed: dict, actor: Actor) -> None:
        """A user-id owner field left empty belongs to the creator (single writes and imports alike)."""
        if (ent.owner_field and typed.get(ent.owner_field) is None and not actor.is_system
                and ent.fields[ent.owner_field].type == "integer" and actor.user_id is not None):
            typed[ent.owner_field] = actor.user_id

    def _insert(self, u: UnitOfWork, ent: EntityModel, typed: dict, actor: Actor, audit_action: str = "create") -> dict:
        conn = u.conn
        typed = self._prepare(conn, ent, typed, actor, None)
        now = _now()
        values = self._encode(ent, typed)
        values.update(created_at=now, updated_at=now, created_by=actor.user_id, updated_by=actor.user_id, version=1)
        try:
            new_id = conn.execute(ent.insert_statement, values).inserted_primary_key[0]
        except sa.exc.IntegrityError as exc:
            raise InvalidInput(problems=[_integrity_problem(ent, exc, actor)]) from None
        self._write_children(conn, ent, new_id, typed, replace=False)
        self._check_in_scope(conn, ent, new_id, actor, "create")
        rec = {"id": new_id, **typed, "created_at": now, "updated_at": now, "created_by": actor.user_id,
               "updated_by": actor.user_id, "version": 1}
        after = record_to_json(ent, rec)
        audit.append(conn, audit_action, actor_id=actor.user_id, actor=actor.username, address=actor.address,
                     app=ent.app, entity=ent.full_key, record_id=new_id, after=_audit_view(ent, after, self.crypto))
        u.emit("record.created", app=ent.app, entity=ent.key, full_key=ent.full_key, id=new_id,
               record=after, before=None, actor=actor)
        rec["_json"] = after
        return rec

    def update(self, entity: str | EntityModel, record_id: int, data: dict, actor: Actor, *,
               expected_version: int | None = None, uow: UnitOfWork | None = None) -> dict:
        """Apply changes to one record. ``expected_version`` is the version the caller read; a
        mismatch raises :class:`Conflict` carrying the current version (HTTP 409)."""
        ent = self.entity(entity)
        self._check(actor, ent, "update")
        typed_changes = ent.validator.load(data, partial=True, locale=actor.locale)
        with self.unit(uow) as u:
            conn = u.conn
            current = self._current_for_write(conn, ent, record_id, actor, "update", expected_version)
            self._check_readonly(ent, typed_changes, actor, current)
            before_json = record_to_json(ent, current)
            merged = {k: v for k, v in current.items() if k not in {"id", "created_at", "created_by", "updated_at",
                                                                    "updated_by", "version"}}
            for f in ent.child_fields:
                if f.key in typed_changes and typed_changes[f.key] is not None:
                    _keep_unsent_child_values(f, typed_changes[f.key], current.get(f.key) or [])
            merged.update(typed_changes)
            merged = self._prepare(conn, ent, merged, actor, record_id)
            now = _now()
            values = self._encode(ent, merged)
            values.update(updated_at=now, updated_by=actor.user_id, version=current["version"] + 1)
            t = ent.table
            try:
                n = conn.execute(t.update().where(t.c.id == record_id, t.c.version == current["version"])
                                 .values(**values)).rowcount
            except sa.exc.IntegrityError as exc:
                raise InvalidInput(problems=[_integrity_problem(ent, exc, actor)]) from None
            if n != 1:
                latest = conn.execute(sa.select(t.c.version).where(t.c.id == record_id)).scalar()
                raise Conflict(messages.render("stale", actor.locale, entity=ent.title(actor.locale), id=record_id,
                                               yours=current["version"], current=latest), current_version=latest)
            self._check_in_scope(conn, ent, record_id, actor, "update")
            self._write_children(conn, ent, record_id, {k: merged[k] for k in typed_changes
                                                        if k in merged and ent.fields.get(k) and ent.fields[k].type == "table"},
                                 replace=True)
            rec = {**merged, "id": record_id, "created_at": current["created_at"], "created_by": current["created_by"],
                   "updated_at": now, "updated_by": actor.user_id, "version": current["version"] + 1}
            after_json = record_to_json(ent, rec)
            changed = sorted(k for k in after_json if after_json.get(k) != before_json.get(k)
                             and k not in {"updated_at", "version"})
            audit.append(conn, "update", actor_id=actor.user_id, actor=actor.username, address=actor.address,
                         app=ent.app, entity=ent.full_key, record_id=record_id,
                         before=_audit_view(ent, {k: before_json.get(k) for k in changed}, self.crypto),
                         after=_audit_view(ent, {k: after_json.get(k) for k in changed}, self.crypto))
            u.emit("record.updated", app=ent.app, entity=ent.key, full_key=ent.full_key, id=record_id,
                   record=after_json, before=before_json, changed=changed, actor=actor)
        return record_to_json(ent, rec, self._rules(actor, ent))

    def _current_for_write(self, conn, ent: EntityModel, record_id: int, actor: Actor, action: str,
                           expected_version: int | None) -> dict:
        """The record as it is now, locked for the write; 404 when it is gone or out of the actor's
        scope, 409 with the current version when the caller read an older one."""
        current = self.fetch(conn, ent, record_id, actor=actor, action=action, for_update=True)
        if current is None:
            raise NotFound(messages.render("not_found", actor.locale, entity=ent.title(actor.locale), id=record_id))
        if expected_version is not None and int(expected_version) != current["version"]:
            raise Conflict(messages.render("stale", actor.locale, entity=ent.title(actor.locale), id=record_id,
                                           yours=expected_version, current=current["version"]),
                           current_version=current["version"])
        return current

    def delete(self, entity: str | EntityModel, record_id: int, actor: Actor, *,
               expected_version: int | None = None, uow: UnitOfWork | None = None) -> None:
        ent = self.entity(entity)
        self._check(actor, ent, "delete")
        with self.unit(uow) as u:
            conn = u.conn
            current = self._current_for_write(conn, ent, record_id, actor, "delete", expected_version)
            try:
                conn.execute(ent.table.delete().where(ent.table.c.id == record_id,
                                                      ent.table.c.version == current["version"]))
            except sa.exc.IntegrityError:
                raise Conflict(messages.render("still_linked", actor.locale, entity=ent.title(actor.locale),
                                               id=record_id)) from None
            before = record_to_json(ent, current)
            audit.append(conn, "delete", actor_id=actor.user_id, actor=actor.username, address=actor.address,
                         app=ent.app, entity=ent.full_key, record_id=record_id, before=_audit_view(ent, before, self.crypto))
            u.emit("record.deleted", app=ent.app, entity=ent.key, full_key=ent.full_key, id=record_id,
                   record=None, before=before, actor=actor)

    # -- bulk ------------------------------------------------------------------------------------

    def import_rows(self, entity: str | EntityModel, rows: Iterable[tuple[int, dict]], actor: Actor, *,
                    good_rows_only: bool = False, batch_size: int = 500, key_field: str | None = None,
                    uow: UnitOfWork | None = None, progress: Callable[[int], None] | None = None) -> "ImportResult":
        """Import (line number, data) pairs through the same validation as single writes.

        All-or-nothing by default: any bad row means nothing is written and every bad row is
        reported by line and field. With ``good_rows_only`` the good rows are written and the bad
        ones reported; a row is never half-written. ``key_field`` makes re-imports update the
        row with the same key instead of inserting a duplicate (fixtures use it).
        """
        from engine.records.bulk import run_import
        ent = self.entity(entity)
        self._check(actor, ent, "import" if not actor.is_system else "create")
        if actor.is_system or self._scoped(actor, ent, "import") is None and not self._rules(actor, ent):
            return run_import(self, ent, rows, actor, good_rows_only=good_rows_only, batch_size=batch_size,
                              key_field=key_field, uow=uow, progress=progress)
        # a scoped or field-limited importer: the same read-only rules as single writes, and every
        # imported row must land inside the importer's scope, or nothing is imported
        with self.unit(uow) as u:
            result = run_import(self, ent, self._readonly_rows(ent, rows, actor), actor,
                                good_rows_only=good_rows_only, batch_size=batch_size, key_field=key_field,
                                uow=u, progress=progress)
            self._check_all_in_scope(u.conn, ent, result.ids, actor, "import")
        return result

    def _readonly_rows(self, ent: EntityModel, rows, actor: Actor):
        for line, data in rows:
            try:
                self._check_readonly(ent, data if isinstance(data, dict) else {}, actor, None)
            except Forbidden as exc:
                from dataclasses import replace
                exc.problems = [replace(p, line=line) for p in exc.problems]
                raise
            yield line, data

    def _check_all_in_scope(self, conn, entity: EntityModel, ids: list, actor: Actor, action: str) -> None:
        scope = self._scoped(actor, entity, action)
        if scope is None or not ids:
            return
        t = entity.table
        for i in range(0, len(ids), 1000):
            chunk = ids[i:i + 1000]
            inside = conn.execute(sa.select(sa.func.count()).select_from(t).where(t.c.id.in_(chunk), scope)).scalar()
            if inside != len(chunk):
                raise Forbidden(f"{actor.username} may not import these {entity.title(actor.locale)} records: "
                                "some would be outside your scope; nothing was imported",
                                problems=[Problem("imported records must be inside your `import` scope",
                                                  code="out_of_scope")])


def _keep_unsent_child_values(field, rows: list[dict], old_rows: list[dict]) -> None:
    """A child row sent back with its id but without some fields (a masked or hidden value the
    screen never had) keeps the stored values of those fields instead of blanking them."""
    old_by_id = {r.get("id"): r for r in old_rows if r.get("id") is not None}
    for row in rows:
        old = old_by_id.get(row.get("id"))
        if old is None:
            continue
        for f in field.children.fields.values():
            if f.key not in row and f.key in old:
                row[f.key] = old[f.key]
            elif f.type == "table" and row.get(f.key) is not None:
                _keep_unsent_child_values(f, row[f.key], old.get(f.key) or [])


def _user_view(actor: Actor):
    """What expressions may know of the acting user: read-only values, nothing to reach through."""
    from engine.sandbox import ApiNamespace
    return ApiNamespace("user", {"id": actor.user_id, "username": actor.username, "branch": actor.branch,
                                 "team": actor.team, "org_unit": actor.org_unit, "roles": tuple(sorted(actor.roles)),
                                 "locale": actor.locale})


def _namespace(entity: EntityModel, record: dict) -> dict:
    ns = {f.key: record.get(f.key) for f in entity.fields.values()}
    ns.update({k: v for k, v in record.items() if k in {"id", "created_at", "updated_at"}})
    return ns


def _coerce_result(f, value):
    from datetime import date, datetime as dt
    from decimal import Decimal
    if value is None:
        return None
    r = f.result or "text"
    if r == "decimal":
        scale = f.spec.get("scale", 2)
        return Decimal(str(value)).quantize(Decimal(1).scaleb(-scale))
    if r == "integer":
        return int(value)
    if r == "boolean":
        return bool(value)
    if r == "text":
        return str(value)
    if r == "date" and isinstance(value, dt):
        return value.date()
    return value


def _audit_view(entity: EntityModel, data: dict, crypto=None) -> dict:
    """What the audit log keeps of a record: sensitive values only as a keyed fingerprint (the
    blind index: an unkeyed hash of an 18-digit ID number is brute-forced in minutes)."""
    out = {}
    for k, v in data.items():
        f = entity.fields.get(k)
        if f is not None and f.sensitive and v is not None:
            if crypto is not None:
                out[k] = "hmac:" + crypto.blind_index(v, entity.full_key + "." + k)[:16]
                continue
            import hashlib
            out[k] = "sha256:" + hashlib.sha256(str(v).encode()).hexdigest()[:16]
        else:
            out[k] = v
    return out


def _integrity_problem(entity: EntityModel, exc: Exception, actor: Actor) -> Problem:
    text = str(getattr(exc, "orig", exc))
    for f in entity.column_fields:
        if f.key in text and ("UNIQUE" in text.upper() or "duplicate" in text.lower()):
            return Problem(messages.render("unique", actor.locale, value="?"), field=f.key, code="unique")
    return Problem(f"the database refused the record: {text.splitlines()[0]}", code="integrity")


from engine.records.bulk import ImportResult  # noqa: E402  (re-exported for type hints)
