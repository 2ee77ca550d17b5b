"""A report + a viewer + parameters -> ONE SQL statement (SQLAlchemy Core), run by the database.

How the statement is built:

* **Source and scope.** It starts from ``loom.query.scoped_select(source, actor, action)`` -- the
  same scoped SELECT lists and exports use -- so the viewer's row scope on the source entity is
  always there.
* **Joins.** A field path such as ``advisor.team.branch`` walks link fields; each step is a LEFT
  JOIN of an alias of the target's table, with the target's own row scope in the ON clause and a
  WHERE that drops source rows linked to a record the viewer may not see (so an advisor's figures
  never include another advisor's customers, even through a join). Links are many-to-one, so
  joins never multiply rows.
* **Field rules.** A dimension, measure or filter over a field the viewer sees as hidden or
  masked is refused (Forbidden, naming it) -- aggregates would otherwise reveal it.
* **Grouping sets.** Totals, subtotals and pivot margins are extra SELECTs of the same
  aggregates over fewer dimensions, combined with UNION ALL and tagged with ``_set`` -- one
  statement, portable to SQLite (which has no GROUPING SETS). Top-N and limits apply to the
  detail set only; totals are over all rows. On a pivot they choose the first N *row keys* (by
  the top measure over every column) through an ``IN (SELECT ... LIMIT N)``, so each chosen row
  keeps all its cells and its row total.
* **Rollups.** With a rollup (:mod:`.rollup`) the root is the summary table instead of the
  source, the viewer's row filter rewritten onto it, and groups whose deltas net to zero rows
  are dropped (``HAVING SUM(_count) > 0``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.util import ClauseAdapter

from engine.errors import Forbidden, InvalidInput, Problem
from engine.forms.labels import label_of
from engine.forms.model import EntityModel, FieldModel
from engine.reports import expressions
from engine.reports.definition import Dimension, Measure, Report
from engine.reports.sqlfuncs import BUCKETS, DateBucket, safe_div, to_number

STANDARD = {"id", "created_at", "created_by", "updated_at", "updated_by", "version"}
NUMERIC_TYPES = {"integer", "decimal"}


def _problem(msg, field_name=None, code="report"):
    return Problem(msg, field=field_name, code=code)


@dataclass
class Resolved:
    column: Any
    field: FieldModel | None
    entity: EntityModel
    table: Any
    path: str


@dataclass
class OutputColumn:
    key: str
    label: str
    kind: str                 # dimension | measure
    type: str                 # text | integer | decimal | date
    scale: int | None = None
    format: str | None = None


@dataclass
class DimSql:
    key: str
    value: Any                # grouped value (id for links, code for selects, bucket text)
    title: Any = None         # title column for links
    field: FieldModel | None = None
    resolved: Resolved | None = None
    level: str | None = None


class Joiner:
    """Resolves field paths to columns, adding scoped LEFT JOINs as needed."""

    def __init__(self, ctx, source: EntityModel, root=None):
        self.ctx = ctx
        self.source = source
        self.root = root if root is not None else source.table
        self.aliases: dict[tuple, tuple[EntityModel, Any]] = {(): (source, self.root)}
        self.from_ = self.root
        self.where: list = []

    def _node(self, links: tuple, purpose: str):
        if links in self.aliases:
            return self.aliases[links]
        parent_ent, parent_t = self._node(links[:-1], purpose)
        name = links[-1]
        f = parent_ent.fields.get(name)
        if f is None or f.type != "link":
            raise InvalidInput(problems=[_problem(f"{purpose}: `{'.'.join(links)}`: `{name}` is not a link field of "
                                                  f"`{parent_ent.key}`", purpose, "unknown_field")])
        self.ctx.check_field(parent_ent, name, purpose)
        target = self.ctx.model.entities.get(f.target)
        if target is None:
            raise InvalidInput(problems=[_problem(f"{purpose}: entity `{f.target}` is not installed", purpose)])
        self.ctx.check_entity(target)
        alias = target.table.alias(f"j{len(self.aliases)}_{target.key}"[:60])
        on = alias.c.id == parent_t.c[name]
        scope = self.ctx.row_filter(target)
        if scope is not None:
            on = sa.and_(on, ClauseAdapter(alias).traverse(scope))
            self.where.append(sa.or_(parent_t.c[name].is_(None), alias.c.id.isnot(None)))
        self.from_ = self.from_.outerjoin(alias, on)
        self.aliases[links] = (target, alias)
        return self.aliases[links]

    def resolve(self, path: str, purpose: str) -> Resolved:
        parts = path.split(".")
        ent, t = self._node(tuple(parts[:-1]), purpose)
        last = parts[-1]
        if last in STANDARD:
            return Resolved(t.c[last], None, ent, t, path)
        f = ent.fields.get(last)
        if f is None or not f.has_column:
            raise InvalidInput(problems=[_problem(f"{purpose}: entity `{ent.key}` has no field `{last}` (in `{path}`)",
                                                  purpose, "unknown_field")])
        self.ctx.check_field(ent, last, purpose)
        if f.sensitive:
            raise InvalidInput(problems=[_problem(f"{purpose}: `{path}` is encrypted and cannot be grouped or "
                                                  "aggregated", purpose)])
        if t is self.root and self.ctx.column_map is not None:
            if last not in self.ctx.column_map:
                raise InvalidInput(problems=[_problem(f"{purpose}: `{path}` is not kept in the rollup", purpose)])
            return Resolved(self.ctx.column_map[last], f, ent, t, path)
        return Resolved(t.c[last], f, ent, t, path)


class Context:
    """The viewer's permissions, asked once per entity."""

    def __init__(self, loom, actor, column_map=None):
        self.loom = loom
        self.actor = actor
        self.model = loom.model
        self.column_map = column_map
        self._rules: dict[str, dict] = {}

    def rules(self, ent: EntityModel) -> dict:
        if ent.full_key not in self._rules:
            self._rules[ent.full_key] = self.loom.records._rules(self.actor, ent)
        return self._rules[ent.full_key]

    def check_entity(self, ent: EntityModel, action: str = "read") -> None:
        self.loom.records._check(self.actor, ent, action)

    def row_filter(self, ent: EntityModel):
        return self.loom.records._scoped(self.actor, ent, "read")

    def check_field(self, ent: EntityModel, name: str, purpose: str) -> None:
        rule = self.rules(ent).get(name)
        if rule in {"hidden", "masked"}:
            raise Forbidden(f"{purpose} uses `{ent.key}.{name}`, which you may not see",
                            problems=[_problem(f"{purpose}: `{ent.key}.{name}` is {rule} for you", purpose,
                                               "forbidden")])


