"""Incremental rollups: a summary table per report (``rollup: true`` in the report YAML), kept
current from record events, so a dashboard's load time follows the number of groups, not the
number of trades.

**What the table holds.** The report's *grain*: every own field of the source entity that a
dimension, hierarchy level, parameter or filter reads (link ids, dates, selects), plus, per
additive measure, a partial sum and a count of values. The report then runs through the same
compiler with the rollup table as its root: ``count`` -> SUM(count), ``sum`` -> SUM(partial),
``avg`` -> SUM(partial)/SUM(n); joins to other entities are unchanged. ``min``, ``max`` and
``count_distinct`` are not additive under deletes, so a report using them cannot have a rollup
(refused at install by the report check).

**How it stays current: append-only deltas.** Every record event *appends* delta rows
(``record.created`` +1 row, ``record.updated`` -before +after, ``record.deleted`` -before,
``records.imported`` one INSERT ... SELECT ... WHERE id IN (ids) GROUP BY grain for the whole
batch). Readers SUM over rows anyway, so several rows per grain are harmless; appending needs no
read-modify-write, hence no lock between processes, and NULL grain values need no special case.
:meth:`Rollups.compact` (run by the extension's ``tick`` and after imports) folds the deltas back
to one row per grain when the table has grown past twice its compacted size.
``loom report rollup rebuild KEY`` recomputes the table from the source (after a bulk load that
bypassed the record service, or if a handler ever failed: handlers run after commit, so a crash
between the write and the handler leaves the rollup one event behind until a rebuild).

**Which viewers use it.** The table carries no row scope, so it is used only when the viewer's
row filter on the source entity can be re-expressed on the rollup: when the filter is empty, or
when every source column it reads is part of the grain (e.g. ``trade.advisor IN (my advisors)``
on a report grouped by the org hierarchy, whose grain contains ``advisor``). The filter is then
rewritten column-for-column onto the rollup table. Anyone else runs the live query -- same
results, just not precomputed.

The table's name carries a hash of the report's shape, so a changed definition gets a new table
(built on first use) instead of reading a stale one.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.sql import visitors

from engine.reports.definition import Report

log = logging.getLogger(__name__)
ADDITIVE = {"count", "sum", "avg"}
EVENTS = ("record.created", "record.updated", "record.deleted", "records.imported")


def rollup_problems(rep: Report) -> list[str]:
    out = []
    for m in rep.measures.values():
        if not m.derived and m.agg not in ADDITIVE:
            out.append(f"measure `{m.key}` ({m.agg}) cannot be kept in a rollup; use count, sum or avg")
        if not m.derived and m.field and "." in m.field:
            out.append(f"measure `{m.key}` aggregates `{m.field}` of another entity; a rollup keeps only "
                       "fields of the source")
    return out


def _grain_fields(rep: Report) -> list[str]:
    """Own fields of the source that the report reads (first step of every path)."""
    paths = []
    for d in rep.dimensions.values():
        paths += [lv.field for lv in d.levels] if d.is_hierarchy else [d.field]
    paths += [p.field for p in rep.parameters.values() if p.field]
    for f in rep.filters:
        paths += sorted(f.names)
    out = []
    for p in paths:
        first = p.split(".")[0]
        if first not in out:
            out.append(first)
    return out


class RollupTable:
    """One report's summary table and how the compiler reads it."""

    def __init__(self, rep: Report, source, metadata: sa.MetaData):
        self.report = rep
        self.source = source
        self.grain = _grain_fields(rep)
        self.measures = [m for m in rep.measures.values() if not m.derived]
        shape = json.dumps([self.grain, [(m.key, m.agg, m.field) for m in self.measures], source.table.name])
        digest = hashlib.sha1(shape.encode()).hexdigest()[:8]
        name = f"{source.table.name[:30]}__ru_{rep.key[:20]}_{digest}"
        cols = [sa.Column(g, source.table.c[g].type) for g in self.grain]
        self.count_column = "_count"
        cols.append(sa.Column("_count", sa.BigInteger, nullable=False))
        for m in self.measures:
            if m.agg in {"sum", "avg"}:
                cols.append(sa.Column(f"{m.key}__sum", sa.Numeric(38, 10)))
                cols.append(sa.Column(f"{m.key}__n", sa.BigInteger))
            elif m.agg == "count" and m.field:
                cols.append(sa.Column(f"{m.key}__n", sa.BigInteger))
        extra = [sa.Index(f"ix_{name}"[:63], *self.grain)] if self.grain else []
        self.table = sa.Table(name, metadata, *cols, *extra, schema=source.table.schema)
        self.column_map = {g: self.table.c[g] for g in self.grain}
        self.value_columns = [c.name for c in cols if c.name not in self.grain]

    # -- reading ---------------------------------------------------------------------------------

    def aggregate(self, m):
        t = self.table
        if m.agg == "count":
            return sa.func.sum(t.c[f"{m.key}__n"] if m.field else t.c._count)
        if m.agg == "sum":
            # NULL, like the live SUM, when no value is left (deltas of +x and -x sum to 0)
            return sa.cast(sa.case((sa.func.sum(t.c[f"{m.key}__n"]) > 0, sa.func.sum(t.c[f"{m.key}__sum"]))),
                           self.source_type(m))
        from engine.reports.sqlfuncs import safe_div
        return safe_div(sa.func.sum(t.c[f"{m.key}__sum"]), sa.func.sum(t.c[f"{m.key}__n"]))

    def source_type(self, m):
        return self.source.table.c[m.field].type if "." not in m.field else sa.Numeric(38, 10)

    def adapt(self, row_filter):
        """The viewer's row filter rewritten onto the rollup table, or None when it reads a source
        column the rollup does not keep (then the live query must run)."""
        src = self.source.table
        used = {c.name for c in visitors.iterate(row_filter)
                if isinstance(c, sa.Column) and c.table is src}
        if not used <= set(self.grain):
            return None

        def swap(el):
            if isinstance(el, sa.Column) and el.table is src:
                return self.table.c[el.name]
            return None
        return visitors.replacement_traverse(row_filter, {}, swap)

    # -- writing ---------------------------------------------------------------------------------

    def _partials(self, where=None):
        """SELECT grain, count, partial sums FROM source [WHERE ...] GROUP BY grain."""
        src = self.source.table
        cols = [src.c[g] for g in self.grain] + [sa.func.count().label("_count")]
        for m in self.measures:
            if m.agg in {"sum", "avg"}:
                cols += [sa.func.sum(src.c[m.field]).label(f"{m.key}__sum"),
                         sa.func.count(src.c[m.field]).label(f"{m.key}__n")]
            elif m.agg == "count" and m.field:
                cols.append(sa.func.count(src.c[m.field]).label(f"{m.key}__n"))
        q = sa.select(*cols)
        if where is not None:
            q = q.where(where)
        if self.grain:
            q = q.group_by(*[src.c[g] for g in self.grain])
        return q, [c.name for c in cols]

    def rebuild(self, conn) -> int:
        """Recompute the whole table with one INSERT ... SELECT ... GROUP BY."""
        q, names = self._partials()
        conn.execute(self.table.delete())
        conn.execute(self.table.insert().from_select(names, q))
        return self.rows(conn)

    def analyze(self, conn) -> None:
        """Fresh planner statistics after a bulk (re)fill: SQLite never gathers them by itself."""
        conn.exec_driver_sql(f"ANALYZE {conn.dialect.identifier_preparer.format_table(self.table)}")

    def rows(self, conn) -> int:
        return conn.execute(sa.select(sa.func.count()).select_from(self.table)).scalar()

    def add_ids(self, conn, ids: list[int]) -> None:
        """A whole imported batch in one statement: its partial sums per grain, appended."""
        src = self.source.table
        for i in range(0, len(ids), 20000):        # keep bound parameter lists reasonable
            q, names = self._partials(src.c.id.in_(ids[i:i + 20000]))
            conn.execute(self.table.insert().from_select(names, q))

    def delta(self, record: dict, sign: int) -> dict:
        """One source record's contribution as a row (sign=1 adds it, sign=-1 removes it)."""
        row = {g: _python(self.source.table.c[g].type, record.get(g)) for g in self.grain}
        row["_count"] = sign
        for m in self.measures:
            if m.agg in {"sum", "avg"}:
                v = record.get(m.field)
                row[f"{m.key}__sum"] = Decimal(str(v)) * sign if v is not None else Decimal(0)
                row[f"{m.key}__n"] = sign if v is not None else 0
            elif m.agg == "count" and m.field:
                row[f"{m.key}__n"] = sign if record.get(m.field) is not None else 0
        return row

    def compact(self, conn) -> int:
        """Fold delta rows into one row per grain; drop groups whose count fell to zero."""
        t = self.table
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text(f"LOCK TABLE {conn.dialect.identifier_preparer.format_table(t)} IN EXCLUSIVE MODE"))
        folded = [sa.func.sum(t.c[c]).label(c) for c in self.value_columns]
        q = sa.select(*[t.c[g] for g in self.grain], *folded)
        if self.grain:
            q = q.group_by(*[t.c[g] for g in self.grain])
        rows = [dict(r) for r in conn.execute(q.having(sa.func.sum(t.c._count) != 0)).mappings()]
        conn.execute(t.delete())
        if rows:
            conn.execute(t.insert(), rows)
        return len(rows)


