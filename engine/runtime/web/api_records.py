"""REST API for records: ``/api/v1/<app>/<entity>`` -- list, create, read, update, delete, bulk
import and export, for every installed entity with no per-entity code.

Everything goes through the engine's two roads: writes through ``loom.records`` (permission,
validation, version check, audit, events), reads through ``loom.query`` (row scopes, field rules).
This module only translates HTTP: parameters, bodies, ``ETag``/``If-Match`` and status codes.
Errors are ``application/problem+json`` (the app's LoomError handler).
"""
from __future__ import annotations

import codecs
import csv
import io
import json
from typing import Iterator

from flask import Blueprint, Response, jsonify, request, stream_with_context, url_for

from engine.errors import InvalidInput, Problem
from engine.forms.labels import LOCALES, label_of
from engine.records import ImportRejected, ListRequest
from engine.runtime import exports
from engine.runtime.web.api_common import (PreconditionRequired, api_actor, entity_or_404, etag, json_body,
                                           parse_version)

bp = Blueprint("api_records", __name__, url_prefix="/api/v1")

LIST_RESERVED = {"lang", "format", "mode", "batch_size"}
IMPORT_BATCH = 500


def _loom():
    from engine.runtime.app import get_loom
    return get_loom()


def _with_etag(body: dict, status: int = 200) -> Response:
    resp = jsonify(body)
    resp.status_code = status
    if body.get("version") is not None:
        resp.headers["ETag"] = etag(body["version"])
    return resp


# -- list / create --------------------------------------------------------------------------------

@bp.get("/<app>/<entity>")
def list_records(app: str, entity: str):
    loom = _loom()
    actor = api_actor()
    ent = entity_or_404(loom, app, entity)
    req = ListRequest.from_params(request.args, reserved=LIST_RESERVED)
    return jsonify(loom.query.list(ent, actor, req))


@bp.post("/<app>/<entity>")
def create_record(app: str, entity: str):
    loom = _loom()
    actor = api_actor()
    ent = entity_or_404(loom, app, entity)
    rec = loom.records.create(ent, json_body(), actor)
    resp = _with_etag(rec, 201)
    resp.headers["Location"] = url_for("api_records.read_record", app=app, entity=entity, record_id=rec["id"])
    return resp


# -- one record -----------------------------------------------------------------------------------

@bp.get("/<app>/<entity>/<int:record_id>")
def read_record(app: str, entity: str, record_id: int):
    loom = _loom()
    actor = api_actor()
    ent = entity_or_404(loom, app, entity)
    rec = loom.records.get(ent, record_id, actor)
    inm = request.headers.get("If-None-Match")
    if inm and inm.strip() in {etag(rec.get("version")), f"W/{etag(rec.get('version'))}"}:
        resp = Response(status=304)
        resp.headers["ETag"] = etag(rec["version"])
        return resp
    return _with_etag(rec)


def _expected_version(data: dict | None, required: bool) -> int | None:
    header = request.headers.get("If-Match")
    from_header = parse_version(header, "If-Match") if header else None
    from_body = parse_version(data.pop("version", None), "version") if data is not None else None
    if from_header is not None and from_body is not None and from_header != from_body:
        raise InvalidInput(problems=[Problem(f"If-Match says version {from_header} but the body says {from_body}",
                                             field="version", code="parameter")])
    version = from_header if from_header is not None else from_body
    if version is None and required:
        raise PreconditionRequired(
            "send the version you read, as `version` in the body or an If-Match header, so a change made "
            "meanwhile by someone else is not overwritten",
            problems=[Problem("missing `version` / If-Match", field="version", code="precondition_required")])
    return version


@bp.patch("/<app>/<entity>/<int:record_id>")
def update_record(app: str, entity: str, record_id: int):
    loom = _loom()
    actor = api_actor()
    ent = entity_or_404(loom, app, entity)
    data = json_body()
    version = _expected_version(data, required=True)
    if "id" in data:
        if str(data.pop("id")) != str(record_id):
            raise InvalidInput(problems=[Problem("the body's `id` differs from the URL", field="id", code="parameter")])
    rec = loom.records.update(ent, record_id, data, actor, expected_version=version)
    return _with_etag(rec)


