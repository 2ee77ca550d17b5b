"""The designer's HTTP side: pages under ``/designer`` and a JSON API under ``/api/v1/designer``.

Imported only from :mod:`engine.runtime.web.designer` (``runtime`` is the only package that knows
Flask). Pages carry no inline script (the site's CSP forbids it): data goes to the scripts in
``data-*`` attributes and JSON endpoints. Every route checks the ``design`` permission; every
publish goes through ``loom.publish`` (validated like a bundle install, migrated, audited).
The live form preview is rendered by the staff screens' own layout code and field macros
(``records/_fields.html``), so the preview is what staff will see.
"""
from __future__ import annotations

import json
from pathlib import Path

from flask import Blueprint, jsonify, render_template, request, url_for
from flask_babel import gettext as _

from designer import service
from engine.errors import InvalidInput, Problem
from engine.forms import label_of
from engine.runtime.web.auth import current_actor, login_required

HERE = Path(__file__).resolve().parent
bp = Blueprint("designer", __name__, template_folder="templates", static_folder="static",
               static_url_path="/designer/static")

NAV = {"endpoint": "designer.index", "label": {"zh-CN": "设计器", "en": "Designer"}, "order": 90}

#: strings of bpmn-js' palette, context pad and popup menu; translated through our catalog
BPMN_STRINGS = [
    "Activate hand tool", "Activate lasso tool", "Activate create/remove space tool", "Activate global connect tool",
    "Create start event", "Create intermediate/boundary event", "Create end event", "Create gateway", "Create task",
    "Create data object reference", "Create data store reference", "Create expanded sub-process",
    "Create pool/participant", "Create group", "Append end event", "Append gateway", "Append task",
    "Append intermediate/boundary event", "Append text annotation", "Add text annotation",
    "Connect to other element", "Connect using sequence/message flow or association", "Connect using association",
    "Delete", "Change element", "Change type", "Add lane above", "Add lane below", "Divide into two lanes",
    "Divide into three lanes", "Append user task", "Append service task", "Append script task",
    "User task", "Service task", "Script task", "Task", "Exclusive gateway", "Parallel gateway", "Start event",
    "End event", "Timer boundary event", "Search in diagram", "Create element", "Append element",
]


def _loom():
    from engine.runtime.app import get_loom
    return get_loom()


def _actor(app: str | None = None, entity: str | None = None):
    actor = current_actor()
    service.require_design(_loom(), actor, app, entity)
    return actor


def _json() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise InvalidInput("send a JSON object", problems=[Problem("the request body must be a JSON object",
                                                                   code="json")])
    return data


def _problems(problems) -> list[dict]:
    return [p.to_dict() for p in problems]


def _items(app: str, data: dict, actor, with_lock: str) -> list[tuple]:
    """``{"items": [{kind, key, body, lock_version|version}]}`` -> tuples, checking the permission
    per item (entity/form: ``design`` on that entity; others: on the app)."""
    items = data.get("items")
    if not isinstance(items, list) or not items:
        raise InvalidInput("`items` must list the definitions",
                           problems=[Problem("give at least one definition", field="items", code="required")])
    out = []
    loom = _loom()
    for i, it in enumerate(items):
        if not isinstance(it, dict) or not isinstance(it.get("body"), dict) or not it.get("kind") or not it.get("key"):
            raise InvalidInput(f"items[{i}] needs kind, key and body",
                               problems=[Problem("needs kind, key and body", field=f"items[{i}]", code="required")])
        kind, key, body = it["kind"], it["key"], it["body"]
        if kind == "entity":
            _check_entity_permission(loom, actor, app, key)
        elif kind == "form":
            _check_entity_permission(loom, actor, app, body.get("entity"))
        else:
            service.require_design(loom, actor, app)
        lock = it.get(with_lock)
        out.append((kind, key, body, int(lock) if lock not in (None, "") else None))
    return out


def _check_entity_permission(loom, actor, app, entity):
    if f"{app}.{entity}" in loom.model.entities:
        service.require_design(loom, actor, app, entity)
    else:
        service.require_design(loom, actor, app)     # a new entity: design on the app


# -- pages -----------------------------------------------------------------------------------------

def _page(template: str, **ctx):
    from engine.runtime.web.screens import navigation
    actor = current_actor()
    return render_template(template, actor=actor, nav=navigation(actor), **ctx)


@bp.get("/designer")
@login_required
def index():
    from engine.runtime.web.screens import _installed_apps
    actor = _actor()
    apps = []
    for a in _installed_apps():
        if service.can_design(_loom(), actor, a["key"]):
            apps.append({"key": a["key"], "title": label_of(a["title"], actor.locale) or a["key"],
                         "catalog": service.catalog(_loom(), a["key"])})
    return _page("designer/index.html", title=_("Designer"), apps=apps)


@bp.get("/designer/<app>/form/<entity>")
@login_required
def form_page(app, entity):
    actor = current_actor()
    _check_entity_permission(_loom(), actor, app, entity)
    return _page("designer/form.html", title=_("Form designer"), app=app, entity=entity,
                 api=url_for("designer.api_entity", app=app, entity=entity))