def _python(coltype, value):
    if value is None:
        return None
    try:
        pt = coltype.python_type
    except NotImplementedError:
        return value
    if pt is int:
        return int(value)
    if pt is Decimal:
        return Decimal(str(value))
    import datetime as dt
    if pt is dt.date and isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    if pt is dt.datetime and isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    return value


class Rollups:
    """Every ``rollup: true`` report's table: created and filled on first use, fed by events."""

    def __init__(self, loom, reports):
        self.loom = loom
        self.reports = reports
        self._tables: dict[str, RollupTable] = {}
        self._existing: set[str] = set()         # table names known to exist in the database
        self._compacted: dict[str, int] = {}      # table name -> rows after the last compaction
        self._by_source: tuple[int, dict[str, list[Report]]] | None = None
        self._lock = threading.RLock()
        self._handlers = []
        self._bus = None

    # -- tables ----------------------------------------------------------------------------------

    def table_for(self, rep: Report) -> RollupTable | None:
        source = self.loom.model.entities.get(rep.source_key)
        if source is None or rollup_problems(rep):
            return None
        key = f"{rep.full_key}@{self.loom.model.revision}"
        with self._lock:
            if key not in self._tables:
                self._tables[key] = RollupTable(rep, source, sa.MetaData())
            return self._tables[key]

    def ensure(self, rep: Report) -> RollupTable | None:
        """The report's rollup table, created and filled from the source if it does not exist yet."""
        rt = self.table_for(rep)
        if rt is not None:
            self._ensure(rt)
        return rt

    def _ensure(self, rt: RollupTable) -> bool:
        """True when the table was created (and filled) just now."""
        name = rt.table.name
        if name in self._existing:
            return False
        created = False
        with self._lock:
            if name not in self._existing:
                with self.loom.db.begin() as conn:
                    if not sa.inspect(conn).has_table(name, schema=rt.table.schema):
                        rt.table.create(conn)
                        self._compacted[name] = rt.rebuild(conn)
                        created = True
                self._existing.add(name)
        return created

    def rebuild(self, rep: Report) -> int:
        """Drop, recreate and refill the table from the source; returns its number of rows."""
        rt = self.table_for(rep)
        if rt is None:
            from engine.errors import InvalidInput, Problem
            raise InvalidInput(f"report `{rep.key}` cannot have a rollup",
                               problems=[Problem(m, field="rollup", code="report") for m in rollup_problems(rep)]
                               or [Problem(f"source `{rep.source}` is not installed", field="source")])
        with self._lock, self.loom.db.begin() as conn:
            rt.table.drop(conn, checkfirst=True)
            rt.table.create(conn)
            n = rt.rebuild(conn)
            rt.analyze(conn)
            self._existing.add(rt.table.name)
            self._compacted[rt.table.name] = n
        return n

    enable = rebuild            # the name older callers used

    def compact(self, rep: Report | None = None, *, force: bool = False) -> int:
        """Compact the given report's table, or every rollup table that has grown past twice its
        compacted size; returns the number of tables compacted."""
        done = 0
        for r in ([rep] if rep is not None else [r for reps in self._reports_by_source().values() for r in reps]):
            rt = self.table_for(r)
            if rt is None or rt.table.name not in self._existing:
                continue
            with self._lock, self.loom.db.begin() as conn:
                if not force and rt.rows(conn) <= 2 * max(self._compacted.get(rt.table.name, 0), 500):
                    continue
                self._compacted[rt.table.name] = rt.compact(conn)
                done += 1
        return done

    def usable(self, rep: Report, actor):
        """(rollup table, row filter on it or None) for this viewer, or None to run the live query."""
        if not rep.rollup:
            return None
        source = self.loom.model.entities.get(rep.source_key)
        if source is None:
            return None
        rt = self.table_for(rep)
        if rt is None:
            return None
        scope = self.loom.records._scoped(actor, source, "read")
        adapted = None
        if scope is not None:
            adapted = rt.adapt(scope)
            if adapted is None:
                return None
        rt = self.ensure(rep)
        return ScopedRollup(rt, adapted)

    # -- events ----------------------------------------------------------------------------------

    def _reports_by_source(self) -> dict[str, list[Report]]:
        rev = self.loom.model.revision
        cached = self._by_source
        if cached is not None and cached[0] == rev:
            return cached[1]
        from engine.meta import store
        with self.loom.db.connect() as conn:
            defs = store.current(conn, None, "report")
        out: dict[str, list[Report]] = {}
        for d in defs:
            if not d.body.get("rollup"):
                continue
            rep = self.reports.definition(d.app, d.key)
            out.setdefault(rep.source_key, []).append(rep)
        self._by_source = (rev, out)
        return out

    def subscribe(self, bus) -> None:
        for name in EVENTS:
            self._handlers.append((name, bus.subscribe(name, self.on_event)))
        self._bus = bus

    def stop(self) -> None:
        for name, h in self._handlers:
            if self._bus is not None:
                self._bus.unsubscribe(name, h)
        self._handlers = []

    def on_event(self, event) -> None:
        p = event.payload
        reps = self._reports_by_source().get(p.get("full_key"), [])
        for rep in reps:
            rt = self.table_for(rep)
            if rt is None:
                continue
            if self._ensure(rt):
                continue      # just built from the source, which already holds this change
            with self.loom.db.begin() as conn:
                if event.name == "records.imported":
                    if p.get("ids"):
                        rt.add_ids(conn, list(p["ids"]))
                    continue
                rows = []
                if p.get("before"):
                    rows.append(rt.delta(p["before"], -1))
                if p.get("record"):
                    rows.append(rt.delta(p["record"], +1))
                if rows:
                    conn.execute(rt.table.insert(), rows)
            if event.name == "records.imported":
                self.compact(rep)


class ScopedRollup:
    """What the compiler needs: the table, its grain columns, and the viewer's filter on it."""

    def __init__(self, rt: RollupTable, row_filter):
        self.rt = rt
        self.table = rt.table
        self.column_map = rt.column_map
        self.count_column = rt.count_column
        self.row_filter = row_filter

    def aggregate(self, m):
        return self.rt.aggregate(m)
