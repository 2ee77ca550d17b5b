"""The one read road: lists, search, filters, sorting, pagination and link expansion.

Every list screen, API list, export, drill-down and (via :meth:`Query.scoped_select`) report
starts from the same scoped SELECT, so a row scope or field rule cannot be forgotten on one path.
Filters on fields the actor may not see are refused rather than silently ignored: a filter on a
hidden value would otherwise reveal it one guess at a time.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from engine.errors import Forbidden, InvalidInput, Problem
from engine.forms.model import EntityModel
from engine.records.serialize import record_to_json, to_json_value
from engine.security import Actor

OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "contains", "between", "isnull")
TEXT_TYPES = {"text", "long_text", "email", "phone", "select"}
STANDARD = {"id", "created_at", "created_by", "updated_at", "updated_by", "version"}


@dataclass
class ListRequest:
    filters: list[tuple[str, str, Any]] = field(default_factory=list)
    search: str | None = None
    sort: list[tuple[str, bool]] = field(default_factory=list)      # (field, descending)
    page: int = 1
    page_size: int = 50
    cursor: str | None = None
    fields: list[str] | None = None
    expand: list[str] = field(default_factory=list)
    with_total: bool = True

    @classmethod
    def from_params(cls, params: dict[str, Any], reserved: set[str] = frozenset()) -> "ListRequest":
        """Parse query parameters: ``field=v``, ``field__op=v``, ``q``, ``sort=-f,g``, ``page``,
        ``page_size``, ``cursor``, ``fields=a,b``, ``expand=link,child``."""
        req = cls()
        problems = []
        for key, value in params.items():
            if key in {"q", "search"}:
                req.search = value or None
            elif key == "sort":
                req.sort = [(s.lstrip("-"), s.startswith("-")) for s in str(value).split(",") if s]
            elif key in {"page", "page_size"}:
                try:
                    setattr(req, key, max(1, min(int(value), 500 if key == "page_size" else 10**9)))
                except ValueError:
                    problems.append(Problem(f"`{key}` must be a whole number", field=key, code="parameter"))
            elif key == "cursor":
                req.cursor = value or None
            elif key == "fields":
                req.fields = [f for f in str(value).split(",") if f]
            elif key == "expand":
                req.expand = [f for f in str(value).split(",") if f]
            elif key == "total":
                req.with_total = str(value).lower() not in {"0", "false", "no"}
            elif key in reserved or key.startswith("_"):
                continue
            else:
                name, _, op = key.partition("__")
                op = op or "eq"
                if op not in OPERATORS:
                    problems.append(Problem(f"unknown operator `{op}`; use one of {', '.join(OPERATORS)}",
                                            field=key, code="parameter"))
                    continue
                req.filters.append((name, op, value))
        if problems:
            raise InvalidInput(problems=problems)
        return req


def _encode_cursor(values: list) -> str:
    return base64.urlsafe_b64encode(json.dumps([to_json_value(v) for v in values]).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> list:
    try:
        pad = "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(cursor + pad))
    except Exception:
        raise InvalidInput(problems=[Problem("invalid cursor", field="cursor", code="parameter")]) from None


class Query:
    def __init__(self, service):
        self.service = service

    # -- the scoped base ---------------------------------------------------------------------------

    def scoped_select(self, entity: EntityModel, actor: Actor, action: str = "read", columns=None) -> sa.Select:
        """SELECT over the entity's table limited to the rows the actor may see."""
        self.service._check(actor, entity, action)
        t = entity.table
        q = sa.select(*(columns if columns is not None else [t]))
        scope = self.service._scoped(actor, entity, "read")
        if scope is not None:
            q = q.where(scope)
        return q

    def _coerce(self, entity: EntityModel, name: str, value: Any, actor: Actor):
        if name in STANDARD:
            if name in {"id", "created_by", "updated_by", "version"}:
                return int(value)
            from engine.forms.validation import Moment
            return Moment()._deserialize(value, name, {})
        f = entity.fields[name]
        vtype = f.result or "text" if f.type == "computed" else f.type
        if vtype in {"select", "text", "long_text", "email", "phone", "multi_select"}:
            return value
        if vtype in {"link", "integer"} and f.type != "integer":
            return int(value)
        if f.type == "computed":
            # a computed value is filtered like a field of its result type
            from engine.forms.validation import schema_field
            probe = type(f)(key=f.key, type=vtype, spec=f.spec, label=f.label)
            return schema_field(probe).deserialize(value)
        loaded = entity.validator.load({name: value}, partial=True, locale=actor.locale)
        return loaded[name]

    def _condition(self, entity: EntityModel, name: str, op: str, raw: Any, actor: Actor, rules: dict):
        t = entity.table
        if name not in entity.fields and name not in STANDARD:
            raise InvalidInput(problems=[Problem(f"entity `{entity.key}` has no field `{name}`", field=name,
                                                 code="unknown_field")])
        if rules.get(name) in {"hidden", "masked"}:
            raise Forbidden(problems=[Problem(f"you may not filter on `{name}`", field=name, code="forbidden")])
        f = entity.fields.get(name)
        if f is not None and f.type == "table":
            raise InvalidInput(problems=[Problem("child tables cannot be filtered here", field=name, code="parameter")])
        if f is not None and f.sensitive:
            if op not in {"eq", "isnull"}:
                raise InvalidInput(problems=[Problem("encrypted fields can only be matched exactly", field=name,
                                                     code="parameter")])
            col = t.c[f"{name}__bidx"]
            if op == "isnull":
                return col.is_(None) if str(raw).lower() in {"1", "true", "yes"} else col.isnot(None)
            return col == self.service.crypto.blind_index(raw, entity.full_key + "." + name)
        col = t.c[name]
        try:
            if op == "isnull":
                return col.is_(None) if str(raw).lower() in {"1", "true", "yes"} else col.isnot(None)
            if op == "in":
                values = raw if isinstance(raw, list) else [v for v in str(raw).split(",") if v != ""]
                return col.in_([self._coerce(entity, name, v, actor) for v in values])
            if op == "between":
                lo, _, hi = str(raw).partition(",")
                return col.between(self._coerce(entity, name, lo, actor), self._coerce(entity, name, hi, actor))
            if op == "contains":
                if f is not None and f.type == "multi_select":
                    return sa.cast(col, sa.Text).like(f'%"{raw}"%')
                return col.ilike(f"%{_escape_like(str(raw))}%", escape="\\")
            value = self._coerce(entity, name, raw, actor)
        except (ValueError, TypeError):
            raise InvalidInput(problems=[Problem(f"`{raw}` is not a valid value for `{name}`", field=name,
                                                 code="parameter")]) from None
        return {"eq": col == value, "ne": col != value, "lt": col < value, "lte": col <= value,
                "gt": col > value, "gte": col >= value}[op]

    def where(self, entity: EntityModel, actor: Actor, filters, search: str | None = None) -> list:
        rules = self.service._rules(actor, entity)
        conds = [self._condition(entity, n, op, v, actor, rules) for n, op, v in filters]
        if search:
            t = entity.table
            like = f"%{_escape_like(search)}%"
            ors = [t.c[f.key].ilike(like, escape="\\") for f in entity.column_fields
                   if f.type in TEXT_TYPES and not f.sensitive and rules.get(f.key) not in {"hidden", "masked"}
                   and f.spec.get("searchable", True)]
            for f in entity.column_fields:
                if f.sensitive and rules.get(f.key) not in {"hidden", "masked"} and self.service.crypto is not None:
                    ors.append(t.c[f"{f.key}__bidx"] == self.service.crypto.blind_index(search, entity.full_key + "." + f.key))
            if search.isdigit():
                ors.append(t.c.id == int(search))
            conds.append(sa.or_(*ors) if ors else sa.false())
        return conds

    # -- lists -----------------------------------------------------------------------------------

    def list(self, entity: EntityModel, actor: Actor, req: ListRequest, action: str = "read") -> dict:
        t = entity.table
        q = self.scoped_select(entity, actor, action)
        conds = self.where(entity, actor, req.filters, req.search)
        if conds:
            q = q.where(*conds)
        sort = req.sort or _default_sort(entity)
        rules = self.service._rules(actor, entity)
        order = []
        for name, desc in sort:
            if name not in t.c or name.endswith("__bidx"):
                raise InvalidInput(problems=[Problem(f"cannot sort by `{name}`", field="sort", code="parameter")])
            if rules.get(name) in {"hidden", "masked"} or (name in entity.fields and entity.fields[name].sensitive):
                # the order (and the cursor) would reveal the value
                raise Forbidden(problems=[Problem(f"you may not sort by `{name}`", field="sort", code="forbidden")])
            order.append(t.c[name].desc() if desc else t.c[name].asc())
        order.append(t.c.id.desc() if (sort and sort[0][1]) else t.c.id.asc())
        total = None
        with self.service.engine.connect() as conn:
            if req.with_total:
                total = conn.execute(sa.select(sa.func.count()).select_from(q.subquery())).scalar()
            if req.cursor:
                last = _decode_cursor(req.cursor)
                first_name, first_desc = (sort[0] if sort else ("id", False))
                key_cols = [t.c[first_name], t.c.id]
                if len(last) != 2:
                    raise InvalidInput(problems=[Problem("invalid cursor", field="cursor", code="parameter")])
                lv = self._coerce(entity, first_name, last[0], actor) if last[0] is not None and first_name != "id" else last[0]
                cmp = sa.tuple_(*key_cols) < sa.tuple_(lv, last[1]) if first_desc else sa.tuple_(*key_cols) > sa.tuple_(lv, last[1])
                q = q.where(cmp)
                page_q = q.order_by(*order).limit(req.page_size + 1)
            else:
                page_q = q.order_by(*order).limit(req.page_size + 1).offset((req.page - 1) * req.page_size)
            rows = conn.execute(page_q).mappings().all()
            has_more = len(rows) > req.page_size
            rows = rows[: req.page_size]
            records = [self.service._decode_row(entity, r) for r in rows]
            want_children = [f.key for f in entity.child_fields if f.key in req.expand or (req.fields and f.key in req.fields)]
            if want_children:
                self.service._load_children(conn, entity, records)
            expansions = self._expand(conn, entity, actor, records, req.expand)
        rules = self.service._rules(actor, entity)
        items = []
        for rec in records:
            item = record_to_json(entity, rec, rules)
            if req.fields:
                item = {k: v for k, v in item.items() if k in req.fields or k in {"id", "version"}}
            for name, values in expansions.items():
                if name in item and item[name] is not None:
                    item[name] = values.get(item[name], {"id": item[name]})
            items.append(item)
        next_cursor = None
        if has_more and records:
            first_name = (sort[0][0] if sort else "id")
            next_cursor = _encode_cursor([records[-1].get(first_name), records[-1]["id"]])
        return {"items": items, "total": total, "page": req.page, "page_size": req.page_size,
                "next_cursor": next_cursor, "has_more": has_more}

    def _expand(self, conn, entity: EntityModel, actor: Actor, records: list[dict], names: list[str]) -> dict:
        """Linked records (id -> JSON) for each expanded link, through the same scope and rules."""
        out = {}
        rules = self.service._rules(actor, entity)
        for name in names:
            f = entity.fields.get(name)
            if f is None:
                raise InvalidInput(problems=[Problem(f"cannot expand `{name}`: no such field", field="expand",
                                                     code="parameter")])
            if f.type != "link" or rules.get(name) == "hidden":
                continue
            target = self.service.model.entities.get(f.target)
            if target is None or (not actor.is_system and not self.service.policy.can(actor, target, "read")):
                continue
            ids = {r.get(name) for r in records if r.get(name) is not None}
            if not ids:
                continue
            q = sa.select(target.table).where(target.table.c.id.in_(ids))
            scope = self.service._scoped(actor, target, "read")
            if scope is not None:
                q = q.where(scope)
            trules = self.service._rules(actor, target)
            out[name] = {r["id"]: record_to_json(target, self.service._decode_row(target, r), trules)
                         for r in conn.execute(q).mappings()}
        return out

    def titles(self, entity: EntityModel, actor: Actor, ids: set[int]) -> dict[int, str]:
        """id -> display title, for link fields in screens (respecting scope and field rules)."""
        if not ids:
            return {}
        tf = entity.title_field
        rules = self.service._rules(actor, entity)
        t = entity.table
        cols = [t.c.id] + ([t.c[tf]] if tf and rules.get(tf) != "hidden" and not entity.fields[tf].sensitive else [])
        q = self.scoped_select(entity, actor, columns=cols).where(t.c.id.in_(ids))
        with self.service.engine.connect() as conn:
            return {r[0]: (str(r[1]) if len(r) > 1 and r[1] is not None else f"#{r[0]}") for r in conn.execute(q)}


def _default_sort(entity: EntityModel) -> list[tuple[str, bool]]:
    s = (entity.spec.get("list") or {}).get("sort")
    if s:
        return [(s.lstrip("-"), s.startswith("-"))]
    return [("id", True)] if not entity.is_child else [("idx", False)]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