@bp.get("/designer/<app>/workflow/<key>")
@login_required
def workflow_page(app, key):
    _actor(app)
    return _page("designer/workflow.html", title=_("Process modeler"), app=app, key=key,
                 api=url_for("designer.api_workflow", app=app, key=key))


@bp.get("/designer/<app>/report/<key>")
@login_required
def report_page(app, key):
    _actor(app)
    return _page("designer/report.html", title=_("Report builder"), app=app, key=key,
                 api=url_for("designer.api_report", app=app, key=key))


# -- shared JSON API -------------------------------------------------------------------------------

@bp.post("/api/v1/designer/check")
@login_required
def api_check():
    _actor()
    data = _json()
    mode = data.get("mode", "eval")
    return jsonify({"problems": service.check_expression(data.get("source", ""), mode)})


@bp.get("/api/v1/designer/<app>/meta")
@login_required
def api_meta(app):
    """Entities with their fields, forms, roles and service actions: the designers' select lists."""
    actor = _actor(app)
    loom = _loom()
    ents = []
    for k, e in loom.model.entities.items():
        if e.app != app or e.parent is not None:
            continue
        ents.append({"key": e.key, "label": e.title(actor.locale),
                     "fields": [{"key": f.key, "type": f.type, "label": label_of(f.label, actor.locale) or f.key,
                                 "target": f.target if f.type == "link" else None}
                                for f in e.fields.values() if not f.is_child_table]})
    cat = service.catalog(loom, app)
    try:
        from engine.workflow import ACTIONS
        actions = sorted(ACTIONS)
    except ImportError:
        actions = []
    return jsonify({"app": app, "entities": ents, "forms": [f["key"] for f in cat["form"]],
                    "roles": [{"key": r["key"], "label": label_of(r["label"], actor.locale) or r["key"]}
                              for r in cat["role"]],
                    "dashboards": [{"key": d["key"], "label": label_of(d["label"], actor.locale) or d["key"]}
                                   for d in cat["dashboard"]],
                    "actions": actions})


@bp.post("/api/v1/designer/<app>/draft")
@login_required
def api_save_draft(app):
    actor = current_actor()
    items = _items(app, _json(), actor, "lock_version")
    return jsonify({"saved": service.save_drafts(_loom(), app, items, actor)})


@bp.post("/api/v1/designer/<app>/validate")
@login_required
def api_validate(app):
    """Validate as deploy does, without publishing: problems (with element ids / fields), the
    migration plan, and the diff of each definition against its published version."""
    actor = current_actor()
    items = _items(app, _json(), actor, "version")
    loom = _loom()
    res = service.check(loom, app, [(k, key, b) for k, key, b, _ in items])
    return jsonify({"ok": not res["problems"], "problems": _problems(res["problems"]),
                    "migration": res["migration"], "destructive": res["destructive"],
                    "diff": {f"{k}:{key}": service.diff(loom, app, k, key, b) for k, key, b, _ in items}})


@bp.post("/api/v1/designer/<app>/publish")
@login_required
def api_publish(app):
    actor = current_actor()
    data = _json()
    items = _items(app, data, actor, "version")
    published = service.publish(_loom(), app, items, actor, confirm_destructive=bool(data.get("confirm_destructive")),
                                comment=data.get("comment"))
    return jsonify({"published": published})


@bp.delete("/api/v1/designer/<app>/<kind>/<key>/draft")
@login_required
def api_discard(app, kind, key):
    _actor(app)
    service.discard(_loom(), app, kind, key)
    return jsonify({"discarded": True})


@bp.get("/api/v1/designer/<app>/<kind>/<key>/history")
@login_required
def api_history(app, kind, key):
    _actor(app)
    return jsonify({"history": service.history(_loom(), app, kind, key)})


@bp.post("/api/v1/designer/<app>/<kind>/<key>/rollback")
@login_required
def api_rollback(app, kind, key):
    actor = current_actor()
    if kind == "entity":
        _check_entity_permission(_loom(), actor, app, key)
    else:
        service.require_design(_loom(), actor, app)
    data = _json()
    try:
        version = int(data.get("version"))
    except (TypeError, ValueError):
        raise InvalidInput("`version` must be a version number",
                           problems=[Problem("must be a version number", field="version", code="type")]) from None
    return jsonify({"published": service.rollback(_loom(), app, kind, key, version, actor,
                                                  confirm_destructive=bool(data.get("confirm_destructive")))})


# -- form and entity designer -------------------------------------------------------------------------

@bp.get("/api/v1/designer/<app>/entity/<entity>")
@login_required
def api_entity(app, entity):
    actor = current_actor()
    loom = _loom()
    _check_entity_permission(loom, actor, app, entity)
    form_key = service.form_key_of(loom, app, entity)
    ent = service.load(loom, app, "entity", entity)
    form = service.load(loom, app, "form", form_key)
    return jsonify({"app": app, "entity": ent.to_dict(), "form": form.to_dict(), "form_key": form_key,
                    "preview_url": url_for("designer.preview", app=app, entity=entity),
                    "staff_url": url_for("screens.create", app=app, entity=entity)})


