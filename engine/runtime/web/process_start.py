"""Starting a process from the screens: the list of processes a person may start, and the start.

Who may start what is the workflow service's rule (:meth:`WorkflowService.may_start`: the role
of the lane the start event sits in); processes that start by themselves -- timers, record
triggers, messages -- are not offered. After the start the person lands on the first task they
may work on (an onboarding's KYC form, say), else on the instance's page with its diagram.
"""
from __future__ import annotations

from flask import Blueprint, redirect, request, url_for
from flask_babel import gettext as _

from engine.errors import Forbidden, InvalidInput, NotFound
from engine.forms import label_of
from engine.runtime.web import screens_forms as sf
from engine.runtime.web import screens_views as sv
from engine.runtime.web.auth import current_actor, login_required

bp = Blueprint("process_start", __name__)


def _wf():
    from engine.runtime.app import get_loom
    return get_loom().workflow


def display_name(name, locale: str) -> str:
    """A process name in the viewer's language: a label dict, or a ``"中文 / English"`` string
    (the convention of BPMN ``name`` attributes, which hold one string) split at the slash."""
    text = label_of(name, locale) or ""
    if isinstance(name, str) and " / " in text:
        zh, en = text.split(" / ", 1)
        return en.strip() if locale.startswith("en") else zh.strip()
    return text


def _app_titles(locale: str) -> dict[str, str]:
    from engine.runtime.web.screens import _installed_apps
    return {a["key"]: label_of(a["title"] or (a["manifest"] or {}).get("title"), locale) or a["key"]
            for a in _installed_apps()}


@bp.get("/processes/start")
@login_required
def choose():
    from engine.runtime.web.inbox import _page
    actor = current_actor()
    titles = _app_titles(actor.locale)
    groups: dict[str, list] = {}
    for p in sorted(_wf().startable(actor), key=lambda p: (p["app"] or "", p["key"])):
        groups.setdefault(titles.get(p["app"], p["app"] or ""), []).append(
            {"key": p["key"], "name": display_name(p["name"], actor.locale),
             "url": url_for("process_start.start", key=p["key"]),
             "form_url": url_for("process_start.start_form", key=p["key"]) if _wf().start_form(p) else None})
    return _page("workflow/start.html", title=_("Start a process"), groups=groups)


def _startable(key: str, actor) -> dict:
    svc = _wf()
    process = next((p for p in svc.processes() if p["key"] == key), None)
    if process is None:
        raise NotFound(_("No process %(key)s is deployed", key=key))
    if not svc.started_by_hand(process) or not svc.may_start(actor, process):
        raise Forbidden(_("You may not start this process."))
    return process


@bp.post("/processes/start/<key>")
@login_required
def start(key: str):
    actor = current_actor()
    process = _startable(key, actor)
    if _wf().start_form(process) is not None:          # its data comes from the start form
        return redirect(url_for("process_start.start_form", key=key))
    return _landing(_wf().start(key, actor, {}), actor)


@bp.route("/processes/start/<key>/form", methods=["GET", "POST"])
@login_required
def start_form(key: str):
    """The start form: the fields of the start event's form, rendered and checked like a record
    form; submitting starts the process with those values as its data."""
    from engine.runtime.web.inbox import _page
    from flask import current_app
    actor = current_actor()
    svc = _wf()
    process = _startable(key, actor)
    form = svc.start_form(process)
    if form is None:
        raise NotFound(_("No process %(key)s is deployed", key=key))
    loom = svc.loom
    ent = loom.model.entities[f"{form.app}.{form.entity}"]
    tabs = sf.layout(ent, form)
    ctx = sv.FormContext(loom, actor, ent, "create", loom.records._rules(actor, ent),
                         uploads="api_files.upload" in current_app.view_functions)
    values, general, status = dict(request.args), [], 200
    if request.method == "POST":
        values = sf.parse_form(ent, request.form, sv.editable_fields(ctx, tabs))
        try:
            return _landing(svc.start_with_form(key, actor, values), actor)
        except InvalidInput as exc:
            if not exc.problems:
                raise
            ctx.errors, general = sf.errors_by_field(list(exc.problems))
            status = 422
    return _page("workflow/start_form.html", status, title=display_name(process["name"], actor.locale),
                 tabs=sv.form_view(ctx, tabs, values), general_errors=general,
                 form_label=label_of(form.label, actor.locale) if form.label else None,
                 action=url_for("process_start.start_form", key=key))


def _landing(result: dict, actor):
    """After a start: the first task the starter may work on, else the instance's page."""
    svc = _wf()
    for task in result["tasks"]:
        with svc.loom.db.connect() as conn:
            row = svc.task_row(conn, task["id"])
        if svc.can_work(actor, row):
            return redirect(url_for("inbox.task", task_id=task["id"]))
    return redirect(url_for("inbox.instance", instance_id=result["id"]))


def init_app(app) -> None:
    app.extensions.setdefault("loom_nav", []).append(
        {"endpoint": "process_start.choose", "label": {"zh-CN": "发起流程", "en": "Start a process"},
         "icon": "play", "order": 12,
         "visible": lambda actor: bool(_wf().startable(actor))})
