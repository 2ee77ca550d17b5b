"""Exports of entity lists to CSV and XLSX, through the one read road.

Rows come from ``loom.query.scoped_select(entity, actor, "export")`` with the same filters, search
and sort as the list API, so a row scope or a masked field cannot leak through an export. Headers
are the field labels (zh-CN by default); XLSX cells keep numbers as numbers and dates as dates
(openpyxl's write-only workbook, so memory stays flat however many rows there are). Each export
is written to the audit log.
"""
from __future__ import annotations

import csv
import io
import json
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Iterator

import sqlalchemy as sa

from engine import audit
from engine.errors import Forbidden, InvalidInput, Problem
from engine.forms.labels import label_of
from engine.records.serialize import mask_value

CHINA_TZ = timezone(timedelta(hours=8))
STANDARD_LABELS = {
    "id": {"zh-CN": "编号", "en": "ID"},
    "version": {"zh-CN": "版本", "en": "Version"},
    "created_at": {"zh-CN": "创建时间", "en": "Created at"},
    "updated_at": {"zh-CN": "更新时间", "en": "Updated at"},
    "created_by": {"zh-CN": "创建人", "en": "Created by"},
    "updated_by": {"zh-CN": "更新人", "en": "Updated by"},
}
FORMATS = ("csv", "xlsx")
BATCH = 1000


@dataclass
class Column:
    key: str
    header: str
    type: str
    mask: str | None = None      # masking style when the actor sees this field masked


def columns_for(entity, rules: dict, locale: str, fields: list[str] | None) -> list[Column]:
    """The exported columns: id, then every column field the actor may see (or those asked for)."""
    cols = [Column("id", label_of(STANDARD_LABELS["id"], locale), "integer")]
    wanted = fields or [f.key for f in entity.column_fields]
    for key in wanted:
        if key == "id":
            continue
        if key in STANDARD_LABELS:
            cols.append(Column(key, label_of(STANDARD_LABELS[key], locale),
                               "datetime" if key.endswith("_at") else "integer"))
            continue
        f = entity.fields.get(key)
        if f is None or not f.has_column:
            raise InvalidInput(problems=[Problem(f"cannot export `{key}`: no such column field",
                                                 field="fields", code="parameter")])
        rule = rules.get(key)
        if rule == "hidden":
            continue
        cols.append(Column(key, f.title(locale), f.value_type,
                           (f.spec.get("mask") or "default") if rule == "masked" else None))
    return cols


def export_rows(loom, entity, actor, req) -> tuple[list[Column], Iterator[list]]:
    """Columns and a generator of typed row values (masked where the rules say so).

    The generator opens its own connection and fetches in batches; it is meant to be consumed
    while the response streams.
    """
    query = loom.query
    service = loom.records
    rules = service._rules(actor, entity)
    cols = columns_for(entity, rules, actor.locale, req.fields)
    t = entity.table
    q = query.scoped_select(entity, actor, "export")
    conds = query.where(entity, actor, req.filters, req.search)
    if conds:
        q = q.where(*conds)
    order = []
    for name, desc in req.sort or [("id", False)]:
        if name not in t.c or name.endswith("__bidx"):
            raise InvalidInput(problems=[Problem(f"cannot sort by `{name}`", field="sort", code="parameter")])
        if rules.get(name) in {"hidden", "masked"} or (name in entity.fields and entity.fields[name].sensitive):
            # the order of the rows would reveal the value
            raise Forbidden(problems=[Problem(f"you may not sort by `{name}`", field="sort", code="forbidden")])
        order.append(t.c[name].desc() if desc else t.c[name].asc())
    q = q.order_by(*order, t.c.id)

    def rows() -> Iterator[list]:
        with loom.db.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(q).mappings()
            for raw in result:
                rec = service._decode_row(entity, raw)
                out = []
                for c in cols:
                    v = rec.get(c.key)
                    if c.mask is not None:
                        v = mask_value(v, c.mask)
                    out.append(v)
                yield out

    return cols, rows()


def count_rows(loom, entity, actor, req) -> int:
    q = loom.query.scoped_select(entity, actor, "export", columns=[entity.table.c.id])
    conds = loom.query.where(entity, actor, req.filters, req.search)
    if conds:
        q = q.where(*conds)
    with loom.db.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(q.subquery())).scalar() or 0


def audit_export(loom, entity, actor, fmt: str, req, rows: int) -> None:
    with loom.db.begin() as conn:
        audit.append(conn, "export", actor_id=actor.user_id, actor=actor.username, address=actor.address,
                     app=entity.app, entity=entity.full_key,
                     detail={"format": fmt, "rows": rows, "filters": [list(f) for f in req.filters],
                             "search": req.search, "fields": req.fields})


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return ",".join(value)
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def csv_chunks(cols: list[Column], rows: Iterator[list]) -> Iterator[str]:
    """CSV text in chunks (UTF-8 BOM first so Excel reads the Chinese headers)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    buf.write("\ufeff")
    writer.writerow([c.header for c in cols])
    n = 0
    for row in rows:
        writer.writerow([_text(v) for v in row])
        n += 1
        if n % 200 == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def _cell(value: Any):
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(CHINA_TZ).replace(tzinfo=None)   # Excel has no time zones
        return value
    if isinstance(value, (bool, int, float, Decimal, date)) or value is None:
        return value
    return _text(value)


def write_xlsx(cols: list[Column], rows: Iterator[list], sheet_title: str):
    """A spooled temporary file holding the workbook (write-only mode: rows are not kept)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=_sheet_title(sheet_title))
    formats = {"date": "yyyy-mm-dd", "datetime": "yyyy-mm-dd hh:mm:ss"}
    ws.append([c.header for c in cols])
    for row in rows:
        cells = []
        for c, v in zip(cols, row):
            v = _cell(v)
            fmt = formats.get(c.type)
            if fmt and v is not None and c.mask is None:
                cell = WriteOnlyCell(ws, value=v)
                cell.number_format = fmt
                cells.append(cell)
            else:
                cells.append(v)
        ws.append(cells)
    out = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
    wb.save(out)
    out.seek(0)
    return out


def _sheet_title(title: str) -> str:
    bad = set('[]:*?/\\')
    return "".join(ch for ch in title if ch not in bad)[:31] or "Sheet1"
