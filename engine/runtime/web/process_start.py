"""Starting a process from the screens: the list of processes a person may start, and the start.

Who may start what is the workflow service's rule (:meth:`WorkflowService.may_start`: the role
of the lane the start event sits in); processes that start by themselves -- timers, record
triggers, messages -- are not offered. After the start the person lands on the first task they
may work on (an onboarding's KYC form, say), else on the instance's page with its diagram.
"""
from __future__ import annotations

from flask import Blueprint, redirect, url_for
from flask_babel import gettext as _

from engine.errors import Forbidden, NotFound
from engine.forms import label_of
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
             "url": url_for("process_start.start", key=p["key"])})
    return _page("workflow/start.html", title=_("Start a process"), groups=groups)


@bp.post("/processes/start/<key>")
@login_required
def start(key: str):
    actor = current_actor()
    svc = _wf()
    process = next((p for p in svc.processes() if p["key"] == key), None)
    if process is None:
        raise NotFound(_("No process %(key)s is deployed", key=key))
    if not svc.started_by_hand(process) or not svc.may_start(actor, process):
        raise Forbidden(_("You may not start this process."))
    result = svc.start(key, actor, {})
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
