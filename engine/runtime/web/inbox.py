"""The task inbox and process screens: my tasks, my groups' tasks, overdue; a task's form; an
instance's diagram and trail; the admin list of failed instances.

Every rule (who may take or finish a task, form validation, the one-winner completion) lives in
:class:`engine.workflow.WorkflowService`; this module only turns its answers into pages. A task's
form is the form definition named by the user task's ``formKey``, laid out and rendered with the
record screens' own builders (``screens_forms.layout``, ``screens_views.form_view``) and widget
macros (``records/_fields.html``), so a field looks and validates the same in a task as on a record
screen, and a completion error from the record service lands at the field it names.
"""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _

from engine.errors import Conflict, Forbidden, InvalidInput, LoomError, NotFound
from engine.forms import label_of
from engine.runtime.web.auth import current_actor, login_required
from engine.runtime.web.screens_format import to_local
from engine.runtime.web import screens_forms as sf
from engine.runtime.web import screens_views as sv

bp = Blueprint("inbox", __name__)
VIEWS = ("mine", "group", "overdue")


def _loom():
    from engine.runtime.app import get_loom
    return get_loom()


def _wf():
    return _loom().workflow


def _page(template: str, status: int = 200, **ctx):
    from engine.runtime.web.screens import navigation
    actor = current_actor(optional=True)
    return render_template(template, actor=actor, nav=navigation(actor), **ctx), status


def _aware(value):
    if not value:
        return None
    dt = datetime.fromisoformat(value) if isinstance(value, str) else value
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _when(value) -> str:
    local = to_local(_aware(value)) if value else None
    return local.strftime("%Y-%m-%d %H:%M") if local else ""


def _process_names(locale: str) -> dict[str, str]:
    return {p["key"]: label_of(p["name"], locale) or p["key"] for p in _wf().processes()}


def _is_manager_anywhere(actor) -> bool:
    return actor.is_admin or "workflow.manager" in actor.roles or any(r.endswith(".manager") or r == "manager"
                                                                      for r in actor.roles)


# -- the inbox -----------------------------------------------------------------------------------------

@bp.get("/inbox")
@login_required
def index():
    actor = current_actor()
    view = request.args.get("view", "mine")
    if view not in VIEWS:
        view = "mine"
    svc = _wf()
    counts = {v: len(svc.inbox(actor, v)) for v in VIEWS}
    names = _process_names(actor.locale)
    rows = []
    for t in svc.inbox(actor, view):
        rows.append({**t, "url": url_for("inbox.task", task_id=t["id"]),
                     "process_name": names.get(t["process"], t["process"]),
                     "due": _when(t["due_at"]), "created": _when(t["created_at"]),
                     "instance_url": url_for("inbox.instance", instance_id=t["instance_id"])})
    tabs = [{"key": v, "label": {"mine": _("My tasks"), "group": _("My groups' tasks"), "overdue": _("Overdue")}[v],
             "count": counts[v], "url": url_for("inbox.index", view=v), "active": v == view} for v in VIEWS]
    return _page("workflow/inbox.html", title=_("Inbox"), tabs=tabs, rows=rows, view=view,
                 done=request.args.get("done"))


# -- one task ------------------------------------------------------------------------------------------

def _task_row(task_id: str):
    svc = _wf()
    with svc.loom.db.connect() as conn:
        return dict(svc.task_row(conn, task_id))


def _form_parts(trow, actor):
    """(entity, form, tabs, form context, record variable) of a task, or Nones without a form."""
    svc = _wf()
    form = svc.form_of(trow)
    if form is None:
        return None, None, None, None, None
    loom = _loom()
    ent = loom.model.entities.get(f"{form.app}.{form.entity}")
    if ent is None:
        raise NotFound(_("The form %(form)s of this task is not installed", form=trow["form_key"]))
    from flask import current_app
    tabs = sf.layout(ent, form)
    ctx = sv.FormContext(loom, actor, ent, "edit", loom.records._rules(actor, ent),
                         uploads="api_files.upload" in current_app.view_functions)
    with loom.db.connect() as conn:
        d = svc.definitions.latest(conn, trow["process_key"])
    meta = (d.meta.get("tasks", {}) if d else {}).get(trow["bpmn_id"], {})
    return ent, form, tabs, ctx, meta.get("record") or f"{form.entity}_id"


