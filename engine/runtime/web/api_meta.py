"""Read-only metadata through the same API road: installed apps, their entities, and each
entity's fields with labels in both languages -- what a client needs to build its own forms.

Only entities the caller may read are listed; the OpenAPI document describes the same shapes.
"""
from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, jsonify

from engine.errors import NotFound
from engine.forms.labels import LOCALES, label_of
from engine.meta import store
from engine.runtime.web.api_common import api_actor, entity_or_404

bp = Blueprint("api_meta", __name__, url_prefix="/api/v1/meta")

CONSTRAINTS = ("min_length", "max_length", "pattern", "min", "max", "precision", "scale", "default",
               "readonly", "sensitive", "mask", "accept", "max_size_mb", "multiple", "result")


def _loom():
    from engine.runtime.app import get_loom
    return get_loom()


def labels(label, fallback: str) -> dict:
    return {loc: label_of(label, loc) or fallback for loc in LOCALES}


def field_info(f) -> dict:
    out = {"key": f.key, "type": f.type, "label": labels(f.label, f.key), "required": f.required,
           "unique": f.unique}
    for c in CONSTRAINTS:
        if c in f.spec:
            out[c] = f.spec[c]
    if f.options:
        out["options"] = [{"value": o.value, "label": labels(o.label, str(o.value))} for o in f.options]
    if f.target:
        out["target"] = f.target
    if f.children is not None:
        out["fields"] = [field_info(c) for c in f.children.fields.values()]
    return out


def entity_info(ent, with_fields: bool) -> dict:
    out = {"app": ent.app, "key": ent.key, "full_key": ent.full_key, "label": labels(ent.label, ent.key),
           "title_field": ent.title_field, "version": ent.definition_version,
           "url": f"/api/v1/{ent.app}/{ent.key}"}
    if with_fields:
        out["fields"] = [field_info(f) for f in ent.fields.values()]
        out["list_columns"] = ent.list_columns()
    return out


def _readable(loom, actor):
    policy = loom.records.policy
    return [e for e in loom.model.entities.values() if actor.is_system or policy.can(actor, e, "read")]


@bp.get("/apps")
def apps():
    loom = _loom()
    actor = api_actor()
    visible = {e.app for e in _readable(loom, actor)}
    with loom.db.connect() as conn:
        rows = conn.execute(sa.select(store.apps.c.key, store.apps.c.version, store.apps.c.title)
                            .order_by(store.apps.c.key)).mappings().all()
    return jsonify({"items": [{"key": r["key"], "version": r["version"], "title": labels(r["title"], r["key"]),
                               "url": f"/api/v1/meta/{r['key']}/entities"}
                              for r in rows if r["key"] in visible or actor.is_admin]})


@bp.get("/<app>/entities")
def entities(app: str):
    loom = _loom()
    actor = api_actor()
    items = [entity_info(e, False) for e in _readable(loom, actor) if e.app == app]
    if not items and not any(e.app == app for e in loom.model.entities.values()):
        raise NotFound(f"no app `{app}` is installed")
    return jsonify({"items": items})


@bp.get("/<app>/<entity>")
def entity(app: str, entity: str):
    loom = _loom()
    actor = api_actor()
    ent = entity_or_404(loom, app, entity)
    loom.records._check(actor, ent, "read")
    return jsonify(entity_info(ent, True))
