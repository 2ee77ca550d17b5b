"""Bundles for administrators: upload a package, see the plan, apply it, see the history.

The same road as ``loom app install``: the package is verified (checksums, signature when the firm
requires one), validated, planned against the live database (definitions, migrations, fixtures,
conflicts between the firm's local changes and the partner's), and applied all or nothing. The
uploaded file is kept under the instance folder by its hash until it is applied, so the plan the
admin saw is the plan that runs.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import sqlalchemy as sa
from flask import Blueprint, jsonify, redirect, render_template, request, url_for

from engine.audit import audit_log
from engine.errors import InvalidInput, LoomError, NotFound, Problem
from engine.meta import store
from engine.runtime.web.auth import current_actor, login_required, require_admin

bp = Blueprint("admin_bundles", __name__)
MAX_PACKAGE_MB = 50


def _loom():
    from engine.runtime.app import get_loom
    return get_loom()


def _require_admin():
    return require_admin("install or upgrade bundles")


def _uploads() -> Path:
    path = _loom().settings.instance_path / "packages"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _save_upload() -> str:
    f = request.files.get("package")
    if f is None or not f.filename:
        raise InvalidInput(problems=[Problem("choose a package file (.zip) to upload", field="package",
                                             code="required")])
    data = f.read(MAX_PACKAGE_MB * 1024 * 1024 + 1)
    if len(data) > MAX_PACKAGE_MB * 1024 * 1024:
        raise InvalidInput(problems=[Problem(f"the package is larger than {MAX_PACKAGE_MB} MB", field="package")])
    digest = hashlib.sha256(data).hexdigest()
    (_uploads() / f"{digest}.zip").write_bytes(data)
    return digest


def _package(digest: str) -> Path:
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise NotFound("no such uploaded package")
    path = _uploads() / f"{digest}.zip"
    if not path.exists():
        raise NotFound("the uploaded package is gone; upload it again")
    return path


def _choices(form) -> dict:
    """Conflict choices from the form: take=ours|theirs for all, or one field per conflict."""
    choices = {}
    if form.get("take") in {"ours", "theirs"}:
        choices["*"] = form["take"]
    for name, value in form.items():
        if name.startswith("resolve:") and value in {"ours", "theirs"}:
            choices[name[len("resolve:"):]] = value
    return choices


def _history(conn) -> list[dict]:
    rows = conn.execute(sa.select(audit_log.c.at, audit_log.c.actor, audit_log.c.action, audit_log.c.app,
                                  audit_log.c.detail)
                        .where(audit_log.c.action.in_(["install", "uninstall"]))
                        .order_by(audit_log.c.id.desc()).limit(50)).mappings().all()
    return [dict(r) for r in rows]


def _apps(conn) -> list[dict]:
    return [dict(r) for r in conn.execute(sa.select(store.apps).order_by(store.apps.c.key)).mappings()]


def _render(plan=None, digest=None, problems=(), status=200, done=None):
    from engine.runtime.web.screens import navigation
    actor = current_actor()
    with _loom().db.connect() as conn:
        ctx = {"apps": _apps(conn), "history": _history(conn)}
    return render_template("admin/bundles.html", actor=actor, nav=navigation(actor), plan=plan, digest=digest,
                           problems=problems, done=done, **ctx), status


@bp.get("/admin/bundles")
@login_required
def index():
    _require_admin()
    return _render()


@bp.post("/admin/bundles/plan")
@login_required
def plan():
    _require_admin()
    try:
        digest = request.form.get("digest") or _save_upload()
        the_plan = _loom().plan_install(_package(digest), _choices(request.form))
    except LoomError as exc:
        return _render(problems=exc.problems or [Problem(exc.message)], status=exc.status)
    return _render(plan=the_plan, digest=digest)


@bp.post("/admin/bundles/apply")
@login_required
def apply():
    actor = _require_admin()
    digest = request.form.get("digest", "")
    try:
        path = _package(digest)
        the_plan = _loom().plan_install(path, _choices(request.form))
        _loom().install(path, actor, plan=the_plan, confirm_destructive=request.form.get("confirm") == "1")
    except LoomError as exc:
        return _render(problems=exc.problems or [Problem(exc.message)], status=exc.status, digest=digest)
    path.unlink(missing_ok=True)
    return redirect(url_for("admin_bundles.index", installed=f"{the_plan.app} {the_plan.version}"))


@bp.post("/api/v1/admin/bundles/plan")
def api_plan():
    """Upload (multipart `package`) and get the plan as JSON, with the `digest` to apply it."""
    _require_admin()
    digest = request.form.get("digest") or _save_upload()
    the_plan = _loom().plan_install(_package(digest), _choices(request.form))
    return jsonify({"digest": digest, "plan": the_plan.to_dict(), "text": the_plan.describe()})


@bp.post("/api/v1/admin/bundles/apply")
def api_apply():
    actor = _require_admin()
    path = _package(request.form.get("digest", ""))
    the_plan = _loom().plan_install(path, _choices(request.form))
    _loom().install(path, actor, plan=the_plan, confirm_destructive=request.form.get("confirm") == "1")
    path.unlink(missing_ok=True)
    return jsonify({"installed": the_plan.app, "version": the_plan.version, "plan": the_plan.to_dict()})


def init_app(app):
    nav = app.extensions.setdefault("loom_nav", [])
    nav.append({"endpoint": "admin_bundles.index", "label": {"zh-CN": "应用包", "en": "Bundles"}, "icon": "package",
                "order": 80, "visible": lambda actor: actor.is_admin})
