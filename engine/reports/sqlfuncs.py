"""Portable SQL pieces a report needs, compiled per dialect so SQLite and PostgreSQL agree.

* :class:`DateBucket` -- a date/datetime truncated to day, week (the Monday), month, quarter or
  year, rendered as the *same text* on both databases ("2024-03", "2024-Q1", "2024-03-04"), so
  results compare equal and chart axes read the same.
* :func:`to_number` -- division operands: SQLite divides integers as integers, so they become
  REAL there; PostgreSQL keeps exact NUMERIC.
* :func:`safe_div` -- ``a / NULLIF(b, 0)``: a zero denominator gives NULL, never an error.
"""
from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from engine.types import UTCDateTime

BUCKETS = ("day", "week", "month", "quarter", "year")


class DateBucket(ColumnElement):
    # what the statement cache keys on: without it SQLAlchemy cannot cache any report statement
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement), ("unit", InternalTraversal.dp_string),
                           ("is_datetime", InternalTraversal.dp_boolean)]
    inherit_cache = True
    type = sa.String()

    def __init__(self, column, unit: str):
        self.column = column
        self.unit = unit
        self.is_datetime = isinstance(getattr(column, "type", None), (UTCDateTime, sa.DateTime))

    @property
    def _from_objects(self):
        return self.column._from_objects


@compiles(DateBucket, "sqlite")
def _bucket_sqlite(el: DateBucket, compiler, **kw):
    c = compiler.process(el.column, **kw)
    if el.unit == "day":
        return f"strftime('%Y-%m-%d', {c})"
    if el.unit == "month":
        return f"strftime('%Y-%m', {c})"
    if el.unit == "year":
        return f"strftime('%Y', {c})"
    if el.unit == "quarter":
        return f"(strftime('%Y', {c}) || '-Q' || ((CAST(strftime('%m', {c}) AS INTEGER) + 2) / 3))"
    if el.unit == "week":
        return f"date({c}, '-' || ((CAST(strftime('%w', {c}) AS INTEGER) + 6) % 7) || ' days')"
    raise ValueError(el.unit)


@compiles(DateBucket, "postgresql")
def _bucket_pg(el: DateBucket, compiler, **kw):
    c = compiler.process(el.column, **kw)
    ts = f"({c} AT TIME ZONE 'UTC')" if el.is_datetime else f"CAST({c} AS timestamp)"
    fmt = {"day": "YYYY-MM-DD", "month": "YYYY-MM", "year": "YYYY", "quarter": 'YYYY-"Q"Q'}.get(el.unit)
    if fmt:
        return f"to_char({ts}, '{fmt}')"
    if el.unit == "week":
        return f"to_char(date_trunc('week', {ts}), 'YYYY-MM-DD')"
    raise ValueError(el.unit)


@compiles(DateBucket)
def _bucket_default(el, compiler, **kw):  # pragma: no cover - other dialects are not supported
    raise NotImplementedError(f"date buckets are not implemented for {compiler.dialect.name}")


class _ToNumber(ColumnElement):
    _traverse_internals = [("expr", InternalTraversal.dp_clauseelement)]
    inherit_cache = True
    type = sa.Numeric()

    def __init__(self, expr):
        self.expr = expr

    @property
    def _from_objects(self):
        return getattr(self.expr, "_from_objects", [])


@compiles(_ToNumber, "sqlite")
def _num_sqlite(el, compiler, **kw):
    return f"CAST({compiler.process(el.expr, **kw)} AS REAL)"


@compiles(_ToNumber)
def _num_default(el, compiler, **kw):
    return f"CAST({compiler.process(el.expr, **kw)} AS NUMERIC)"


def to_number(expr):
    return _ToNumber(expr)


def number_literal(value) -> ColumnElement:
    """A numeric constant bound as text and cast, so 0.001 never passes through a binary float
    on PostgreSQL, nor gets rounded to a column's scale by that column's type."""
    if isinstance(value, bool):
        return sa.literal(value)
    if isinstance(value, int):
        return sa.literal(value, sa.BigInteger())
    return to_number(sa.literal(str(Decimal(str(value))), sa.String()))


def safe_div(a, b):
    return to_number(a) / sa.func.nullif(to_number(b), 0)