@bp.post("/designer/<app>/form/<entity>/preview")
@login_required
def preview(app, entity):
    """The draft form rendered by the staff screens' layout and field macros (htmx fragment)."""
    from engine.runtime.web import screens_forms as sf
    from engine.runtime.web import screens_views as sv
    actor = current_actor()
    loom = _loom()
    _check_entity_permission(loom, actor, app, entity)
    try:
        draft = json.loads(request.form.get("draft") or "{}")
    except ValueError:
        draft = {}
    ent_body, form_body = draft.get("entity"), draft.get("form")
    if not isinstance(ent_body, dict) or not isinstance(form_body, dict):
        return render_template("designer/_preview.html", problems=[{"message": _("Nothing to preview yet.")}])
    res = service.check(loom, app, [("entity", entity, ent_body), ("form", form_body.get("key") or f"{entity}_form",
                                                                      form_body)], checkers=False)
    model = res["model"]
    if model is None:
        return render_template("designer/_preview.html", problems=_problems(res["problems"]))
    ent = model.entities[f"{app}.{entity}"]
    tabs = sf.layout(ent, model.default_form(ent))
    ctx = sv.FormContext(loom, actor, ent, "create", {}, uploads=False)
    values = {f.key: f.spec["default"] for f in ent.fields.values() if "default" in f.spec}
    return render_template("designer/_preview.html", problems=[], tabs=sv.form_view(ctx, tabs, values),
                           migration=res["migration"])


# -- BPMN modeler ----------------------------------------------------------------------------------

@bp.get("/api/v1/designer/<app>/workflow/<key>")
@login_required
def api_workflow(app, key):
    _actor(app)
    wf = service.load(_loom(), app, "workflow", key)
    return jsonify({"app": app, "workflow": wf.to_dict(), "meta_url": url_for("designer.api_meta", app=app),
                    "moddle_url": url_for("designer.moddle"), "i18n_url": url_for("designer.bpmn_i18n")})


@bp.get("/designer/moddle/loom.json")
@login_required
def moddle():
    return jsonify(json.loads((HERE / "moddle" / "loom.json").read_text(encoding="utf-8")))


@bp.get("/designer/bpmn-i18n.json")
@login_required
def bpmn_i18n():
    """bpmn-js' palette and context-pad strings in the user's language (from our catalog)."""
    return jsonify({s: _(s) for s in BPMN_STRINGS})


# -- report builder --------------------------------------------------------------------------------

@bp.get("/api/v1/designer/<app>/report/<key>")
@login_required
def api_report(app, key):
    _actor(app)
    rep = service.load(_loom(), app, "report", key)
    return jsonify({"app": app, "report": rep.to_dict(), "meta_url": url_for("designer.api_meta", app=app),
                    "preview_url": url_for("designer.api_report_preview", app=app),
                    "dashboard_url": url_for("reports_screens.dashboard", app=app, key="__key__")
                    if "reports_screens" in _blueprints() else None})


def _blueprints():
    from flask import current_app
    return current_app.blueprints


@bp.post("/api/v1/designer/<app>/report-preview")
@login_required
def api_report_preview(app):
    """Run a draft report on real data with the designer's own permissions, without publishing."""
    actor = _actor(app)
    data = _json()
    body = data.get("body")
    if not isinstance(body, dict):
        raise InvalidInput("`body` must be the report definition",
                           problems=[Problem("must be an object", field="body", code="type")])
    return jsonify(service.preview_report(_loom(), app, body, actor, data.get("params") or {}))


@bp.post("/api/v1/designer/<app>/report/<key>/publish")
@login_required
def api_report_publish(app, key):
    """Publish the report and, when a dashboard is named, that dashboard with the report's widget."""
    actor = _actor(app)
    data = _json()
    body = data.get("body")
    if not isinstance(body, dict):
        raise InvalidInput("`body` must be the report definition",
                           problems=[Problem("must be an object", field="body", code="type")])
    items = [("report", key, body, data.get("version"))]
    dash = data.get("dashboard")
    if dash:
        dbody, dversion = service.dashboard_with(_loom(), app, dash, key, body, actor.locale,
                                                 data.get("dashboard_label"))
        items.append(("dashboard", dash, dbody, dversion))
    published = service.publish(_loom(), app, items, actor, comment=data.get("comment"))
    return jsonify({"published": published,
                    "dashboard_url": url_for("reports_screens.dashboard", app=app, key=dash)
                    if dash and "reports_screens" in _blueprints() else None})


def init_app(app) -> None:
    nav = app.extensions.setdefault("loom_nav", [])

    def visible(actor):
        try:
            return service.can_design(_loom(), actor)
        except Exception:  # noqa: BLE001 -- navigation must never break a page
            return False

    nav.append({**NAV, "visible": visible})