@bp.delete("/<app>/<entity>/<int:record_id>")
def delete_record(app: str, entity: str, record_id: int):
    loom = _loom()
    actor = api_actor()
    ent = entity_or_404(loom, app, entity)
    loom.records.delete(ent, record_id, actor, expected_version=_expected_version(None, required=False))
    return Response(status=204)


# -- bulk import ----------------------------------------------------------------------------------

def _header_map(ent, header: list[str]) -> list[str]:
    """CSV header cells (field keys, or labels in zh-CN or en) -> field keys; unknown ones refused."""
    by_name: dict[str, str] = {}
    for f in ent.fields.values():
        if f.type == "computed":
            continue
        by_name[f.key] = f.key
        for loc in LOCALES:
            by_name.setdefault(label_of(f.label, loc).strip(), f.key)
    keys, problems = [], []
    for col, cell in enumerate(header, start=1):
        name = cell.strip().lstrip("\ufeff")
        if name not in by_name:
            problems.append(Problem(f"column `{name}` is not a field of `{ent.full_key}` (use field keys or labels)",
                                    line=1, column=col, field=name, code="unknown_column"))
        keys.append(by_name.get(name, name))
    dupes = {k for k in keys if keys.count(k) > 1}
    for k in sorted(dupes):
        problems.append(Problem(f"field `{k}` appears in more than one column", line=1, field=k, code="duplicate_column"))
    if problems:
        raise InvalidInput(problems=problems)
    return keys


def _csv_rows(ent, text: io.TextIOBase) -> Iterator[tuple[int, dict]]:
    """(line, data) per CSV row; empty cells are left out, JSON cells for child tables / json fields."""
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        return
    keys = _header_map(ent, header)
    structured = {f.key for f in ent.fields.values() if f.type in {"table", "json", "attachment"}}
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(keys):
            yield line, _BadRow(f"{len(cells)} cells but the header has {len(keys)} columns")
            continue
        data = {}
        for key, cell in zip(keys, cells):
            if cell == "":
                continue
            if key in structured and cell.lstrip()[:1] in "[{":
                try:
                    data[key] = json.loads(cell)
                    continue
                except ValueError:
                    pass
            data[key] = cell
        yield line, data


