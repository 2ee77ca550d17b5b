"""The workflow API: the task inbox (/api/v1/tasks) and processes (/api/v1/processes).

Thin HTTP over :class:`engine.workflow.WorkflowService`: every rule (who may take a task, form
validation, the one-winner completion) lives in the service; errors are LoomErrors, which the app
turns into problem+json (a lost race is a 409 naming who completed the task).
"""
from __future__ import annotations

from datetime import datetime

from flask import Blueprint, jsonify, request

from engine.errors import Forbidden, InvalidInput, Problem
from engine.runtime.web.api_common import api_actor, json_body

bp = Blueprint("api_tasks", __name__, url_prefix="/api/v1")


def _wf():
    from engine.runtime.app import get_loom
    return get_loom().workflow


def _int(value, name):
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidInput(problems=[Problem(f"`{value}` is not a whole number", field=name, code="parameter")]) from None


@bp.get("/tasks")
def list_tasks():
    actor = api_actor()
    view = request.args.get("view", "mine")
    return jsonify({"view": view, "items": _wf().inbox(actor, view, limit=_int(request.args.get("limit"), "limit") or 200)})


@bp.get("/tasks/<task_id>")
def get_task(task_id):
    actor = api_actor()
    svc = _wf()
    with svc.loom.db.connect() as conn:
        row = svc.task_row(conn, task_id)
    if not (svc.can_work(actor, row) or svc.is_manager(actor, row["app"])):
        raise Forbidden(f"{actor.username} may not see task `{row['name']}`")
    out = svc.task_json(row)
    form = svc.form_of(row)
    if form is not None:
        from engine.forms.labels import label_of
        ent = svc.loom.model.entities.get(f"{form.app}.{form.entity}")
        fields = [f for s in form.spec.get("sections") or [] for f in s.get("fields") or []]
        out["form_definition"] = {"key": form.key, "entity": f"{form.app}.{form.entity}",
                                  "label": label_of(form.label, actor.locale) if form.label else form.key,
                                  "fields": [{"key": k, "type": ent.fields[k].type if ent and k in ent.fields else None,
                                              "label": ent.fields[k].title(actor.locale) if ent and k in ent.fields else k,
                                              "required": bool(ent and k in ent.fields and ent.fields[k].required)}
                                             for k in fields]}
    inst = svc.instance(row["instance_id"])
    out["lock_version"] = inst["lock_version"]
    return jsonify(out)


@bp.post("/tasks/<task_id>/complete")
def complete_task(task_id):
    body = json_body()
    result = _wf().complete(task_id, api_actor(), body.get("data"), body.get("variables"),
                            expected_lock_version=_int(body.get("lock_version"), "lock_version"))
    return jsonify(result)


@bp.post("/tasks/<task_id>/claim")
def claim_task(task_id):
    return jsonify(_wf().task_json(_wf().claim(task_id, api_actor())))


@bp.post("/tasks/<task_id>/unclaim")
def unclaim_task(task_id):
    return jsonify(_wf().task_json(_wf().unclaim(task_id, api_actor())))


@bp.post("/tasks/<task_id>/delegate")
def delegate_task(task_id):
    body = json_body()
    return jsonify(_wf().task_json(_wf().delegate(task_id, api_actor(), body.get("to"))))


@bp.post("/tasks/<task_id>/reassign")
def reassign_task(task_id):
    body = json_body()
    return jsonify(_wf().task_json(_wf().reassign(task_id, api_actor(), body.get("to"))))


@bp.patch("/tasks/<task_id>")
def update_task(task_id):
    body = json_body()
    due = body.get("due_at")
    if due:
        try:
            due = datetime.fromisoformat(str(due))
        except ValueError:
            raise InvalidInput(problems=[Problem(f"`{due}` is not an ISO date-time", field="due_at", code="parameter")]) from None
    return jsonify(_wf().task_json(_wf().set_task(task_id, api_actor(), priority=_int(body.get("priority"), "priority"),
                                                  due_at=due)))


@bp.get("/processes")
def list_processes():
    api_actor()
    return jsonify({"items": _wf().processes()})


@bp.post("/processes/<key>/start")
def start_process(key):
    body = request.get_json(silent=True) or {}
    actor = api_actor()
    process = next((p for p in _wf().processes() if p["key"] == key), None)
    if process is not None and not _wf().may_start(actor, process):
        raise Forbidden(f"you may not start the process `{key}`: it starts in the lane of role "
                        f"`{(process.get('start') or {}).get('role')}`" if _wf().started_by_hand(process)
                        else f"the process `{key}` starts by itself (timer, record trigger or message)")
    result = _wf().start(key, actor, body.get("data") or {}, correlation_key=body.get("correlation_key"))
    return jsonify(result), 201


@bp.get("/processes/instances")
def list_instances():
    actor = api_actor()
    if not actor.is_admin:
        raise Forbidden("only administrators may list all process instances")
    return jsonify({"items": _wf().instances(status=request.args.get("status"), process=request.args.get("process"))})


@bp.get("/processes/instances/<int:instance_id>")
def get_instance(instance_id):
    return jsonify(_visible_instance(instance_id, api_actor()))


def _visible_instance(instance_id, actor) -> dict:
    detail = _wf().instance(instance_id, detail=True)
    if not _wf().may_see(actor, detail):
        raise Forbidden("you have no part in this process instance")
    return detail


@bp.get("/processes/instances/<int:instance_id>/diagram")
def instance_diagram(instance_id):
    _visible_instance(instance_id, api_actor())
    return _wf().definition_xml(instance_id), 200, {"Content-Type": "application/xml; charset=utf-8"}


@bp.post("/processes/instances/<int:instance_id>/retry")
def retry_instance(instance_id):
    return jsonify(_wf().retry(instance_id, api_actor()))


@bp.post("/processes/instances/<int:instance_id>/cancel")
def cancel_instance(instance_id):
    return jsonify(_wf().cancel(instance_id, api_actor()))


@bp.post("/processes/messages")
def send_message():
    body = json_body()
    if not body.get("name") or body.get("correlation_key") in (None, ""):
        raise InvalidInput(problems=[Problem("give the message `name` and its `correlation_key`", field="name",
                                             code="required")])
    return jsonify({"delivered": _wf().message(body["name"], str(body["correlation_key"]), body.get("payload"),
                                               api_actor())})


def init_app(app) -> None:
    """Start the embedded timer scheduler with the app (not in tests, not with LOOM_EMBEDDED_SCHEDULER=0)."""
    ext = app.extensions["loom"].extensions.get("workflow")
    if ext is not None and not app.testing and not app.config.get("LOOM_NO_SCHEDULER"):
        ext.start_scheduler()