def _render_task(trow, actor, *, values=None, problems=(), status=200, conflict=None):
    svc = _wf()
    ent, form, tabs, ctx, var = _form_parts(trow, actor)
    record = None
    sections, general = [], []
    if ent is not None:
        if values is None:
            values = {}
            data = svc.task_data(trow["id"]) if trow["status"] == "ready" else {}
            rec_id = data.get(var)
            if rec_id:
                try:
                    record = _loom().records.get(ent, int(rec_id), actor)
                    values = dict(record)
                except LoomError:
                    record = None
            if trow["status"] == "ready":
                # fields the record leaves empty show what the process already knows (customer_id -> customer)
                for key, value in svc.prefill(trow["id"], data).items():
                    if values.get(key) in (None, "", []):
                        values[key] = value
        errors, general = sf.errors_by_field(list(problems))
        ctx.errors = errors
        shown = {it.field.key for it in sf.form_fields(tabs)}
        general += [m for p, msgs in errors.items() if p.split("[")[0].split(".")[0] not in shown for m in msgs]
        sections = sv.form_view(ctx, tabs, values)
    elif problems:
        general = [p.message for p in problems]
    inst = svc.instance(trow["instance_id"])
    names = _process_names(actor.locale)
    mine = trow["assignee"] == actor.username
    open_ = trow["status"] == "ready" and conflict is None
    can = svc.can_work(actor, trow)
    return _page("workflow/task.html", status, title=trow["name"], task=trow, tabs=sections, general_errors=general,
                 conflict=conflict, lock_version=inst["lock_version"], record=record,
                 form_label=label_of(form.label, actor.locale) if form is not None and form.label else None,
                 process_name=names.get(trow["process_key"], trow["process_key"]),
                 due=_when(trow["due_at"]), created=_when(trow["created_at"]),
                 overdue=trow["status"] == "ready" and bool(trow["due_at"]) and _aware(trow["due_at"]) < svc.clock(),
                 can_claim=open_ and not trow["assignee"] and svc.eligible(actor, trow),
                 can_unclaim=open_ and bool(trow["assignee"]) and (mine or svc.is_manager(actor, trow["app"])),
                 can_delegate=open_ and (mine or svc.is_manager(actor, trow["app"])),
                 can_complete=open_ and can,
                 instance_url=url_for("inbox.instance", instance_id=trow["instance_id"]))


def _visible(trow, actor) -> None:
    svc = _wf()
    if not (svc.eligible(actor, trow) or trow["assignee"] == actor.username or trow["completed_by"] == actor.username
            or svc.is_manager(actor, trow["app"])):
        raise Forbidden(_("You may not see this task"))


@bp.get("/inbox/tasks/<task_id>")
@login_required
def task(task_id):
    actor = current_actor()
    trow = _task_row(task_id)
    _visible(trow, actor)
    return _render_task(trow, actor)


@bp.post("/inbox/tasks/<task_id>/complete")
@login_required
def complete(task_id):
    actor = current_actor()
    svc = _wf()
    trow = _task_row(task_id)
    _visible(trow, actor)
    ent, form, tabs, ctx, var = _form_parts(trow, actor)
    data = None
    if ent is not None:
        data = sf.parse_form(ent, request.form, sv.editable_fields(ctx, tabs))
    version = request.form.get("_lock_version")
    try:
        svc.complete(task_id, actor, data, None, expected_lock_version=int(version) if version else None)
    except Conflict as exc:
        fresh = _task_row(task_id)
        return _render_task(fresh, actor, values=data, status=409, conflict={
            "message": exc.message, "closed": fresh["status"] != "ready",
            "by": fresh["completed_by"], "status": fresh["status"]})
    except (InvalidInput, Forbidden) as exc:
        if not exc.problems or not any(p.field for p in exc.problems):
            raise
        return _render_task(trow, actor, values=data, problems=exc.problems, status=422)
    return redirect(url_for("inbox.index", view=request.args.get("view", "mine"), done=trow["name"]))


def _assign(task_id, fn):
    actor = current_actor()
    trow = _task_row(task_id)
    _visible(trow, actor)
    try:
        fn(actor)
    except Conflict as exc:
        return _render_task(_task_row(task_id), actor, status=409, conflict={
            "message": exc.message, "closed": False, "by": None, "status": trow["status"]})
    return redirect(url_for("inbox.task", task_id=task_id))


@bp.post("/inbox/tasks/<task_id>/claim")
@login_required
def claim(task_id):
    return _assign(task_id, lambda actor: _wf().claim(task_id, actor))


@bp.post("/inbox/tasks/<task_id>/unclaim")
@login_required
def unclaim(task_id):
    return _assign(task_id, lambda actor: _wf().unclaim(task_id, actor))


@bp.post("/inbox/tasks/<task_id>/delegate")
@login_required
def delegate(task_id):
    to = (request.form.get("to") or "").strip()
    return _assign(task_id, lambda actor: _wf().delegate(task_id, actor, to))


# -- one instance -------------------------------------------------------------------------------------

def _action_label(action: str) -> str:
    labels = {"started": _("started the process"), "task_completed": _("completed"), "claimed": _("claimed"),
              "unclaimed": _("released"), "delegated": _("delegated"), "reassigned": _("reassigned"),
              "updated": _("changed"), "service": _("ran the service action"), "timer": _("timer fired"),
              "message": _("received the message"), "error": _("failed"), "retried": _("retried"),
              "cancelled": _("cancelled the process"), "completed": _("the process completed")}
    return labels.get(action, action)


