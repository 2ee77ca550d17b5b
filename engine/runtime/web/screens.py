"""The generated staff screens: home, list, detail, create/edit forms -- for every entity, with no
per-entity code.

Routes live under ``/r/<app>/<entity>``. Reads go through ``loom.query`` / ``loom.records.get`` and
writes through ``loom.records``, so permissions, row scopes, field rules, validation and audit are
the same as on the API. htmx requests (``HX-Request``) get fragments: the list region, a new child
row, link lookup results, and the live form state (visibility, computed values).

Other web modules add navigation entries in their ``init_app``::

    app.extensions.setdefault("loom_nav", []).append(
        {"endpoint": "inbox.index", "label": {"zh-CN": "待办", "en": "Inbox"}, "icon": "inbox",
         "order": 10, "visible": lambda actor: True})
"""
from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Blueprint, abort, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from werkzeug.routing import BuildError

from engine.errors import Conflict, Forbidden, InvalidInput, LoomError, NotFound
from engine.forms import label_of
from engine.records import ListRequest
from engine.errors import Unauthorized
from engine.runtime.web.auth import current_actor, login_required
from engine.runtime.web.screens_format import format_value, link_titles, to_local
from engine.runtime.web import screens_forms as sf
from engine.runtime.web import screens_views as sv
from engine.runtime.web import record_page

log = logging.getLogger(__name__)
bp = Blueprint("screens", __name__)
PAGE_SIZE = 20


def _loom():
    from engine.runtime.app import get_loom
    return get_loom()


def _entity(app: str, entity: str):
    ent = _loom().model.entities.get(f"{app}.{entity}")
    if ent is None:
        raise NotFound(_("No such screen: %(name)s", name=f"{app}.{entity}"))
    return ent


def _can(actor, ent, action: str) -> bool:
    loom = _loom()
    return actor.is_system or loom.policy.can(actor, ent, action)


def _rules(actor, ent) -> dict:
    # the record service's own field rules (hidden / masked / readonly), so screens and API agree
    return _loom().records._rules(actor, ent)


# -- navigation --------------------------------------------------------------------------------------

def _installed_apps() -> list[dict]:
    from engine.meta import store
    with _loom().db.connect() as conn:
        rows = conn.execute(sa.select(store.apps.c.key, store.apps.c.title, store.apps.c.manifest)
                            .order_by(store.apps.c.key)).mappings().all()
    return [dict(r) for r in rows]


def _menu_url(app: str, item: dict) -> str | None:
    if item.get("entity"):
        return url_for("screens.list_view", app=app, entity=item["entity"])
    if item.get("dashboard"):
        return url_for("reports_screens.dashboard", app=app, key=item["dashboard"])
    return item.get("url")


def _menu_items(actor, app: str, items: list, locale: str, depth: int = 0) -> list[dict]:
    loom = _loom()
    out = []
    for item in items or []:
        if item.get("entity"):
            ent = loom.model.entities.get(f"{app}.{item['entity']}")
            if ent is None or not _can(actor, ent, "read"):
                continue
        url = _menu_url(app, item)
        out.append({"label": label_of(item.get("label"), locale), "url": url, "icon": item.get("icon"),
                    "depth": depth, "active": bool(url) and request.path.startswith(url) and url != "/"})
        out.extend(_menu_items(actor, app, item.get("items") or [], locale, depth + 1))
    return out


def _dashboard_items(actor, app: str, menu: list) -> list[dict]:
    """The app's dashboards first, unless its menu places them itself: the viewer's default one
    (personal, else the one meant for their role) opens from there."""
    def mentions(items):
        return any(i.get("dashboard") or mentions(i.get("items") or []) for i in items or [])
    reports = _loom().extensions.get("reports")
    if reports is None or mentions(menu) or reports.dashboards.default_for(app, actor) is None:
        return []
    url = url_for("reports_screens.home", app=app)
    return [{"label": _("Dashboards"), "url": url, "icon": "chart", "depth": 0,
             "active": request.path.startswith(url)}]


def navigation(actor) -> dict:
    """Sidebar content: each installed app with its menu, then the entries other modules added."""
    from flask import current_app
    locale = actor.locale if actor else "zh-CN"
    apps = []
    if actor is not None:
        for a in _installed_apps():
            manifest = a["manifest"] or {}
            items = _dashboard_items(actor, a["key"], manifest.get("menu") or [])
            items += _menu_items(actor, a["key"], manifest.get("menu") or [], locale)
            apps.append({"key": a["key"], "title": label_of(a["title"] or manifest.get("title"), locale) or a["key"],
                         "items": items})
    extra = []
    for entry in sorted(current_app.extensions.get("loom_nav", []), key=lambda e: e.get("order", 100)):
        visible = entry.get("visible")
        if actor is None or (visible is not None and not visible(actor)):
            continue
        try:
            url = url_for(entry["endpoint"]) if entry.get("endpoint") else entry.get("url")
        except BuildError:
            continue
        extra.append({"label": label_of(entry.get("label"), locale), "url": url, "icon": entry.get("icon"),
                      "active": bool(url) and url != "/" and request.path.startswith(url)})
    return {"apps": apps, "extra": extra}


