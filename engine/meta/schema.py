"""The meta-schemas: one JSON Schema (Draft 2020-12) per definition kind.

The files under ``schemas/`` reference shared ``$defs`` (key, label, expression, semver) kept in
``common.schema.json``; :func:`meta_schema` merges them so what it returns -- and what
``loom schema`` prints for editors -- is self-contained. Validators are built once per kind.
"""
from __future__ import annotations

import difflib
import json
from functools import lru_cache
from importlib import resources

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

SCHEMA_KINDS = ("app", "entity", "form", "role", "report", "dashboard", "rule", "script", "workflow", "fixture", "migration")


def _read(name: str) -> dict:
    return json.loads(resources.files("engine.meta").joinpath("schemas").joinpath(name).read_text("utf-8"))


@lru_cache(maxsize=None)
def meta_schema(kind: str) -> dict:
    if kind not in SCHEMA_KINDS:
        raise KeyError(f"unknown kind `{kind}`; kinds: {', '.join(SCHEMA_KINDS)}")
    schema = _read(f"{kind}.schema.json")
    schema["$id"] = f"https://loom.invalid/schema/{kind}.json"
    defs = dict(_read("common.schema.json")["$defs"])
    defs.update(schema.get("$defs", {}))
    schema["$defs"] = defs
    if kind == "role":  # roles.yaml holds a list; a single role validates against $defs/role
        pass
    return schema


@lru_cache(maxsize=None)
def validator(kind: str, pointer: str | None = None) -> Draft202012Validator:
    schema = meta_schema(kind)
    if pointer:
        schema = {**schema["$defs"][pointer], "$defs": schema["$defs"]}
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _names(value) -> str:
    return ", ".join(str(v) for v in value)


def explain(error: ValidationError) -> tuple[str, tuple]:
    """Turn a jsonschema error into a sentence an analyst understands, and the path it concerns."""
    path = tuple(error.absolute_path)
    v = error.validator
    if path and isinstance(path[-1], int) and isinstance(error.instance, dict) and error.instance.get("key"):
        where = f"`{error.instance['key']}`"
    elif path and isinstance(path[-1], str):
        where = f"`{path[-1]}`"
    else:
        where = f"item {path[-1] + 1}" if path else "the document"
    if v == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"{where}: missing required property `{missing}`", path
    if v == "additionalProperties":
        known = list(error.schema.get("properties", {}))
        extras = [e for e in error.instance if e not in known] if isinstance(error.instance, dict) else []
        msgs = []
        for extra in extras:
            hint = difflib.get_close_matches(str(extra), known, n=1)
            msgs.append(f"unknown property `{extra}`" + (f" (did you mean `{hint[0]}`?)" if hint else ""))
        first = extras[0] if extras else None
        return f"{where}: " + "; ".join(msgs), path + ((first,) if first is not None else ())
    if v == "enum":
        return f"{where}: `{error.instance}` is not one of {_names(error.validator_value)}", path
    if v == "const":
        return f"{where}: must be `{error.validator_value}`", path
    if v == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"{where}: expected {expected}, got {type(error.instance).__name__} `{error.instance!r}`", path
    if v == "pattern":
        if error.schema.get("description"):
            return f"{where}: `{error.instance}` is not valid: {error.schema['description']}", path
        return f"{where}: `{error.instance}` does not match the pattern {error.validator_value}", path
    if v in {"oneOf", "anyOf"}:
        if "zh-CN" in json.dumps(error.schema):
            return f"{where}: expected a text or a mapping of languages {{zh-CN: ..., en: ...}}", path
        best = min(error.context, key=lambda e: len(e.absolute_path) * -1, default=None) if error.context else None
        if best is not None:
            return explain(best)
        return f"{where}: {error.message}", path
    if v in {"minItems", "minLength"}:
        return f"{where}: must not be empty", path
    if v in {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}:
        return f"{where}: {error.message}", path
    return f"{where}: {error.message}", path


def iter_problems(kind: str, data, pointer: str | None = None):
    """Yield (message, path) for every schema violation of ``data``."""
    for error in sorted(validator(kind, pointer).iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        yield explain(error)
