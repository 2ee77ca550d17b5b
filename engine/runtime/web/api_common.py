"""Helpers shared by the JSON API modules: who is calling, in which language, and which entity.

Kept apart from the blueprints so the records, metadata and file APIs resolve an entity, a
locale and a version precondition the same way. (No blueprint here: the app factory skips it.)
"""
from __future__ import annotations

from flask import request

from engine.errors import InvalidInput, LoomError, NotFound, Problem
from engine.forms.labels import normalize_locale
from engine.runtime.web.auth import current_actor

RESERVED_APPS = {"meta", "files", "auth", "openapi.json", "docs"}


class PreconditionRequired(LoomError):
    """A write that must say which version it changes (RFC 6585, 428)."""

    status = 428
    title = "Precondition required"


def request_locale(default: str | None) -> str:
    """``lang`` parameter, else the Accept-Language header, else the actor's own language."""
    lang = request.args.get("lang")
    if lang:
        return normalize_locale(lang)
    if request.headers.get("Accept-Language"):
        best = request.accept_languages.best_match(["zh-CN", "zh", "en"])
        if best:
            return normalize_locale(best)
    return normalize_locale(default)


def api_actor():
    """The calling actor (401 without a session or token), speaking the request's language."""
    actor = current_actor()
    locale = request_locale(actor.locale)
    return actor if locale == actor.locale else actor.with_locale(locale)


def entity_or_404(loom, app: str, entity: str):
    ent = loom.model.entities.get(f"{app}.{entity}")
    if ent is None or app in RESERVED_APPS:
        raise NotFound(f"no entity `{app}.{entity}`",
                       problems=[Problem(f"no entity `{app}.{entity}` is installed", path=request.path,
                                         code="not_found")])
    return ent


def parse_version(value, source: str) -> int | None:
    """A version from the body or an ``If-Match`` header (``"3"``, ``W/"3"`` or ``3``)."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if text == "*":
        return None
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    try:
        return int(text)
    except ValueError:
        raise InvalidInput(problems=[Problem(f"`{value}` is not a record version (a whole number)",
                                             field=source, code="parameter")]) from None


def etag(version) -> str:
    return f'"{version}"'


def json_body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be a JSON object",
                           problems=[Problem("expected a JSON object (Content-Type: application/json)",
                                             code="invalid_body")])
    return data