def _page(template: str, status: int = 200, **ctx):
    actor = current_actor(optional=True)
    return render_template(template, actor=actor, nav=navigation(actor), **ctx), status


# -- errors ------------------------------------------------------------------------------------------

def render_error(exc: LoomError):
    """A LoomError raised on a screen, as a page in the user's language (app.py calls this)."""
    if isinstance(exc, Unauthorized):
        return redirect(url_for("auth.login", next=request.full_path))
    titles = {400: _("Bad request"), 403: _("Not allowed"), 404: _("Not found"), 409: _("Conflict"),
              422: _("Invalid input")}
    body, status = _page("error.html", exc.status, title=titles.get(exc.status, _("Error")), message=exc.message,
                         problems=exc.problems)
    return body, status


# -- home, logout ----------------------------------------------------------------------------------

@bp.get("/")
@login_required
def home():
    actor = current_actor()
    nav = navigation(actor)
    return render_template("home.html", actor=actor, nav=nav, apps=nav["apps"])


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    locale = session.get("locale")
    session.clear()
    if locale:
        session["locale"] = locale
    return redirect(url_for("auth.login"))


# -- list ------------------------------------------------------------------------------------------

FILTER_TYPES = {"select", "multi_select", "boolean", "date", "datetime", "decimal", "integer"}


def _filters(ent, actor, args) -> list[dict]:
    """Filter controls for the list's columns, by field type, with their current values."""
    rules = _rules(actor, ent)
    out = []
    for key in ent.list_columns():
        f = ent.fields.get(key)
        if f is None or f.value_type not in FILTER_TYPES or rules.get(key) in {"hidden", "masked"} or f.sensitive:
            continue
        kind = {"select": "select", "multi_select": "multi", "boolean": "boolean"}.get(f.type, "range")
        item = {"key": key, "label": f.title(actor.locale), "kind": kind,
                "options": [(str(o.value), label_of(o.label, actor.locale)) for o in f.options],
                "input": "date" if f.value_type == "date" else ("datetime-local" if f.value_type == "datetime" else "text")}
        if kind == "multi":
            item["param"] = f"{key}__contains"
        elif kind == "range":
            item["param_from"], item["param_to"] = f"{key}__gte", f"{key}__lte"
        else:
            item["param"] = key
        out.append(item)
    return out


def _list_context(ent, actor) -> dict:
    loom = _loom()
    args = {k: v for k, v in request.args.items() if v not in ("", None)}
    params = {k: v for k, v in args.items() if k not in {"page_size"}}
    params["page_size"] = str(PAGE_SIZE)
    for k, v in list(params.items()):
        if k.endswith("__lte") and len(v) == 10 and ent.fields.get(k[:-5]) and ent.fields[k[:-5]].value_type == "datetime":
            params[k] = v + "T23:59:59"
    req = ListRequest.from_params(params)
    result = loom.query.list(ent, actor, req)
    rules = _rules(actor, ent)
    cols = [ent.fields[c] for c in ent.list_columns() if c in ent.fields and rules.get(c) != "hidden"]
    titles = link_titles(loom, ent, actor, result["items"], cols)
    sort = args.get("sort") or ((ent.spec.get("list") or {}).get("sort") or "-id")
    rows = []
    for item in result["items"]:
        rows.append({"id": item["id"], "url": url_for("screens.detail", app=ent.app, entity=ent.key, record_id=item["id"]),
                     "cells": [{"display": format_value(c, item.get(c.key), actor.locale, titles.get(c.key),
                                                        rules.get(c.key)),
                                "numeric": c.value_type in {"decimal", "integer"}} for c in cols]})
    headers = []
    for c in cols:
        active = sort.lstrip("-") == c.key
        desc = sort.startswith("-")
        next_sort = ("" if desc else "-") + c.key if active else c.key
        headers.append({"key": c.key, "label": c.title(actor.locale), "sortable": not c.sensitive,
                        "url": url_for("screens.list_view", app=ent.app, entity=ent.key,
                                       **{**args, "sort": next_sort, "page": 1}),
                        "active": active, "desc": desc, "numeric": c.value_type in {"decimal", "integer"}})
    total = result["total"] or 0
    pages = max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE)
    page = result["page"]

    def page_url(n):
        return url_for("screens.list_view", app=ent.app, entity=ent.key, **{**args, "page": n})

    return {"entity": ent, "title": ent.title(actor.locale), "headers": headers, "rows": rows, "total": total,
            "page": page, "pages": pages, "prev_url": page_url(page - 1) if page > 1 else None,
            "next_url": page_url(page + 1) if page < pages else None, "args": args, "sort": sort,
            "filters": _filters(ent, actor, args), "q": args.get("q", ""),
            "list_url": url_for("screens.list_view", app=ent.app, entity=ent.key),
            "new_url": url_for("screens.create", app=ent.app, entity=ent.key) if _can(actor, ent, "create") else None}


