"""Report results -> CSV and XLSX files with headers in the viewer's language and number formats.

Exports reuse :meth:`Reports.run` with the ``export`` action, so the viewer's scope, field rules
and permission to export apply exactly as on screen. CSV is UTF-8 with a BOM (Excel opens Chinese
headers correctly); XLSX (openpyxl) keeps numbers as numbers with formats: thousands separators,
the measure's decimals, percentages.
"""
from __future__ import annotations

import csv
import io
from decimal import Decimal

SUBTOTAL = {"zh-CN": "小计", "en": "Subtotal"}
TOTAL = {"zh-CN": "合计", "en": "Total"}


def _lines(result: dict, locale: str):
    cols = result["columns"]
    dims = [c for c in cols if c["kind"] == "dimension"]
    yield [c["label"] for c in cols], None
    for r in result["rows"]:
        yield [r.get(c["key"]) for c in cols], "row"
    for r in result.get("subtotals") or []:
        first = [r.get(c["key"]) for c in dims]
        label = SUBTOTAL.get(locale, "Subtotal")
        first = [v if v is not None else (label if i == len([x for x in first if x is not None]) else None)
                 for i, v in enumerate(first)]
        yield first + [r.get(c["key"]) for c in cols if c["kind"] == "measure"], "subtotal"
    if result.get("totals"):
        t = result["totals"]
        first = [TOTAL.get(locale, "Total")] + [None] * (len(dims) - 1) if dims else []
        yield first + [t.get(c["key"]) for c in cols if c["kind"] == "measure"], "total"


def export_csv(result: dict, locale: str = "zh-CN") -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    for values, _ in _lines(result, locale):
        w.writerow(["" if v is None else v for v in values])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def number_format(col: dict) -> str | None:
    if col["kind"] != "measure":
        return None
    scale = col.get("scale") or 0
    if col.get("format") == "percent":
        return "0." + "0" * max(scale - 2, 0) + "%" if scale > 2 else "0%"
    if col["type"] == "integer":
        return "#,##0"
    return "#,##0" + ("." + "0" * scale if scale else "")


def export_xlsx(result: dict, locale: str = "zh-CN") -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = (result.get("label") or "report")[:31]
    cols = result["columns"]
    formats = [number_format(c) for c in cols]
    for values, kind in _lines(result, locale):
        row = []
        for v, c in zip(values, cols):
            if c["kind"] == "measure" and v is not None and kind is not None:
                v = int(v) if c["type"] == "integer" else float(Decimal(str(v)))
            row.append(v)
        ws.append(row)
        r = ws.max_row
        if kind is None or kind in {"subtotal", "total"}:
            for cell in ws[r]:
                cell.font = Font(bold=True)
        if kind is not None:
            for i, fmt in enumerate(formats, start=1):
                if fmt:
                    ws.cell(row=r, column=i).number_format = fmt
    for i, c in enumerate(cols, start=1):
        ws.column_dimensions[ws.cell(row=1, column=i).column_letter].width = max(12, len(c["label"]) * 2 + 2)
    ws.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