@dataclass
class Compiled:
    statement: Any
    report: Report
    sets: list[tuple[list[str], list[str]]]
    dims: dict[str, DimSql]
    measures: list[Measure]
    columns: list[OutputColumn]
    hierarchy: dict | None = None
    params: dict = field(default_factory=dict)


class ReportCompiler:
    def __init__(self, loom, report: Report, actor, params: dict, *, rows=None, columns=None,
                 level: str | None = None, drill: dict | None = None, dim_filters: dict | None = None,
                 action: str = "read", rollup=None, measures: list[str] | None = None, limit: int | None = None):
        self.loom = loom
        self.report = report
        self.actor = actor
        self.params = params
        self.locale = actor.locale
        self.rows = list(report.rows if rows is None else rows)
        self.cols = list(report.columns if columns is None else columns)
        self.level = level
        self.drill = drill or {}
        self.dim_filters = dim_filters or {}
        self.action = action
        self.rollup = rollup
        self.measure_keys = measures
        self.limit = limit
        self.ctx = Context(loom, actor, rollup.column_map if rollup is not None else None)
        self.source = loom.model.entities.get(report.source_key)
        if self.source is None:
            raise InvalidInput(problems=[_problem(f"report `{report.key}`: source entity `{report.source}` is not "
                                                  "installed", "source")])
        for k in self.rows + self.cols:
            if k not in report.dimensions:
                raise InvalidInput(problems=[_problem(f"report `{report.key}` has no dimension `{k}`", "rows",
                                                      "parameter")])
        self.joiner = Joiner(self.ctx, self.source, rollup.table if rollup is not None else None)
        self._measure_sql: dict[str, Any] = {}
        self._visiting: set[str] = set()

    # -- dimensions ------------------------------------------------------------------------------

    def _dim(self, dim: Dimension) -> DimSql:
        if dim.is_hierarchy:
            level = self.level or dim.default_level
            if level not in dim.level_keys():
                raise InvalidInput(problems=[_problem(f"dimension `{dim.key}` has no level `{level}`; levels: "
                                                      f"{', '.join(dim.level_keys())}", "level", "parameter")])
            if level == "top":
                return DimSql(dim.key, sa.cast(sa.literal(label_of(dim.top, self.locale) or "HQ"), sa.String()), None,
                              level="top")
            lv = dim.level(level)
            return self._field_dim(dim.key, lv.field, level=level)
        return self._field_dim(dim.key, dim.field, bucket=dim.bucket)

    def _field_dim(self, key: str, path: str, bucket: str | None = None, level: str | None = None) -> DimSql:
        r = self.joiner.resolve(path, f"dimension `{key}`")
        if bucket:
            if bucket not in BUCKETS:
                raise InvalidInput(problems=[_problem(f"dimension `{key}`: unknown bucket `{bucket}`", key)])
            return DimSql(key, DateBucket(r.column, bucket), None, r.field, r, level)
        title = None
        if r.field is not None and r.field.type == "link":
            target = self.loom.model.entities.get(r.field.target)
            tf = target.title_field if target is not None else None
            if tf and self.ctx.rules(target).get(tf) not in {"hidden", "masked"} and not target.fields[tf].sensitive:
                title = self.joiner.resolve(f"{path}.{tf}", f"dimension `{key}`").column
        return DimSql(key, r.column, title, r.field, r, level)

    # -- measures --------------------------------------------------------------------------------

    def measure_sql(self, key: str):
        if key in self._measure_sql:
            return self._measure_sql[key]
        m = self.report.measures.get(key)
        if m is None:
            raise InvalidInput(problems=[_problem(f"report `{self.report.key}` has no measure `{key}`", key)])
        if key in self._visiting:
            raise InvalidInput(problems=[_problem(f"measure `{key}` refers to itself", key)])
        self._visiting.add(key)
        try:
            if m.derived:
                expr = expressions.translate(m.expression, self.measure_sql, self.params, f"measures.{key}")
            elif self.rollup is not None:
                expr = self.rollup.aggregate(m)
            else:
                expr = self._aggregate(m)
        finally:
            self._visiting.discard(key)
        self._measure_sql[key] = expr
        return expr

    def _aggregate(self, m: Measure):
        purpose = f"measure `{m.key}`"
        if m.agg == "count" and not m.field:
            return sa.func.count()
        r = self.joiner.resolve(m.field, purpose)
        col = r.column
        if m.agg in {"sum", "avg"} and r.field is not None and r.field.value_type not in NUMERIC_TYPES:
            raise InvalidInput(problems=[_problem(f"{purpose}: cannot {m.agg} `{m.field}` ({r.field.value_type})",
                                                  m.key)])
        if m.agg == "count":
            return sa.func.count(col)
        if m.agg == "count_distinct":
            return sa.func.count(sa.distinct(col))
        if m.agg == "avg":
            return sa.func.avg(to_number(col))
        return getattr(sa.func, m.agg)(col)

    def output_type(self, m: Measure) -> tuple[str, int | None]:
        if m.derived:
            return "decimal", (m.scale if m.scale is not None else 4)
        if m.agg in {"count", "count_distinct"}:
            return "integer", None
        f = self._field_of(m.field)
        if f is None:
            return "integer", None
        vt = f.value_type
        if vt == "decimal":
            base = f.spec.get("scale", 2) if f.spec.get("scale") is not None else 2
            return "decimal", m.scale if m.scale is not None else (base + 2 if m.agg == "avg" else base)
        if vt == "integer":
            return ("decimal", m.scale if m.scale is not None else 2) if m.agg == "avg" else ("integer", None)
        return vt, None

    def _field_of(self, path: str) -> FieldModel | None:
        ent = self.source
        parts = path.split(".")
        for p in parts[:-1]:
            ent = self.loom.model.entities[ent.fields[p].target]
        return ent.fields.get(parts[-1])

    # -- conditions ------------------------------------------------------------------------------

    def _resolve_filter_name(self, where: str):
        def resolve(path: str):
            return self.joiner.resolve(path, where).column
        return resolve

    def conditions(self) -> list:
        conds = list()
        for i, parsed in enumerate(self.report.filters):
            if parsed.params and all(self.params.get(p) is None for p in parsed.params):
                continue   # an optional parameter left empty: its filter does not apply
            if any(self.params.get(p) is None for p in parsed.params):
                continue
            conds.append(expressions.translate(parsed, self._resolve_filter_name(f"filters[{i}]"), self.params,
                                               f"filters[{i}]"))
        for key, p in self.report.parameters.items():
            value = self.params.get(key)
            if p.field and value is not None:
                col = self.joiner.resolve(p.field, f"parameter `{key}`").column
                conds.append(_op(col, p.op, value))
        for dim_key, dim in self.report.dimensions.items():
            if dim.is_hierarchy:
                for lv in dim.levels:
                    if lv.key in self.drill:
                        r = self.joiner.resolve(lv.field, "drill")
                        conds.append(r.column == _typed(r.field, self.drill[lv.key], "drill"))
        for key, value in self.dim_filters.items():
            dim = self.report.dimensions.get(key)
            if dim is None or dim.is_hierarchy:
                raise InvalidInput(problems=[_problem(f"no plain dimension `{key}` to filter on", key, "parameter")])
            r = self.joiner.resolve(dim.field, f"dimension `{key}`")
            if dim.bucket:
                conds.append(DateBucket(r.column, dim.bucket) == str(value))
            else:
                conds.append(r.column == _typed(r.field, value, key))
        return conds

    # -- the statement ---------------------------------------------------------------------------

    def grouping_sets(self) -> list[tuple[list[str], list[str]]]:
        R, C, rep = self.rows, self.cols, self.report
        sets = [(R, C)]
        if rep.subtotals:
            sets += [(R[:k], C) for k in range(len(R) - 1, 0, -1)]
        if C and rep.totals:
            sets.append((R, []))
            if rep.subtotals:
                sets += [(R[:k], []) for k in range(len(R) - 1, 0, -1)]
        if rep.totals and (R or C):
            if C:
                sets.append(([], C))
            sets.append(([], []))
        seen, out = set(), []
        for s in sets:
            key = (tuple(s[0]), tuple(s[1]))
            if key not in seen:
                seen.add(key)
                out.append(s)
        return out

    def compile(self) -> Compiled:
        rep = self.report
        dims = {k: self._dim(rep.dimensions[k]) for k in self.rows + self.cols}
        mkeys = self.measure_keys or list(rep.measures)
        for k in mkeys:
            if k not in rep.measures:
                raise InvalidInput(problems=[_problem(f"report `{rep.key}` has no measure `{k}`", "measures",
                                                      "parameter")])
        msql = {k: self.measure_sql(k) for k in mkeys}
        having = None
        if rep.having is not None:
            having = expressions.translate(rep.having, self.measure_sql, self.params, "having")
        conds = self.conditions()
        conds += self.joiner.where        # complete now: dimensions, measures and filters are resolved
        sets = self.grouping_sets()
        top_rows = self._top_rows(dims, msql, conds, having)
        branches = []
        for idx, (rs, cs) in enumerate(sets):
            grouped = set(rs) | set(cs)
            cols, group = [sa.literal_column(str(int(idx)), sa.Integer()).label("_set")], []
            for k, d in dims.items():
                if k in grouped:
                    cols.append(d.value.label(k))
                    if d.level != "top":
                        group.append(d.value)
                    if d.title is not None:
                        cols.append(d.title.label(f"{k}__title"))
                        group.append(d.title)
                else:
                    cols.append(sa.cast(sa.null(), d.value.type).label(k))
                    if d.title is not None:
                        cols.append(sa.cast(sa.null(), d.title.type).label(f"{k}__title"))
            for k, expr in msql.items():
                cols.append(expr.label(k))
            q = self._base().with_only_columns(*cols, maintain_column_froms=False).select_from(self.joiner.from_)
            if conds:
                q = q.where(*conds)
            if group:
                q = q.group_by(*group)
            if having is not None:
                q = q.having(having)
            if top_rows is not None and rs == self.rows:
                q = q.where(top_rows)     # pivot top-N: only the chosen row keys (and their row totals)
            if self.rollup is not None:
                # delta rows of a group whose records all went away net to zero: not a group
                q = q.having(sa.func.sum(self.rollup.table.c[self.rollup.count_column]) > 0)
            if idx == 0:
                order = self._order(dims, msql)
                n = None
                if rep.top is not None:
                    n = rep.top[0]
                    order = [msql[rep.top[1]].desc()] + order if rep.top[1] in msql else order
                n = self.limit or n or rep.limit
                if n and not self.cols:
                    q = q.order_by(*order).limit(n)
            branches.append(q)
        if len(branches) == 1:
            union = branches[0].subquery("r")
        else:
            union = sa.union_all(*[sa.select(b.subquery(f"s{i}")) for i, b in enumerate(branches)]).subquery("r")
        outer_order = [union.c._set]
        for name, desc in self._sort_keys(dims, msql):
            c = union.c[name]
            outer_order.append(c.desc().nulls_last() if desc else c.asc().nulls_last())
        stmt = sa.select(union).order_by(*outer_order)
        outputs = []
        for k in self.rows + self.cols:
            d = dims[k]
            dtype = "text" if (d.field is None or rep.dimensions[k].bucket) else d.field.value_type
            outputs.append(OutputColumn(k, label_of(rep.dimensions[k].label, self.locale) or k, "dimension", dtype))
        for k in mkeys:
            m = rep.measures[k]
            t, scale = self.output_type(m)
            outputs.append(OutputColumn(k, label_of(m.label, self.locale) or k, "measure", t, scale,
                                        m.format or ("integer" if t == "integer" else "number")))
        hierarchy = None
        for k in self.rows + self.cols:
            dim = rep.dimensions[k]
            if dim.is_hierarchy:
                keys = dim.level_keys()
                level = self.level or dim.default_level
                i = keys.index(level)
                hierarchy = {"dimension": k, "level": level, "levels": keys,
                             "next": keys[i + 1] if i + 1 < len(keys) else None, "drill": dict(self.drill)}
        return Compiled(stmt, rep, sets, dims, [rep.measures[k] for k in mkeys], outputs, hierarchy, self.params)

    def _top_rows(self, dims, msql, conds, having):
        """Pivot top-N / limit: a condition keeping the first N row keys (by the top measure over
        all columns, then the sort), or None. Column totals and the grand total stay over all rows.
        Flat reports apply their limit directly to the detail set instead."""
        rep = self.report
        n = self.limit or (rep.top[0] if rep.top is not None else None) or rep.limit
        if not (n and self.cols and self.rows):
            return None
        keys = [dims[k].value for k in self.rows if dims[k].level != "top"]
        if not keys:
            return None
        order = []
        if rep.top is not None:
            order.append(self.measure_sql(rep.top[1]).desc().nulls_last())
        for name, desc in rep.sort:
            if name in self.rows or name in rep.measures:
                expr = dims[name].value if name in self.rows else self.measure_sql(name)
                order.append(expr.desc().nulls_last() if desc else expr.asc().nulls_last())
        order += [k.asc().nulls_last() for k in keys]
        q = (self._base().with_only_columns(*keys, maintain_column_froms=False).select_from(self.joiner.from_)
             .where(*conds).group_by(*keys))
        if self.rollup is not None:
            q = q.having(sa.func.sum(self.rollup.table.c[self.rollup.count_column]) > 0)
        if having is not None:
            q = q.having(having)
        q = q.order_by(*order).limit(n)
        # the limited SELECT as a derived table inside IN: portable to SQLite and PostgreSQL
        sub = q.subquery("top_rows")
        if len(keys) == 1:
            return keys[0].in_(sa.select(*sub.c))
        return sa.tuple_(*keys).in_(sa.select(*sub.c))

    def _base(self):
        if self.rollup is not None:
            self.ctx.check_entity(self.source, self.action)
            q = sa.select(self.rollup.table.c[self.rollup.count_column])
            if self.rollup.row_filter is not None:        # the viewer's scope, rewritten onto the rollup
                q = q.where(self.rollup.row_filter)
            return q
        return self.loom.query.scoped_select(self.source, self.actor, self.action, columns=[self.source.table.c.id])

    def _sort_keys(self, dims, msql) -> list[tuple[str, bool]]:
        keys = [(n, d) for n, d in self.report.sort if n in dims or n in msql]
        if self.report.top is not None and self.report.top[1] in msql:
            keys = [(self.report.top[1], True)] + keys
        for k in dims:
            if k not in {n for n, _ in keys}:
                keys.append((k, False))
        return keys

    def _order(self, dims, msql) -> list:
        out = []
        for name, desc in self._sort_keys(dims, msql):
            expr = dims[name].value if name in dims else msql[name]
            out.append(expr.desc().nulls_last() if desc else expr.asc().nulls_last())
        return out