@bp.get("/r/<app>/<entity>")
@login_required
def list_view(app, entity):
    ent = _entity(app, entity)
    actor = current_actor()
    ctx = _list_context(ent, actor)
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "list-region":
        return render_template("records/_list_region.html", **ctx)
    return _page("records/list.html", **ctx)


# -- detail ----------------------------------------------------------------------------------------

def _form_context(ent, actor, mode: str, **kw) -> sv.FormContext:
    from flask import current_app
    return sv.FormContext(_loom(), actor, ent, mode, _rules(actor, ent),
                          uploads="api_files.upload" in current_app.view_functions, **kw)


def _history(ent, actor, record_id: int) -> list[dict]:
    from engine.audit.log import audit_log
    rules = _rules(actor, ent)
    with _loom().db.connect() as conn:
        rows = conn.execute(sa.select(audit_log).where(audit_log.c.entity == ent.full_key,
                                                       audit_log.c.record_id == str(record_id))
                            .order_by(audit_log.c.id.desc()).limit(50)).mappings().all()
    actions = {"create": _("created"), "update": _("updated"), "delete": _("deleted"), "import": _("imported")}
    out = []
    for r in rows:
        before, after = r["before"] or {}, r["after"] or {}
        changes = []
        if r["action"] != "create":
            for key in sorted(set(before) | set(after)):
                f = ent.fields.get(key)
                if f is None or rules.get(key) == "hidden" or key in {"id", "version", "updated_at", "updated_by"}:
                    continue
                if rules.get(key) == "masked" or f.sensitive:
                    changes.append({"label": f.title(actor.locale), "before": "***", "after": "***"})
                elif f.is_child_table:
                    changes.append({"label": f.title(actor.locale), "before": _("%(n)s rows", n=len(before.get(key) or [])),
                                    "after": _("%(n)s rows", n=len(after.get(key) or []))})
                else:
                    changes.append({"label": f.title(actor.locale),
                                    "before": format_value(f, before.get(key), actor.locale),
                                    "after": format_value(f, after.get(key), actor.locale)})
        at = to_local(r["at"])
        out.append({"at": at.strftime("%Y-%m-%d %H:%M:%S") if at else "", "actor": r["actor"] or "",
                    "action": actions.get(r["action"], r["action"]), "changes": changes})
    return out


def _reverse_links(ent, actor, record_id: int) -> list[dict]:
    """Records of other entities that link to this one (a few each, with a link to the full list)."""
    loom = _loom()
    out = []
    for other in loom.model.entities.values():
        for f in other.column_fields:
            if f.type != "link" or f.target != ent.full_key or not _can(actor, other, "read"):
                continue
            if _rules(actor, other).get(f.key) in {"hidden", "masked"}:
                continue
            try:
                res = loom.query.list(other, actor, ListRequest(filters=[(f.key, "eq", record_id)], page_size=5))
            except LoomError:
                continue
            tf = other.title_field
            out.append({"label": f"{other.title(actor.locale)} · {f.title(actor.locale)}", "total": res["total"],
                        "items": [{"title": str(i.get(tf) or f"#{i['id']}") if tf else f"#{i['id']}",
                                   "url": url_for("screens.detail", app=other.app, entity=other.key, record_id=i["id"])}
                                  for i in res["items"]],
                        "more_url": url_for("screens.list_view", app=other.app, entity=other.key, **{f.key: record_id})})
    return out


