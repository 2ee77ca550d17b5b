"""Administration of users, roles and API tokens, and the audit log screen and export.

JSON API under ``/api/v1/admin/*`` (system administrators only) and ``/api/v1/audit*``; HTML
screens ``/admin/users`` and ``/admin/audit``. Every change goes through
:mod:`engine.security.admin`, which audits it in the same transaction. Reading the audit log is
allowed to administrators and to roles with ``administer`` on an entity (for that entity's
entries only, with the reader's field rules applied to before/after values); an export is
itself audited.
"""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, Response, jsonify, render_template, request, stream_with_context

from engine import audit
from engine.errors import Forbidden, InvalidInput, Problem
from engine.records.serialize import mask_value
from engine.runtime.web.auth import current_actor, login_required, require_admin
from engine.security import admin as sec

bp = Blueprint("admin_security", __name__)


def _loom():
    from engine.runtime.app import get_loom
    return get_loom()


def _require_admin():
    return require_admin("manage users, roles and tokens")


def _body() -> dict:
    data = request.get_json(silent=True)
    if data is None:
        data = request.form.to_dict()
    if not isinstance(data, dict):
        raise InvalidInput(problems=[Problem("send a JSON object", code="parameter")])
    return data


def _json_user(u: dict) -> dict:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in u.items()}


# -- users and roles -------------------------------------------------------------------------------

@bp.get("/api/v1/admin/users")
def users_list():
    _require_admin()
    with _loom().db.connect() as conn:
        return jsonify({"items": [_json_user(u) for u in sec.list_users(conn)]})


@bp.post("/api/v1/admin/users")
def users_create():
    actor = _require_admin()
    d = _body()
    roles = d.get("roles") or []
    if not isinstance(roles, list):
        raise InvalidInput(problems=[Problem("`roles` must be a list of app.role keys", field="roles", code="parameter")])
    with _loom().db.begin() as conn:
        uid = sec.add_user(conn, actor, str(d.get("username") or ""), d.get("password"), roles=roles,
                           is_admin=bool(d.get("is_admin")), org_unit=d.get("org_unit"),
                           display_name=d.get("display_name"), locale=d.get("locale") or "zh-CN")
    return jsonify({"id": uid}), 201


@bp.post("/api/v1/admin/users/<int:user_id>/roles")
def users_grant(user_id):
    actor = _require_admin()
    role = str(_body().get("role") or "")
    with _loom().db.begin() as conn:
        changed = sec.grant(conn, actor, user_id, role)
        roles = sec.roles_of(conn, user_id)
    return jsonify({"roles": roles, "changed": changed})


@bp.delete("/api/v1/admin/users/<int:user_id>/roles/<role>")
def users_revoke(user_id, role):
    actor = _require_admin()
    with _loom().db.begin() as conn:
        changed = sec.revoke(conn, actor, user_id, role)
        roles = sec.roles_of(conn, user_id)
    return jsonify({"roles": roles, "changed": changed})


@bp.post("/api/v1/admin/users/<int:user_id>/password")
def users_password(user_id):
    actor = _require_admin()
    with _loom().db.begin() as conn:
        sec.set_password(conn, actor, user_id, str(_body().get("password") or ""))
    return jsonify({"ok": True})


@bp.post("/api/v1/admin/users/<int:user_id>/unlock")
def users_unlock(user_id):
    actor = _require_admin()
    with _loom().db.begin() as conn:
        sec.unlock(conn, actor, user_id)
    return jsonify({"ok": True})


@bp.post("/api/v1/admin/users/<int:user_id>/active")
def users_active(user_id):
    actor = _require_admin()
    with _loom().db.begin() as conn:
        sec.set_active(conn, actor, user_id, bool(_body().get("active")))
    return jsonify({"ok": True})


# -- tokens ----------------------------------------------------------------------------------------

@bp.get("/api/v1/admin/tokens")
def tokens_list():
    _require_admin()
    uid = request.args.get("user_id", type=int)
    with _loom().db.connect() as conn:
        return jsonify({"items": [_json_user(t) for t in sec.list_tokens(conn, uid)]})


@bp.post("/api/v1/admin/tokens")
def tokens_issue():
    actor = _require_admin()
    d = _body()
    try:
        user_id, days = int(d.get("user_id")), int(d.get("days") or 90)
    except (TypeError, ValueError):
        raise InvalidInput(problems=[Problem("`user_id` and `days` must be whole numbers", field="user_id",
                                             code="parameter")]) from None
    with _loom().db.begin() as conn:
        tid, secret = sec.issue_token(conn, actor, user_id, str(d.get("name") or "api"),
                                      roles=d.get("roles"), days=days)
    return jsonify({"id": tid, "token": secret, "note": "shown once; store it now"}), 201


@bp.delete("/api/v1/admin/tokens/<int:token_id>")
def tokens_revoke(token_id):
    actor = _require_admin()
    with _loom().db.begin() as conn:
        sec.revoke_token(conn, actor, token_id)
    return jsonify({"ok": True})


# -- audit -----------------------------------------------------------------------------------------

def _audit_reader():
    """(actor, entities they may read the log of: None = all)."""
    actor = current_actor()
    if actor.is_admin or actor.is_system:
        return actor, None
    loom = _loom()
    allowed = {e.full_key for e in loom.model.entities.values()
               if not e.is_child and loom.policy.can(actor, e, "administer")}
    if not allowed:
        raise Forbidden(f"{actor.username} may not read the audit log",
                        problems=[Problem("reading the audit log needs the administer permission", code="forbidden")])
    return actor, allowed