def _visible_detail(instance_id: int, actor) -> dict:
    """The instance's detail, if the actor has a part in it (the same rule as the API)."""
    detail = _wf().instance(instance_id, detail=True)
    if not _wf().may_see(actor, detail):
        raise Forbidden(_("You may not see this process instance"))
    return detail


def _data_rows(detail, actor) -> list[dict]:
    """The instance's variables; record ids are shown as links to the record (its title if readable)."""
    loom = _loom()
    entities = _wf().record_variables(detail["definition_id"])
    if detail.get("subject_entity") and detail.get("subject_id"):
        entities.setdefault(f"{detail['subject_entity'].split('.', 1)[1]}_id", detail["subject_entity"])
    out = []
    for key, value in sorted((detail.get("data") or {}).items()):
        row = {"key": key, "value": value, "url": None, "title": None}
        ent_key = entities.get(key)
        if ent_key and isinstance(value, int):
            ent = loom.model.entities.get(ent_key)
            if ent is not None and (actor.is_system or loom.policy.can(actor, ent, "read")):
                row["url"] = url_for("screens.detail", app=ent.app, entity=ent.key, record_id=value)
                try:
                    row["title"] = loom.query.titles(ent, actor, {value}).get(value)
                except LoomError:
                    row["title"] = None
                row["entity"] = ent.title(actor.locale)
        elif isinstance(value, dict) and isinstance(value.get("id"), int) and set(value) <= {"id", "version"}:
            row["value"] = f"#{value['id']}"
        out.append(row)
    return out


@bp.get("/processes/<int:instance_id>")
@login_required
def instance(instance_id):
    actor = current_actor()
    svc = _wf()
    detail = _visible_detail(instance_id, actor)
    names = _process_names(actor.locale)
    trail = [{"at": _when(e["at"]), "actor": e["actor"] or "", "action": _action_label(e["action"]),
              "code": e["action"], "step": e["bpmn_id"] or "", "detail": e["detail"]} for e in detail["events"]]
    statuses = {"waiting": _("running"), "error": _("failed"), "completed": _("completed"),
                "cancelled": _("cancelled")}
    return _page("workflow/instance.html", title=f"{names.get(detail['process'], detail['process'])} #{instance_id}",
                 inst=detail, trail=list(reversed(trail)), data=_data_rows(detail, actor),
                 status_label=statuses.get(detail["status"], detail["status"]),
                 history=[{**h, "created": _when(h["created_at"]), "done": _when(h["completed_at"]),
                           "status_label": {"ready": _("open"), "completed": _("completed"),
                                            "cancelled": _("cancelled")}.get(h["status"], h["status"]),
                           "url": url_for("inbox.task", task_id=h["id"])} for h in detail["history"]],
                 diagram_url=url_for("inbox.diagram", instance_id=instance_id),
                 can_retry=detail["status"] == "error" and svc.is_manager(actor, detail["process"].split(".", 1)[0]))


@bp.get("/processes/<int:instance_id>/diagram.bpmn")
@login_required
def diagram(instance_id):
    _visible_detail(instance_id, current_actor())
    return _wf().definition_xml(instance_id), 200, {"Content-Type": "application/xml; charset=utf-8"}


# -- admin: failed instances ---------------------------------------------------------------------------

@bp.get("/processes/failed")
@login_required
def errors():
    actor = current_actor()
    if not _is_manager_anywhere(actor):
        raise Forbidden(_("Only administrators and managers see failed processes"))
    svc = _wf()
    names = _process_names(actor.locale)
    rows = []
    for i in svc.instances(status="error", limit=200):
        if not svc.is_manager(actor, i["process"].split(".", 1)[0]):
            continue
        err = i.get("error") or {}
        rows.append({**i, "process_name": names.get(i["process"], i["process"]), "step": err.get("bpmn_id") or "",
                     "message": err.get("message") or "", "at": _when(err.get("at")),
                     "url": url_for("inbox.instance", instance_id=i["id"]),
                     "retry_url": url_for("inbox.retry", instance_id=i["id"])})
    return _page("workflow/errors.html", title=_("Failed processes"), rows=rows, retried=request.args.get("retried"),
                 still=request.args.get("still"))


@bp.post("/processes/<int:instance_id>/retry")
@login_required
def retry(instance_id):
    actor = current_actor()
    result = _wf().retry(instance_id, actor)
    back = request.form.get("next") or ""
    if back == "instance":
        return redirect(url_for("inbox.instance", instance_id=instance_id))
    key = "retried" if result["status"] != "error" else "still"
    return redirect(url_for("inbox.errors", **{key: instance_id}))


def init_app(app) -> None:
    nav = app.extensions.setdefault("loom_nav", [])
    nav.append({"endpoint": "inbox.index", "label": {"zh-CN": "待办", "en": "Inbox"}, "icon": "inbox", "order": 10})
    nav.append({"endpoint": "inbox.errors", "label": {"zh-CN": "失败的流程", "en": "Failed processes"},
                "icon": "alert", "order": 60, "visible": _is_manager_anywhere})
