"""OpenAPI 3.1 document generated from the installed definitions.

One component schema per entity (and per child table) derived from the field types: decimals
are strings with a pattern (money never travels as a float), selects are enums with their labels
in ``x-labels``, links are integer ids, child tables are arrays of their row schema. Every entity
gets the list / create / read / update / delete / import / export paths, list parameters,
problem+json error responses, and bearer-token and session-cookie security.
"""
from __future__ import annotations

from engine.forms.labels import LOCALES, label_of

PROBLEM = {"$ref": "#/components/responses/Problem"}
OPERATORS = ("ne", "lt", "lte", "gt", "gte", "in", "contains", "between", "isnull")
STANDARD_PROPS = {
    "id": {"type": "integer", "readOnly": True},
    "version": {"type": "integer", "readOnly": True, "description": "optimistic lock; send it back on PATCH"},
    "created_at": {"type": "string", "format": "date-time", "readOnly": True},
    "updated_at": {"type": "string", "format": "date-time", "readOnly": True},
    "created_by": {"type": ["integer", "null"], "readOnly": True},
    "updated_by": {"type": ["integer", "null"], "readOnly": True},
}


def _name(ent) -> str:
    return ent.full_key.replace(".", "_").replace("__", "_") if not ent.is_child else \
        f"{_name(ent.parent)}__{ent.parent_field}"


def _labels(label, fallback) -> dict:
    return {loc: label_of(label, loc) or fallback for loc in LOCALES}


def decimal_pattern(f) -> str:
    precision = f.spec.get("precision") or 18
    scale = f.spec.get("scale") if f.spec.get("scale") is not None else 2
    whole = precision - scale
    return rf"^-?\d{{1,{whole}}}(\.\d{{1,{scale}}})?$" if scale else rf"^-?\d{{1,{whole}}}$"


def field_schema(f, child_ref: str | None = None) -> dict:
    t = f.value_type
    spec = f.spec
    s: dict
    if t in {"text", "long_text"}:
        s = {"type": "string"}
        hi = spec.get("max_length") or (255 if t == "text" else None)
        if hi:
            s["maxLength"] = hi
        if spec.get("min_length"):
            s["minLength"] = spec["min_length"]
        if spec.get("pattern"):
            s["pattern"] = spec["pattern"]
    elif t == "email":
        s = {"type": "string", "format": "email"}
    elif t == "phone":
        s = {"type": "string", "pattern": r"^1[3-9]\d{9}$"}
    elif t == "integer":
        s = {"type": "integer"}
        if spec.get("min") is not None:
            s["minimum"] = spec["min"]
        if spec.get("max") is not None:
            s["maximum"] = spec["max"]
    elif t == "decimal":
        s = {"type": "string", "pattern": decimal_pattern(f), "format": "decimal"}
        if spec.get("min") is not None:
            s["x-minimum"] = str(spec["min"])
        if spec.get("max") is not None:
            s["x-maximum"] = str(spec["max"])
    elif t == "boolean":
        s = {"type": "boolean"}
    elif t == "date":
        s = {"type": "string", "format": "date"}
    elif t == "datetime":
        s = {"type": "string", "format": "date-time"}
    elif t == "select":
        s = {"enum": f.option_values(), "x-labels": {str(o.value): _labels(o.label, str(o.value)) for o in f.options}}
    elif t == "multi_select":
        s = {"type": "array", "uniqueItems": True,
             "items": {"enum": f.option_values(),
                       "x-labels": {str(o.value): _labels(o.label, str(o.value)) for o in f.options}}}
    elif t == "link":
        s = {"type": "integer", "description": f"id of a `{f.target}` record", "x-link": f.target}
    elif t == "attachment":
        one = {"$ref": "#/components/schemas/FileDescriptor"}
        s = {"oneOf": [one, {"type": "array", "items": one}]}
    elif t == "table":
        s = {"type": "array", "items": {"$ref": f"#/components/schemas/{child_ref}"}}
    else:  # json and anything free-form
        s = {}
    s["title"] = label_of(f.label, "en") or f.key
    s["x-label"] = _labels(f.label, f.key)
    if f.readonly:
        s["readOnly"] = True
    if not f.required and t != "table" and s:
        s = _nullable(s)
    return s


def _nullable(s: dict) -> dict:
    t = s.get("type")
    if isinstance(t, str):
        return {**s, "type": [t, "null"]}
    if "enum" in s:
        return {**s, "enum": [*s["enum"], None]}
    if "oneOf" in s:
        return {**s, "oneOf": [*s["oneOf"], {"type": "null"}]}
    return s


def entity_schemas(ent, out: dict) -> str:
    name = _name(ent)
    props = {}
    required = []
    for f in ent.fields.values():
        child = entity_schemas(f.children, out) if f.children is not None else None
        props[f.key] = field_schema(f, child)
        if f.required and f.type != "computed":
            required.append(f.key)
    std = dict(STANDARD_PROPS) if not ent.is_child else {"id": {"type": "integer"}}
    out[name] = {"type": "object", "title": label_of(ent.label, "en") or ent.key,
                 "x-labels": _labels(ent.label, ent.key), "properties": {**std, **props},
                 "additionalProperties": False}
    if required:
        out[name]["required"] = required
    return name