def _jsonl_rows(text: io.TextIOBase) -> Iterator[tuple[int, dict]]:
    for line, raw in enumerate(text, start=1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except ValueError as exc:
            yield line, _BadRow(f"not valid JSON: {exc.msg} (column {exc.colno})")
            continue
        yield line, data if isinstance(data, dict) else _BadRow("each line must be a JSON object")


class _BadRow:
    """A row that could not even be parsed; the importer reports it at its line."""

    def __init__(self, message: str):
        self.message = message


def _with_parse_errors(rows: Iterator[tuple[int, object]], parse_problems: list[Problem]):
    """Pass good rows on; keep unparseable ones aside (reported with the validation problems)."""
    for line, data in rows:
        if isinstance(data, _BadRow):
            parse_problems.append(Problem(data.message, line=line, code="parse"))
            continue
        yield line, data


def _import_source():
    """The uploaded file (multipart field `file`) or the raw body, as a binary stream, and its format."""
    fmt = (request.args.get("format") or "").lower()
    if request.files:
        upload = request.files.get("file") or next(iter(request.files.values()))
        stream, name, ctype = upload.stream, upload.filename or "", upload.mimetype or ""
    else:
        stream, name, ctype = request.stream, "", request.mimetype or ""
    if not fmt:
        if name.lower().endswith((".jsonl", ".ndjson")) or "json" in ctype:
            fmt = "jsonl"
        else:
            fmt = "csv"
    if fmt not in {"csv", "jsonl"}:
        raise InvalidInput(problems=[Problem("`format` must be csv or jsonl", field="format", code="parameter")])
    return stream, fmt


@bp.post("/<app>/<entity>/import")
def import_records(app: str, entity: str):
    loom = _loom()
    actor = api_actor()
    ent = entity_or_404(loom, app, entity)
    mode = (request.args.get("mode") or "all").lower()
    if mode not in {"all", "good"}:
        raise InvalidInput(problems=[Problem("`mode` must be `all` (a bad row imports nothing) or `good` "
                                             "(import the good rows, report the bad)", field="mode", code="parameter")])
    try:
        batch_size = max(1, min(int(request.args.get("batch_size", IMPORT_BATCH)), 5000))
    except ValueError:
        raise InvalidInput(problems=[Problem("`batch_size` must be a whole number", field="batch_size",
                                             code="parameter")]) from None
    stream, fmt = _import_source()
    text = codecs.getreader("utf-8-sig")(stream, errors="strict")
    parse_problems: list[Problem] = []
    rows = _csv_rows(ent, text) if fmt == "csv" else _jsonl_rows(text)
    # the header is read (and checked) before anything is written
    rows = _with_parse_errors(rows, parse_problems)
    try:
        if mode == "all":
            result = _import_all(loom, ent, rows, actor, batch_size, parse_problems)
        else:
            result = loom.records.import_rows(ent, rows, actor, good_rows_only=True, batch_size=batch_size)
    except UnicodeDecodeError:
        raise InvalidInput(problems=[Problem("the file is not UTF-8 text", code="encoding")]) from None
    except ImportRejected as exc:
        problems = sorted(parse_problems + exc.problems, key=lambda p: (p.line or 0))
        raise InvalidInput(f"{exc.result.rejected + len(parse_problems)} bad row(s); nothing was imported",
                           problems=problems, inserted=0, rejected=exc.result.rejected + len(parse_problems)) from None
    body = result.to_dict()
    if parse_problems:
        body["rejected"] += len(parse_problems)
        body["problems"] = [p.to_dict() for p in sorted(parse_problems + result.problems, key=lambda p: p.line or 0)]
    body["ids"] = result.ids[:1000]
    return jsonify(body)


def _import_all(loom, ent, rows, actor, batch_size: int, parse_problems: list[Problem]):
    """All-or-nothing: one transaction; an unparseable line also cancels the whole import."""
    with loom.records.unit() as uow:
        sp = uow.conn.begin_nested()
        try:
            result = loom.records.import_rows(ent, rows, actor, good_rows_only=False, batch_size=batch_size, uow=uow)
        except ImportRejected:
            sp.rollback()
            uow.events.clear()
            raise
        if parse_problems:
            sp.rollback()
            uow.events.clear()
            from engine.records.bulk import ImportResult
            raise ImportRejected(ImportResult(rejected=0, problems=[]))
        sp.commit()
    return result


# -- export ---------------------------------------------------------------------------------------

@bp.get("/<app>/<entity>/export")
def export_records(app: str, entity: str):
    loom = _loom()
    actor = api_actor()
    ent = entity_or_404(loom, app, entity)
    fmt = (request.args.get("format") or "csv").lower()
    if fmt not in exports.FORMATS:
        raise InvalidInput(problems=[Problem("`format` must be csv or xlsx", field="format", code="parameter")])
    locale = request.args.get("lang") or "zh-CN"      # headers in Chinese unless asked otherwise
    actor = actor.with_locale(locale) if actor.locale != locale else actor
    req = ListRequest.from_params(request.args, reserved=LIST_RESERVED)
    cols, rows = exports.export_rows(loom, ent, actor, req)
    filename = f"{ent.app}_{ent.key}.{fmt}"
    if fmt == "xlsx":
        counted = _Counter(rows)
        out = exports.write_xlsx(cols, counted, ent.title(actor.locale))
        exports.audit_export(loom, ent, actor, fmt, req, counted.n)
        resp = Response(_file_chunks(out), mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    else:
        exports.audit_export(loom, ent, actor, fmt, req, exports.count_rows(loom, ent, actor, req))
        resp = Response(stream_with_context(exports.csv_chunks(cols, rows)), mimetype="text/csv")
        resp.charset = "utf-8"
    resp.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return resp


class _Counter:
    def __init__(self, rows):
        self.rows, self.n = rows, 0

    def __iter__(self):
        for row in self.rows:
            self.n += 1
            yield row


def _file_chunks(f, size: int = 1 << 16):
    try:
        while chunk := f.read(size):
            yield chunk
    finally:
        f.close()
