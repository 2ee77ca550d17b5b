"""Bulk import (CSV and JSON lines; all-or-nothing or good rows only) and export (CSV / XLSX)."""
from __future__ import annotations

import csv
import io
import json

import sqlalchemy as sa
from openpyxl import load_workbook

from engine.audit import audit_log

URL = "/api/v1/mini/customer"
CSV_MIXED = (
    "姓名,Risk level,aum,mobile\n"     # zh-CN label, en label and keys mixed
    "赵六,C1,100.5,13700137000\n"
    "钱七,C9,abc,13700137001\n"         # line 3: two bad fields
    "孙八,C2,,\n"
    ",C3,1,\n"                          # line 5: name is required
)


def _count(api, q):
    return api.get(f"{URL}?q={q}").get_json()["total"]


def test_csv_all_or_nothing_reports_each_bad_line_and_field(api):
    r = api.post(f"{URL}/import", data=CSV_MIXED.encode(), content_type="text/csv")
    assert r.status_code == 422
    body = r.get_json()
    assert body["inserted"] == 0 and body["rejected"] == 2
    problems = {(e["line"], e["field"]) for e in body["errors"]}
    assert problems == {(3, "risk_level"), (3, "aum"), (5, "name")}
    assert _count(api, "赵六") == 0 and _count(api, "孙八") == 0


def test_csv_good_rows_only_imports_the_good_ones(api):
    r = api.post(f"{URL}/import?mode=good&lang=en", data=CSV_MIXED.encode(), content_type="text/csv")
    assert r.status_code == 200
    body = r.get_json()
    assert body["inserted"] == 2 and body["rejected"] == 2
    assert {(p["line"], p["field"]) for p in body["problems"]} == {(3, "risk_level"), (3, "aum"), (5, "name")}
    assert "is required" in [p["message"] for p in body["problems"] if p["line"] == 5][0]
    zl = api.get(f"{URL}?name=赵六").get_json()["items"][0]
    assert zl["aum"] == "100.50" and zl["mobile"] == "13700137000"
    assert _count(api, "钱七") == 0


def test_jsonl_import_in_small_batches_with_child_rows(api):
    lines = [json.dumps({"name": f"批量{i}", "risk_level": "C3", "accounts": [{"number": f"N{i}"}]}, ensure_ascii=False)
             for i in range(7)]
    r = api.post(f"{URL}/import?batch_size=3", data="\n".join(lines).encode(), content_type="application/x-ndjson")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["inserted"] == 7
    item = api.get(f"{URL}?name=批量6&expand=accounts").get_json()["items"][0]
    assert item["accounts"][0]["number"] == "N6"


def test_jsonl_bad_json_line_cancels_everything_and_names_the_line(api):
    data = '{"name": "好", "risk_level": "C1"}\n{"name": oops}\n{"name": "也好", "risk_level": "C1"}\n'
    r = api.post(f"{URL}/import", data=data.encode(), content_type="application/x-ndjson")
    assert r.status_code == 422
    assert [e["line"] for e in r.get_json()["errors"]] == [2]
    assert _count(api, "好") == 0


def test_unknown_csv_column_is_refused_before_anything_is_written(api):
    r = api.post(f"{URL}/import", data="姓名,colour\n甲,red\n".encode(), content_type="text/csv")
    assert r.status_code == 422
    err = r.get_json()["errors"][0]
    assert err["line"] == 1 and err["field"] == "colour"


def test_multipart_upload_import(api):
    data = {"file": (io.BytesIO("name,risk_level\n文件导入,C4\n".encode("utf-8-sig")), "c.csv")}
    r = api.post(f"{URL}/import", data=data, content_type="multipart/form-data")
    assert r.status_code == 200 and r.get_json()["inserted"] == 1


def test_export_csv_has_chinese_headers_and_is_audited(api, mini):
    r = api.get(f"{URL}/export?format=csv&risk_level=C3")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:3] == ["编号", "姓名", "手机号"]
    assert [row[1] for row in rows[1:]] == ["张三"]
    en = api.get(f"{URL}/export?format=csv&lang=en").get_data(as_text=True).lstrip("\ufeff")
    assert en.splitlines()[0].startswith("ID,Name,Mobile")
    with mini.db.connect() as conn:
        entries = conn.execute(sa.select(audit_log).where(audit_log.c.action == "export")).mappings().all()
    assert len(entries) == 2 and entries[0]["detail"]["rows"] == 1 and entries[0]["actor"] == "alice"


def test_export_xlsx_keeps_numbers_as_numbers(api):
    api.post(URL, json={"name": "表格", "risk_level": "C2", "aum": "1234.56", "birthday": "1990-05-06"})
    r = api.get(f"{URL}/export?format=xlsx&sort=id")
    assert r.status_code == 200
    wb = load_workbook(io.BytesIO(r.data), read_only=True)
    ws = wb.worksheets[0]
    rows = list(ws.iter_rows(values_only=True))
    header = rows[0]
    assert header[:2] == ("编号", "姓名") and "资产" in header and "生日" in header
    by_name = {row[1]: dict(zip(header, row)) for row in rows[1:]}
    assert by_name["表格"]["资产"] == 1234.56 and isinstance(by_name["张三"]["资产"], (int, float))
    assert by_name["表格"]["生日"].year == 1990


def test_export_rejects_unknown_format(api):
    r = api.get(f"{URL}/export?format=pdf")
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "format"


def test_import_of_a_flat_entity_checks_unique_values_per_batch(api):
    # branch has no child tables: rows go in with one executemany (COPY on PostgreSQL)
    data = "编码,名称\nGZ01,广州营业部\nSZ01,深圳营业部\nBJ01,重复的北京\nGZ01,重复的广州\n"
    r = api.post("/api/v1/mini/branch/import?mode=good&batch_size=2", data=data.encode(), content_type="text/csv")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["inserted"] == 2
    assert {(p["line"], p["field"], p["code"]) for p in body["problems"]} == {(4, "code", "unique"), (5, "code", "unique")}
    items = api.get("/api/v1/mini/branch?sort=code").get_json()["items"]
    assert [(b["code"], b["name"]) for b in items] == [("BJ01", "北京营业部"), ("GZ01", "广州营业部"),
                                                       ("SH01", "上海营业部"), ("SZ01", "深圳营业部")]
    assert all(b["version"] == 1 and b["created_by"] for b in items if b["code"] in {"GZ01", "SZ01"})