def _list_parameters(ent) -> list[dict]:
    params = [
        {"name": "q", "in": "query", "schema": {"type": "string"}, "description": "search across text fields"},
        {"name": "sort", "in": "query", "schema": {"type": "string"}, "description": "`field` or `-field`, comma separated"},
        {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
        {"name": "page_size", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
        {"name": "cursor", "in": "query", "schema": {"type": "string"}, "description": "next_cursor of the previous page"},
        {"name": "fields", "in": "query", "schema": {"type": "string"}, "description": "comma-separated field keys"},
        {"name": "expand", "in": "query", "schema": {"type": "string"}, "description": "links and child tables to include"},
        {"name": "total", "in": "query", "schema": {"type": "boolean"}},
        {"name": "lang", "in": "query", "schema": {"enum": list(LOCALES)}},
    ]
    for f in ent.column_fields:
        params.append({"name": f.key, "in": "query", "schema": {"type": "string"}, "required": False,
                       "description": f"{label_of(f.label, 'en')}: equals (also `{f.key}__op` with op one of "
                                      f"{', '.join(OPERATORS)})"})
    return params


def build_openapi(model, *, title: str = "Loom API", version: str = "1") -> dict:
    schemas: dict = {
        "FileDescriptor": {"type": "object", "required": ["sha256"],
                           "properties": {"sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                                          "name": {"type": "string"}, "size": {"type": "integer"},
                                          "type": {"type": "string"}}},
        "Problem": {"type": "object", "properties": {
            "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
            "detail": {"type": "string"}, "current_version": {"type": "integer"},
            "errors": {"type": "array", "items": {"type": "object", "properties": {
                "message": {"type": "string"}, "field": {"type": "string"}, "line": {"type": "integer"},
                "column": {"type": "integer"}, "code": {"type": "string"}}}}}},
        "ImportResult": {"type": "object", "properties": {
            "inserted": {"type": "integer"}, "updated": {"type": "integer"}, "rejected": {"type": "integer"},
            "problems": {"type": "array", "items": {"$ref": "#/components/schemas/Problem/properties/errors/items"}}}},
    }
    paths: dict = {}
    errors = {"401": PROBLEM, "403": PROBLEM, "404": PROBLEM, "422": PROBLEM}
    id_param = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
    if_match = {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
                "description": "the ETag (version) you read"}
    for ent in sorted(model.entities.values(), key=lambda e: e.full_key):
        name = entity_schemas(ent, schemas)
        ref = {"$ref": f"#/components/schemas/{name}"}
        tag = ent.full_key
        base = f"/api/v1/{ent.app}/{ent.key}"
        json_of = lambda s: {"application/json": {"schema": s}}  # noqa: E731
        page = {"type": "object", "properties": {
            "items": {"type": "array", "items": ref}, "total": {"type": ["integer", "null"]},
            "page": {"type": "integer"}, "page_size": {"type": "integer"},
            "next_cursor": {"type": ["string", "null"]}, "has_more": {"type": "boolean"}}}
        paths[base] = {
            "get": {"tags": [tag], "operationId": f"list_{name}", "summary": f"List {ent.title('en')}",
                    "parameters": _list_parameters(ent),
                    "responses": {"200": {"description": "a page of records", "content": json_of(page)}, **errors}},
            "post": {"tags": [tag], "operationId": f"create_{name}", "summary": f"Create a {ent.title('en')}",
                     "requestBody": {"required": True, "content": json_of(ref)},
                     "responses": {"201": {"description": "created", "content": json_of(ref)}, **errors}},
        }
        patch_body = {"allOf": [ref], "description": "changed fields only, plus `version` unless If-Match is sent"}
        paths[base + "/{id}"] = {
            "get": {"tags": [tag], "operationId": f"read_{name}", "parameters": [id_param],
                    "responses": {"200": {"description": "the record (ETag = version)", "content": json_of(ref)},
                                  **errors}},
            "patch": {"tags": [tag], "operationId": f"update_{name}", "parameters": [id_param, if_match],
                      "requestBody": {"required": True, "content": json_of(patch_body)},
                      "responses": {"200": {"description": "updated", "content": json_of(ref)}, "409": PROBLEM,
                                    "428": PROBLEM, **errors}},
            "delete": {"tags": [tag], "operationId": f"delete_{name}", "parameters": [id_param, if_match],
                       "responses": {"204": {"description": "deleted"}, "409": PROBLEM, **errors}},
        }
        paths[base + "/import"] = {
            "post": {"tags": [tag], "operationId": f"import_{name}",
                     "parameters": [{"name": "mode", "in": "query", "schema": {"enum": ["all", "good"]}},
                                    {"name": "format", "in": "query", "schema": {"enum": ["csv", "jsonl"]}}],
                     "requestBody": {"required": True, "content": {
                         "text/csv": {"schema": {"type": "string"}},
                         "application/x-ndjson": {"schema": {"type": "string"}},
                         "multipart/form-data": {"schema": {"type": "object", "properties": {
                             "file": {"type": "string", "contentMediaType": "application/octet-stream"}}}}}},
                     "responses": {"200": {"description": "imported", "content": json_of(
                         {"$ref": "#/components/schemas/ImportResult"})}, **errors}}}
        paths[base + "/export"] = {
            "get": {"tags": [tag], "operationId": f"export_{name}",
                    "parameters": [{"name": "format", "in": "query", "schema": {"enum": ["csv", "xlsx"]}},
                                   *_list_parameters(ent)],
                    "responses": {"200": {"description": "the file", "content": {
                        "text/csv": {"schema": {"type": "string"}},
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                            "schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}},
                        **errors}}}
    paths["/api/v1/files"] = {"post": {"tags": ["files"], "operationId": "upload_file",
                                       "requestBody": {"content": {"multipart/form-data": {"schema": {
                                           "type": "object", "properties": {"file": {"type": "string"}}}}}},
                                       "responses": {"201": {"description": "stored", "content": {
                                           "application/json": {"schema": {"$ref": "#/components/schemas/FileDescriptor"}}}},
                                           **errors}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
                 "description": "Generated from the installed definitions. Errors are RFC 9457 problem+json."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"cookie": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {"Problem": {"description": "an error (RFC 9457)", "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "an API token"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "session"},
            },
        },
    }