def _op(col, op: str, value):
    from engine.reports.expressions import _cmp_operand
    v = _cmp_operand(value, col)
    return {"eq": lambda: col == v, "ne": lambda: col != v, "lt": lambda: col < v, "lte": lambda: col <= v,
            "gt": lambda: col > v, "gte": lambda: col >= v,
            "in": lambda: col.in_(value if isinstance(value, list) else str(value).split(","))}[op]()


def _typed(f: FieldModel | None, value, where: str):
    try:
        if f is None or f.type in {"link", "integer"}:
            return int(value)
        if f.type == "decimal":
            return Decimal(str(value))
        if f.type == "date":
            return date.fromisoformat(str(value))
        return str(value)
    except (ValueError, TypeError, ArithmeticError):
        raise InvalidInput(problems=[Problem(f"`{value}` is not a valid value for `{where}`", field=where,
                                             code="parameter")]) from None


def coerce_measure(value, out: OutputColumn, approximate: bool = False):
    """Database value -> the measure's type: SQLite returns floats for aggregates; quantize them.

    ``approximate`` (SQLite: sums and averages are binary floats) first rounds to 12 significant
    digits, dropping the float noise: 49911.97975 may come back as ...9797499998 depending on the
    summing order, and must round like PostgreSQL's exact NUMERIC does -- so the live query and
    its rollup agree. Exact values (PostgreSQL) are rounded once, never twice.
    """
    if value is None:
        return None
    if out.type == "integer":
        return int(value)
    if out.type == "decimal":
        d = value if isinstance(value, Decimal) else Decimal(repr(value) if isinstance(value, float) else str(value))
        scale = out.scale or 0
        if (approximate or isinstance(value, float)) and d.is_finite() and d != 0:
            noise = d.adjusted() - 11
            if noise < -scale:
                d = d.quantize(Decimal(1).scaleb(noise), rounding=ROUND_HALF_UP)
        return d.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)
    return value