@bp.get("/r/<app>/<entity>/<int:record_id>")
@login_required
def detail(app, entity, record_id):
    ent = _entity(app, entity)
    actor = current_actor()
    loom = _loom()
    rec = loom.records.get(ent, record_id, actor)
    tabs = sf.layout(ent, loom.model.default_form(ent))
    ctx = _form_context(ent, actor, "edit")
    ctx.hidden = sf.hidden_paths(ent, tabs, sf.typed_values(ent, {k: v for k, v in rec.items()}, actor.locale),
                                 loom.sandbox_api(actor))
    tf = ent.title_field
    return _page("records/detail.html", entity=ent, record=rec, sections=sv.detail_view(ctx, tabs, rec),
                 title=str(rec.get(tf)) if tf and rec.get(tf) else f"{ent.title(actor.locale)} #{record_id}",
                 entity_title=ent.title(actor.locale), history=_history(ent, actor, record_id),
                 reverse=_reverse_links(ent, actor, record_id), panels=record_page.panels(ent, actor, record_id),
                 list_url=url_for("screens.list_view", app=app, entity=entity),
                 edit_url=url_for("screens.edit", app=app, entity=entity, record_id=record_id)
                 if _can(actor, ent, "update") else None,
                 delete_url=url_for("screens.delete", app=app, entity=entity, record_id=record_id)
                 if _can(actor, ent, "delete") else None)


# -- forms -----------------------------------------------------------------------------------------

def _has_live_state(ent, tabs) -> bool:
    if any(it.visible_if for it in sf.form_fields(tabs)) or any(s.visible_if for t in tabs for s in t.sections):
        return True
    return any(f.visible_if is not None or f.type == "computed" for e in ent.walk() for f in e.fields.values())


def _render_form(ent, actor, mode: str, values: dict, *, record=None, problems=(), status=200,
                 conflict=None):
    loom = _loom()
    tabs = sf.layout(ent, loom.model.default_form(ent))
    errors, general = sf.errors_by_field(list(problems))
    ctx = _form_context(ent, actor, mode, errors=errors)
    api = loom.sandbox_api(actor)
    typed = sf.compute(ent, sf.typed_values(ent, values, actor.locale), api)
    for f in ent.computed_fields:
        values[f.key] = typed.get(f.key)
    ctx.hidden = sf.hidden_paths(ent, tabs, typed, api)
    shown = {it.field.key for it in sf.form_fields(tabs)}
    unplaced = [m for p, m in errors.items() if p.split("[")[0].split(".")[0] not in shown]
    general += [msg for msgs in unplaced for msg in msgs]
    if mode == "create":
        action = url_for("screens.create", app=ent.app, entity=ent.key)
        cancel = url_for("screens.list_view", app=ent.app, entity=ent.key)
    else:
        action = url_for("screens.edit", app=ent.app, entity=ent.key, record_id=record["id"])
        cancel = url_for("screens.detail", app=ent.app, entity=ent.key, record_id=record["id"])
    title = (_("New %(entity)s", entity=ent.title(actor.locale)) if mode == "create"
             else _("Edit %(entity)s", entity=ent.title(actor.locale)))
    return _page("records/form.html", status, entity=ent, title=title, mode=mode, record=record,
                 tabs=sv.form_view(ctx, tabs, values), action=action, cancel_url=cancel, general_errors=general,
                 conflict=conflict, state_url=url_for("screens.form_state", app=ent.app, entity=ent.key)
                 if _has_live_state(ent, tabs) else None)


def _editable(ent, actor, mode):
    loom = _loom()
    tabs = sf.layout(ent, loom.model.default_form(ent))
    return sv.editable_fields(_form_context(ent, actor, mode), tabs)


@bp.route("/r/<app>/<entity>/new", methods=["GET", "POST"])
@login_required
def create(app, entity):
    ent = _entity(app, entity)
    actor = current_actor()
    if not _can(actor, ent, "create"):
        raise Forbidden(_("You may not create %(entity)s records", entity=ent.title(actor.locale)))
    if request.method == "GET":
        values = {f.key: f.spec["default"] for f in ent.fields.values() if "default" in f.spec}
        return _render_form(ent, actor, "create", values)
    data = sf.parse_form(ent, request.form, _editable(ent, actor, "create"), drop_empty=True)
    try:
        rec = _loom().records.create(ent, data, actor)
    except (InvalidInput, Forbidden) as exc:
        if not exc.problems or not any(p.field for p in exc.problems):
            raise
        return _render_form(ent, actor, "create", data, problems=exc.problems, status=422)
    return redirect(url_for("screens.detail", app=app, entity=entity, record_id=rec["id"], saved=1))