def _filter_for(allowed):
    flt = audit.AuditFilter.from_params(request.args)
    if allowed is not None:
        if flt.entity and flt.entity not in allowed:
            raise Forbidden(problems=[Problem(f"you may not read the audit entries of `{flt.entity}`", field="entity",
                                              code="forbidden")])
    return flt


def _redact(actor, allowed, entries: list[dict]) -> list[dict]:
    """Apply the reader's field rules to before/after values (administrators see them as logged)."""
    if allowed is None:
        return entries
    loom = _loom()
    out = []
    for e in entries:
        if e.get("entity") not in allowed:
            continue
        ent = loom.model.entities.get(e["entity"])
        rules = loom.policy.field_rules(actor, ent) if ent is not None else {}
        for side in ("before", "after"):
            if isinstance(e.get(side), dict):
                e[side] = {k: (mask_value(v, ent.fields[k].spec.get("mask")) if rules.get(k) == "masked" else v)
                           for k, v in e[side].items() if rules.get(k) != "hidden"}
        out.append(e)
    return out


def _page_args():
    try:
        page = max(1, int(request.args.get("page", 1)))
        size = max(1, min(500, int(request.args.get("page_size", 50))))
    except ValueError:
        raise InvalidInput(problems=[Problem("`page` and `page_size` must be whole numbers", field="page",
                                             code="parameter")]) from None
    return page, size


def _search(actor, allowed):
    flt = _filter_for(allowed)
    page, size = _page_args()
    with _loom().db.connect() as conn:
        if allowed is not None and not flt.entity:
            # several allowed entities: search each is awkward; restrict with an IN list instead
            from engine.audit.log import audit_log
            import sqlalchemy as sa
            q = sa.select(audit_log).where(*flt.where(), audit_log.c.entity.in_(sorted(allowed)))
            total = conn.execute(sa.select(sa.func.count()).select_from(q.subquery())).scalar() or 0
            rows = conn.execute(q.order_by(audit_log.c.id.desc()).limit(size).offset((page - 1) * size)).mappings()
            items = [audit.export.entry_json(r) for r in rows]
        else:
            items, total = audit.search(conn, flt, limit=size, offset=(page - 1) * size)
    return _redact(actor, allowed, items), total, page, size, flt


@bp.get("/api/v1/audit")
def audit_api():
    actor, allowed = _audit_reader()
    items, total, page, size, _ = _search(actor, allowed)
    return jsonify({"items": items, "total": total, "page": page, "page_size": size})


@bp.get("/api/v1/audit/verify")
def audit_verify():
    _require_admin()
    with _loom().db.connect() as conn:
        r = audit.verify(conn)
    return jsonify({"ok": r.ok, "checked": r.checked, "first_bad_id": r.first_bad_id, "reason": r.reason,
                    "head_id": r.head_id, "head_hash": r.head_hash, "message": str(r)})


@bp.get("/api/v1/audit/export")
def audit_export_api():
    return _export()


@bp.get("/admin/audit/export")
@login_required
def audit_export_screen():
    return _export()


def _export():
    """CSV or JSONL of the filtered log with hashes (re-verifiable); the export itself is audited."""
    actor, allowed = _audit_reader()
    fmt = request.args.get("format", "csv")
    if fmt not in ("csv", "jsonl"):
        raise InvalidInput(problems=[Problem("`format` is csv or jsonl", field="format", code="parameter")])
    flt = _filter_for(allowed)
    loom = _loom()
    with loom.db.begin() as conn:
        audit.append(conn, "audit_export", actor_id=actor.user_id, actor=actor.username, address=actor.address,
                     detail={"format": fmt, "filter": {k: (v.isoformat() if isinstance(v, datetime) else v)
                                                       for k, v in vars(flt).items() if v}})

    def generate():
        with loom.db.connect() as conn:
            entries = audit.iter_entries(conn, flt)
            if allowed is not None:
                entries = (e for x in entries for e in _redact(actor, allowed, [x]))
            yield from (audit.to_csv(entries) if fmt == "csv" else audit.to_jsonl(entries))

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    mime = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson; charset=utf-8"
    return Response(stream_with_context(generate()), mimetype=mime,
                    headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.{fmt}"'})


def _nav(actor):
    try:
        from engine.runtime.web.screens import navigation
        return navigation(actor)
    except Exception:   # the screens module is optional for this page
        return None


@bp.get("/admin/audit")
@login_required
def audit_screen():
    actor, allowed = _audit_reader()
    items, total, page, size, flt = _search(actor, allowed)
    return render_template("audit/index.html", actor=actor, nav=_nav(actor), items=items, total=total, page=page,
                           page_size=size, args=request.args, pages=max(1, -(-total // size)))


@bp.get("/admin/users")
@login_required
def users_screen():
    actor = _require_admin()
    with _loom().db.connect() as conn:
        rows = sec.list_users(conn)
        tokens = sec.list_tokens(conn)
        roles = sorted(sec.known_roles(conn))
    return render_template("admin/users.html", actor=actor, nav=_nav(actor), users=rows, tokens=tokens, roles=roles)
