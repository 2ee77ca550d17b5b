"""Bulk import through the record service's validation, in batches.

Rows are validated exactly like single writes (schema, defaults, computed fields, rules), then
link targets and unique values are checked once per batch with set queries, and the batch is
inserted with one executemany. Each batch writes one audit entry and one event, never one per row.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import islice
from typing import Callable, Iterable

import sqlalchemy as sa

from engine import audit
from engine.errors import InvalidInput, Problem
from engine.forms import messages

MAX_REPORTED = 1000


@dataclass
class ImportResult:
    inserted: int = 0
    updated: int = 0
    rejected: int = 0
    problems: list[Problem] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"inserted": self.inserted, "updated": self.updated, "rejected": self.rejected,
                "problems": [p.to_dict() for p in self.problems]}


def _batches(rows: Iterable, size: int):
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch


def _row_problems(exc: InvalidInput, line: int) -> list[Problem]:
    return [Problem(p.message, line=line, field=p.field, code=p.code) for p in exc.problems]


def run_import(service, ent, rows, actor, *, good_rows_only: bool, batch_size: int, key_field: str | None,
               uow=None, progress: Callable[[int], None] | None = None) -> ImportResult:
    result = ImportResult()
    if good_rows_only:
        for batch in _batches(rows, batch_size):
            with service.unit(uow) as u:
                _import_batch(service, u, ent, batch, actor, result, key_field, skip_bad=True)
            if progress:
                progress(result.inserted + result.updated + result.rejected)
        return result
    with service.unit(uow) as u:
        sp = u.conn.begin_nested() if uow is not None else None
        for batch in _batches(rows, batch_size):
            _import_batch(service, u, ent, batch, actor, result, key_field, skip_bad=False)
            if progress:
                progress(result.inserted + result.updated + result.rejected)
        if result.problems:
            if sp is not None:
                sp.rollback()
            u.events.clear()
            raise _Rollback(result)
        if sp is not None:
            sp.commit()
    return result


class _Rollback(InvalidInput):
    """All-or-nothing import with bad rows: carries the result; nothing was written."""

    def __init__(self, result: ImportResult):
        super().__init__(f"{result.rejected} bad row(s); nothing was imported", problems=result.problems[:MAX_REPORTED])
        self.result = result


ImportRejected = _Rollback


def _import_batch(service, u, ent, batch, actor, result: ImportResult, key_field, skip_bad: bool) -> None:
    conn = u.conn
    good: list[tuple[int, dict]] = []
    updates: list[tuple[int, int, dict]] = []
    existing_keys: dict = {}
    if key_field:
        keys = [data.get(key_field) for _, data in batch if isinstance(data, dict) and data.get(key_field) is not None]
        if keys:
            col = ent.table.c[key_field]
            existing_keys = {str(k): i for i, k in conn.execute(sa.select(ent.table.c.id, col).where(col.in_(keys)))}
    plan = _RowPlan.of(ent)
    hooks = list(service.before_save_hooks)
    load = ent.validator.load
    locale = actor.locale
    for line, data in batch:
        try:
            if key_field and isinstance(data, dict) and str(data.get(key_field)) in existing_keys:
                updates.append((line, existing_keys[str(data[key_field])], data))
                continue
            if plan.simple:
                try:
                    typed = load(data, False, locale)
                except InvalidInput:
                    service._load_new(ent, data, actor)   # raises, adding missing required fields
                    raise
                service._default_owner(ent, typed, actor)
                problems = plan.finish(typed, locale)
            else:
                typed = service._load_new(ent, data, actor)
                problems: list[Problem] = []
                service._compute(ent, typed, actor, problems)
                service._check_required(ent, typed, actor, problems)
                service._rules_check(ent, typed, actor, problems)
            for hook in hooks:              # plugin and entity before-save hooks run on imports too
                hook(ent, typed, actor, conn, None, problems)
            if problems:
                raise InvalidInput(problems=problems)
            good.append((line, typed))
        except InvalidInput as exc:
            result.rejected += 1
            if len(result.problems) < MAX_REPORTED:
                result.problems.extend(_row_problems(exc, line))
    good = _set_checks(service, conn, ent, good, actor, result)
    for line, record_id, data in updates:
        try:
            sp = conn.begin_nested()
            service.update(ent, record_id, {k: v for k, v in data.items() if k != "id"}, actor, uow=u)
            sp.commit()
            result.updated += 1
        except InvalidInput as exc:
            sp.rollback()
            result.rejected += 1
            result.problems.extend(_row_problems(exc, line))
    if not good or (result.problems and not skip_bad):
        return
    now = datetime.now(timezone.utc)
    if ent.child_fields:
        ids = [service._insert(u, ent, typed, actor, "import")["id"] for _, typed in good]
    else:
        plan = _RowPlan.of(ent)
        standard = dict(created_at=now, updated_at=now, created_by=actor.user_id, updated_by=actor.user_id, version=1)
        if plan.plain_columns:     # no encrypted fields: the typed values are the column values
            values = [typed for _, typed in good]
        else:
            values = [service._encode(ent, typed) for _, typed in good]
        # the same keys in every row, so executemany (or COPY) can batch it
        keys = set().union(*(v.keys() for v in values))
        cols = [c.name for c in ent.table.columns if c.name in keys and c.name not in standard]
        before = conn.execute(sa.select(sa.func.max(ent.table.c.id))).scalar() or 0
        if not (conn.dialect.name == "postgresql" and _copy_rows(conn, ent.table, cols, values, standard)):
            conn.execute(ent.table.insert(), [{**{c: v.get(c) for c in cols}, **standard} for v in values])
        ids = [r[0] for r in conn.execute(sa.select(ent.table.c.id).where(ent.table.c.id > before)
                                          .order_by(ent.table.c.id))]
        audit.append(conn, "import", actor_id=actor.user_id, actor=actor.username, address=actor.address,
                     app=ent.app, entity=ent.full_key, record_id=f"{ids[0]}..{ids[-1]}" if ids else None,
                     detail={"rows": len(ids), "lines": [good[0][0], good[-1][0]]})
        u.emit("records.imported", app=ent.app, entity=ent.key, full_key=ent.full_key, ids=ids, actor=actor)
    result.inserted += len(ids)
    result.ids.extend(ids)


def _set_checks(service, conn, ent, good, actor, result) -> list:
    """Link targets and unique values, checked once per batch instead of once per row."""
    bad: dict[int, list[Problem]] = {}
    model = service.model
    for f in ent.column_fields:
        if f.type == "link":
            wanted = {typed.get(f.key) for _, typed in good if typed.get(f.key) is not None}
            if wanted:
                target = model.entities[f.target].table
                found = {r[0] for r in conn.execute(sa.select(target.c.id).where(target.c.id.in_(wanted)))}
                for line, typed in good:
                    v = typed.get(f.key)
                    if v is not None and v not in found:
                        bad.setdefault(line, []).append(Problem(messages.render("link_missing", actor.locale, value=v),
                                                                line=line, field=f.key, code="link_missing"))
        if f.unique:
            seen: dict = {}
            values = [typed.get(f.key) for _, typed in good if typed.get(f.key) is not None]
            taken = set()
            if values:
                if f.sensitive and service.crypto is not None:
                    ctx = ent.full_key + "." + f.key
                    idx = {service.crypto.blind_index(v, ctx): v for v in values}
                    col = ent.table.c[f"{f.key}__bidx"]
                    taken = {idx[r[0]] for r in conn.execute(sa.select(col).where(col.in_(list(idx))))}
                else:
                    col = ent.table.c[f.key]
                    taken = {r[0] for r in conn.execute(sa.select(col).where(col.in_(values)))}
            for line, typed in good:
                v = typed.get(f.key)
                if v is None:
                    continue
                if v in taken or v in seen:
                    bad.setdefault(line, []).append(Problem(messages.render("unique", actor.locale, value=v),
                                                            line=line, field=f.key, code="unique"))
                seen[v] = line
    if not bad:
        return good
    result.rejected += len(bad)
    for line in sorted(bad):
        result.problems.extend(bad[line])
    return [(line, typed) for line, typed in good if line not in bad]


class _RowPlan:
    """What the per-row steps of a write amount to for one entity, worked out once.

    For the common entity -- no computed fields, default expressions, cross-field rules or child
    tables -- defaults and required checks are a few dict operations, done inline with exactly
    the service's semantics (``_load_new`` / ``_apply_defaults`` / ``_check_required``); any other
    entity goes through the service's own methods.
    """

    _cache: dict = {}

    def __init__(self, ent):
        fields = list(ent.fields.values())
        self.simple = not (ent.computed_fields or ent.child_fields or ent.validations
                           or any(f.default_expression is not None for f in fields))
        self.plain_columns = not any(f.sensitive for f in ent.column_fields)
        self.defaults = [(f.key, f.spec["default"]) for f in fields
                         if f.type not in {"computed", "table"} and "default" in f.spec]
        self.required = [(f.key, f.type == "multi_select") for f in fields
                         if f.required and f.type != "computed"]

    @classmethod
    def of(cls, ent) -> "_RowPlan":
        cached = cls._cache.get(id(ent))
        if cached is None or cached[0] is not ent:
            if len(cls._cache) > 256:
                cls._cache.clear()
            cached = cls._cache[id(ent)] = (ent, cls(ent))
        return cached[1]

    def finish(self, typed: dict, locale: str) -> list[Problem]:
        for key, default in self.defaults:
            if key not in typed:
                typed[key] = default
        problems = []
        for key, is_multi in self.required:
            value = typed.get(key)
            if value is None or value == "" or (is_multi and not value):
                problems.append(Problem(messages.render("required", locale), field=key, code="required"))
        return problems


def _is_json(col) -> bool:
    t = col.type
    return isinstance(t, sa.JSON) or any(isinstance(v, sa.JSON) for v in getattr(t, "_variant_mapping", {}).values())


def _copy_rows(conn, table: sa.Table, cols: list[str], values: list[dict], standard: dict) -> bool:
    """Insert with PostgreSQL COPY (several times faster than executemany). Returns False when
    the driver is not psycopg 3, so the caller falls back to executemany."""
    driver = getattr(conn.connection, "driver_connection", None)
    if driver is None or not type(driver).__module__.startswith("psycopg"):
        return False
    from engine.db import dumps
    dialect = conn.dialect
    names = cols + list(standard)
    procs = []
    for name in names:
        col = table.c[name]
        if _is_json(col):
            procs.append(lambda v: None if v is None else dumps(v))
        else:
            procs.append(col.type.dialect_impl(dialect).bind_processor(dialect)
                         if not isinstance(col.type, sa.types.TypeDecorator)
                         else (lambda t: (lambda v: t.process_bind_param(v, dialect)))(col.type))
    std = [p(v) if p else v for p, v in zip(procs[len(cols):], standard.values())]
    col_procs = list(zip(cols, procs[:len(cols)]))
    prep = dialect.identifier_preparer
    sql = f"COPY {prep.format_table(table)} ({', '.join(prep.quote(n) for n in names)}) FROM STDIN"
    with driver.cursor() as cur, cur.copy(sql) as copy:
        write = copy.write_row
        for v in values:
            write([p(v.get(c)) if p else v.get(c) for c, p in col_procs] + std)
    return True