@bp.route("/r/<app>/<entity>/<int:record_id>/edit", methods=["GET", "POST"])
@login_required
def edit(app, entity, record_id):
    ent = _entity(app, entity)
    actor = current_actor()
    loom = _loom()
    if not _can(actor, ent, "update"):
        raise Forbidden(_("You may not change %(entity)s records", entity=ent.title(actor.locale)))
    rec = loom.records.get(ent, record_id, actor)
    if request.method == "GET":
        return _render_form(ent, actor, "edit", dict(rec), record=rec)
    data = sf.parse_form(ent, request.form, _editable(ent, actor, "edit"))
    version = request.form.get("_version")
    try:
        loom.records.update(ent, record_id, data, actor, expected_version=int(version) if version else None)
    except Conflict as exc:
        merged = {**rec, **data}
        return _render_form(ent, actor, "edit", merged, record={**rec, "version": int(version or 0)}, status=409,
                            conflict={"current_version": exc.extra.get("current_version"),
                                      "reload_url": url_for("screens.edit", app=app, entity=entity,
                                                            record_id=record_id)})
    except (InvalidInput, Forbidden) as exc:
        if not exc.problems or not any(p.field for p in exc.problems):
            raise
        merged = {**rec, **data}
        return _render_form(ent, actor, "edit", merged, record={**rec, "version": int(version or rec["version"])},
                            problems=exc.problems, status=422)
    return redirect(url_for("screens.detail", app=app, entity=entity, record_id=record_id, saved=1))


@bp.post("/r/<app>/<entity>/<int:record_id>/delete")
@login_required
def delete(app, entity, record_id):
    ent = _entity(app, entity)
    actor = current_actor()
    version = request.form.get("_version")
    _loom().records.delete(ent, record_id, actor, expected_version=int(version) if version else None)
    return redirect(url_for("screens.list_view", app=app, entity=entity, deleted=1))


# -- htmx fragments ----------------------------------------------------------------------------------

def _chain_field(ent, chain: str):
    """``accounts.positions`` -> (the FieldModel of positions, the entity that holds it)."""
    holder, f = ent, None
    for part in chain.split("."):
        if f is not None:
            if not f.is_child_table:
                abort(404)
            holder = f.children
        f = holder.fields.get(part)
        if f is None:
            abort(404)
    return f, holder


@bp.post("/r/<app>/<entity>/_state")
@login_required
def form_state(app, entity):
    """The live state of a form being edited: hidden inputs and computed values (htmx)."""
    ent = _entity(app, entity)
    actor = current_actor()
    loom = _loom()
    tabs = sf.layout(ent, loom.model.default_form(ent))
    data = sf.parse_form(ent, request.form)
    api = loom.sandbox_api(actor)
    typed = sf.compute(ent, sf.typed_values(ent, data, actor.locale), api)
    hidden = sorted(sf.hidden_paths(ent, tabs, typed, api))
    outputs = {sf.dom_id(p): text for p, text in sf.computed_outputs(ent, typed, actor.locale).items()}
    return render_template("records/_form_state.html", hidden=hidden, outputs=outputs)


@bp.get("/r/<app>/<entity>/_row")
@login_required
def new_row(app, entity):
    """A blank row for a child table (``chain`` names the table field, ``prefix`` its input path)."""
    ent = _entity(app, entity)
    actor = current_actor()
    chain = request.args.get("chain", "")
    prefix = request.args.get("prefix", "")
    f, _holder = _chain_field(ent, chain)
    if not f.is_child_table or not sf.NAME.match(prefix.split(".")[-1]):
        abort(404)
    ctx = _form_context(ent, actor, "create")
    defaults = {c.key: c.spec["default"] for c in f.children.fields.values() if "default" in c.spec}
    row = sv.row_view(ctx, f, prefix, chain, sv.new_row_index(), defaults)
    return render_template("records/_row.html", row=row, table={"chain": chain, "path": prefix, "readonly": False})


@bp.get("/r/<app>/<entity>/_lookup/<chain>")
@login_required
def lookup(app, entity, chain):
    """Search the target of a link field (``q`` over its text fields, through ``loom.query``)."""
    ent = _entity(app, entity)
    actor = current_actor()
    f, _holder = _chain_field(ent, chain)
    if f.type != "link":
        abort(404)
    target = _loom().model.entity(f.target)
    q = request.args.get("_lookup") or request.args.get("q") or ""
    res = _loom().query.list(target, actor, ListRequest(search=q or None, page_size=10))
    tf = target.title_field
    items = [{"id": i["id"], "title": str(i.get(tf) or f"#{i['id']}") if tf else f"#{i['id']}"} for i in res["items"]]
    return render_template("records/_lookup.html", items=items, q=q)


def init_app(app) -> None:
    app.extensions.setdefault("loom_nav", [])
    app.jinja_env.globals.update(label_of=label_of)
