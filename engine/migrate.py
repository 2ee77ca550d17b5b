"""Bring live tables in line with their declared metadata, without ever losing data.

Used for the engine's own tables (``loom init``) and for entity tables (bundle install, designer
publish). The differ compares a declared :class:`sqlalchemy.Table` with the reflected one and
produces a :class:`MigrationPlan` of steps:

* ``create_table``, ``add_column``, ``add_index``: additive, applied by themselves;
* ``widen``: a type change that keeps every value (longer text, bigger integer, more digits);
* ``archive_column``: a column no longer declared is renamed ``<name>__archivedN``, never dropped;
* ``refuse``: an unsafe type change; the plan cannot be applied and says why.

Steps run through Alembic operations (batch mode on SQLite) inside the caller's transaction, so a
failing step leaves every table as it was.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

ARCHIVE_MARK = "__archived"


@dataclass(frozen=True)
class Step:
    kind: str                 # create_table | add_column | add_index | widen | archive_column | refuse
    table: str
    column: str | None = None
    detail: str = ""

    @property
    def destructive(self) -> bool:
        return self.kind == "archive_column"

    def __str__(self) -> str:
        target = f"{self.table}.{self.column}" if self.column else self.table
        return f"{self.kind} {target}" + (f": {self.detail}" if self.detail else "")

    def to_dict(self) -> dict:
        return {"kind": self.kind, "table": self.table, "column": self.column, "detail": self.detail}


@dataclass
class MigrationPlan:
    steps: list[Step] = field(default_factory=list)

    @property
    def refused(self) -> list[Step]:
        return [s for s in self.steps if s.kind == "refuse"]

    @property
    def destructive(self) -> list[Step]:
        return [s for s in self.steps if s.destructive]

    def __bool__(self) -> bool:
        return bool(self.steps)

    def describe(self) -> list[str]:
        return [str(s) for s in self.steps]


# -- type families -------------------------------------------------------------------------------

def _family(t: sa.types.TypeEngine) -> tuple[str, tuple]:
    """Reduce a (declared or reflected) type to a family and its size parameters."""
    from engine.types import ExactDecimal, UTCDateTime

    if isinstance(t, UTCDateTime):
        return "datetime", ()
    if isinstance(t, ExactDecimal):
        return "num", (t.precision, t.scale)
    if isinstance(t, sa.Boolean):
        return "bool", ()
    if isinstance(t, sa.BigInteger):
        return "int", (64,)
    if isinstance(t, sa.SmallInteger):
        return "int", (16,)
    if isinstance(t, sa.Integer):
        return "int", (32,)
    if isinstance(t, sa.Float) and not t.asdecimal:
        return "float", ()
    if isinstance(t, sa.Numeric):
        return "num", (t.precision, t.scale)
    if isinstance(t, sa.DateTime):
        return "datetime", ()
    if isinstance(t, sa.Date):
        return "date", ()
    if isinstance(t, sa.JSON):
        return "json", ()
    if isinstance(t, sa.LargeBinary):
        return "binary", ()
    if isinstance(t, sa.Text):
        return "str", (None,)
    if isinstance(t, sa.String):
        return "str", (t.length,)
    name = type(t).__name__.lower()
    if "json" in name:
        return "json", ()
    return name, ()


def _compare_types(declared, reflected, dialect: str) -> tuple[str, str]:
    """Return ("same"|"widen"|"refuse", reason)."""
    fd, pd = _family(declared)
    fr, pr = _family(reflected)
    if dialect == "sqlite":
        # SQLite stores by affinity: lengths and precisions are not enforced, so a change within
        # a family needs no DDL; NUMERIC reflects without precision.
        if fd == fr or (fd, fr) in {("num", "int"), ("bool", "int"), ("int", "bool")}:
            return "same", ""
        if fd == "str" and fr in {"json"} or fd == "json" and fr == "str":
            return "same", ""
    if fd == fr:
        if pd == pr:
            return "same", ""
        if fd == "str":
            old, new = pr[0], pd[0]
            if new is None or (old is not None and new >= old):
                return "widen", f"text length {old} -> {new or 'unlimited'}"
            return "refuse", f"shortening text from {old} to {new} characters could cut existing values"
        if fd == "int":
            if pd[0] >= pr[0]:
                return ("same", "") if pd[0] == pr[0] else ("widen", f"integer {pr[0]} -> {pd[0]} bits")
            return "refuse", "a smaller integer type could overflow existing values"
        if fd == "num":
            (p_new, s_new), (p_old, s_old) = pd, pr
            if p_old is None or p_new is None:
                return "same", ""
            if s_new >= s_old and (p_new - s_new) >= (p_old - s_old):
                return "widen", f"decimal({p_old},{s_old}) -> decimal({p_new},{s_new})"
            return "refuse", f"decimal({p_old},{s_old}) -> decimal({p_new},{s_new}) would lose digits"
        return "same", ""
    if fr == "int" and fd == "num":
        return "widen", "integer -> decimal"
    if fr in {"str", "int", "num", "date", "datetime", "bool"} and fd == "str" and pd[0] is None:
        return "widen", f"{fr} -> long text"
    return "refuse", f"changing {fr} to {fd} could lose or corrupt existing values"


# -- planning ------------------------------------------------------------------------------------

def plan_tables(conn: sa.Connection, tables: list[sa.Table], archive_missing: bool = True) -> MigrationPlan:
    """Compare declared tables with the database and list the steps to reach them."""
    insp = sa.inspect(conn)
    existing = set(insp.get_table_names())
    plan = MigrationPlan()
    dialect = conn.dialect.name
    for table in tables:
        if table.name not in existing:
            plan.steps.append(Step("create_table", table.name, detail=f"{len(table.columns)} columns"))
            continue
        live_cols = {c["name"]: c for c in insp.get_columns(table.name)}
        for col in table.columns:
            live = live_cols.get(col.name)
            if live is None:
                plan.steps.append(Step("add_column", table.name, col.name, _type_label(col.type)))
                continue
            verdict, reason = _compare_types(col.type, live["type"], dialect)
            if verdict == "widen":
                plan.steps.append(Step("widen", table.name, col.name, reason))
            elif verdict == "refuse":
                plan.steps.append(Step("refuse", table.name, col.name, reason))
        if archive_missing:
            declared = {c.name for c in table.columns}
            for name in live_cols:
                if name not in declared and ARCHIVE_MARK not in name:
                    plan.steps.append(Step("archive_column", table.name, name,
                                           "no longer declared; kept as an archived column"))
        live_indexes = {ix["name"] for ix in insp.get_indexes(table.name)}
        for ix in table.indexes:
            if ix.name not in live_indexes:
                plan.steps.append(Step("add_index", table.name, ix.name,
                                       ("unique " if ix.unique else "") + ", ".join(c.name for c in ix.columns)))
    return plan


def _type_label(t) -> str:
    fam, params = _family(t)
    return fam + (f"({', '.join(str(p) for p in params if p is not None)})" if any(p is not None for p in params) else "")


def _archive_name(conn: sa.Connection, table: str, column: str) -> str:
    taken = {c["name"] for c in sa.inspect(conn).get_columns(table)}
    n = 1
    while f"{column}{ARCHIVE_MARK}{n}" in taken:
        n += 1
    return f"{column}{ARCHIVE_MARK}{n}"


def apply_plan(conn: sa.Connection, plan: MigrationPlan, tables: list[sa.Table],
               confirm_destructive: bool = False) -> None:
    """Apply a plan inside the caller's transaction.

    Raises :class:`engine.errors.InvalidInput` when the plan has refused steps, or destructive ones
    without confirmation; nothing is changed in that case.
    """
    from engine.errors import InvalidInput, Problem

    if plan.refused:
        raise InvalidInput("schema change refused",
                           [Problem(s.detail, path=f"{s.table}.{s.column}", code="unsafe_type_change") for s in plan.refused])
    if plan.destructive and not confirm_destructive:
        raise InvalidInput("schema change needs confirmation",
                           [Problem(f"column `{s.column}` would be archived; confirm to proceed",
                                    path=f"{s.table}.{s.column}", code="needs_confirmation") for s in plan.destructive])
    by_name = {t.name: t for t in tables}
    ops = Operations(MigrationContext.configure(conn))
    sqlite = conn.dialect.name == "sqlite"
    # create tables in dependency order so foreign keys resolve
    to_create = [s.table for s in plan.steps if s.kind == "create_table"]
    if to_create:
        md = next(iter(by_name.values())).metadata
        ordered = [t for t in md.sorted_tables if t.name in to_create]
        for t in ordered:
            t.create(conn)
    for step in plan.steps:
        table = by_name.get(step.table)
        if step.kind == "add_column":
            col = table.c[step.column]
            new = sa.Column(col.name, col.type, *[sa.ForeignKey(fk.target_fullname, ondelete=fk.ondelete) for fk in col.foreign_keys],
                            nullable=True, server_default=col.server_default)
            if sqlite:
                # ALTER TABLE ADD COLUMN keeps the table (and its rows) in place; SQLite accepts an
                # inline REFERENCES there but not a separate ADD CONSTRAINT.
                ddl = str(sa.schema.CreateColumn(sa.Column(col.name, col.type)).compile(dialect=conn.dialect))
                for fk in col.foreign_keys:
                    target_table, target_col = fk.target_fullname.rsplit(".", 1)
                    ddl += f' REFERENCES "{target_table}" ("{target_col}")'
                    if fk.ondelete:
                        ddl += f" ON DELETE {fk.ondelete}"
                conn.exec_driver_sql(f'ALTER TABLE "{step.table}" ADD COLUMN {ddl}')
            else:
                ops.add_column(step.table, new)
        elif step.kind == "widen":
            if sqlite:
                continue  # SQLite does not enforce sizes; the declared type is what readers use
            ops.alter_column(step.table, step.column, type_=table.c[step.column].type,
                             postgresql_using=None)
        elif step.kind == "archive_column":
            new_name = _archive_name(conn, step.table, step.column)
            live = {c["name"]: c for c in sa.inspect(conn).get_columns(step.table)}[step.column]
            if sqlite:
                conn.exec_driver_sql(f'ALTER TABLE "{step.table}" RENAME COLUMN "{step.column}" TO "{new_name}"')
            else:
                ops.alter_column(step.table, step.column, new_column_name=new_name,
                                 nullable=True, existing_type=live["type"])
    for step in plan.steps:
        if step.kind == "add_index":
            ix = next(i for i in by_name[step.table].indexes if i.name == step.column)
            ix.create(conn)
        elif step.kind == "create_table":
            pass  # indexes were created with the table


def additive_sync(conn: sa.Connection, metadata: sa.MetaData) -> list[str]:
    """Create/extend tables from metadata, never archive or alter (for the engine's own tables)."""
    tables = list(metadata.sorted_tables)
    plan = plan_tables(conn, tables, archive_missing=False)
    plan.steps = [s for s in plan.steps if s.kind in {"create_table", "add_column", "add_index"}]
    apply_plan(conn, plan, tables)
    return plan.describe()
