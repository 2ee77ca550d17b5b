"""HTTP side of plugins: custom endpoints and report data sources, plus plugin administration.

GET|POST /api/v1/x/<plugin>/<name>                  a plugin endpoint (its script gets method, args, json,
                                                    user; returns JSON) -- runs with the caller's rights
GET      /api/v1/plugins                            installed plugins (script administrators)
POST     /api/v1/plugins/<plugin>/enable|disable    switch a plugin (script administrators; audited)
GET      /api/v1/plugins/<plugin>/sources/<name>    rows of a plugin report data source (query = params)

A script that runs away is stopped by its budget (422 problem+json); the thread serving it is
free again right after, and other requests are served meanwhile.
"""
from __future__ import annotations

from flask import Blueprint, Response, request

from engine.runtime.web.api_common import api_actor

bp = Blueprint("api_plugins", __name__)


def _ext():
    from engine.runtime.app import get_loom
    return get_loom().extensions["plugins"]


def _json(value, status: int = 200) -> Response:
    from engine.db import dumps
    return Response(dumps(value), status=status, mimetype="application/json")


@bp.route("/api/v1/x/<plugin>/<name>", methods=["GET", "POST"])
def plugin_endpoint(plugin, name):
    actor = api_actor()
    body = request.get_json(silent=True) if request.method == "POST" else None
    req = {"method": request.method, "args": {k: v for k, v in request.args.items()}, "json": body,
           "path": request.path}
    return _json(_ext().endpoint(plugin, name, req, actor))


@bp.get("/api/v1/plugins")
def list_plugins():
    from plugins import require_administer, store
    actor = api_actor()
    require_administer(actor, "list plugins")
    from engine.runtime.app import get_loom
    with get_loom().db.connect() as conn:
        return _json({"items": store.list_plugins(conn)})


@bp.post("/api/v1/plugins/<plugin>/<action>")
def switch_plugin(plugin, action):
    from engine.errors import NotFound
    from plugins import store
    if action not in {"enable", "disable"}:
        raise NotFound(f"no plugin action `{action}`")
    actor = api_actor()
    ext = _ext()
    with ext.loom.db.begin() as conn:
        changed = store.set_enabled(conn, plugin, action == "enable", actor)
    ext.refresh(force=True)
    return _json({"name": plugin, "enabled": action == "enable", "changed": changed})


@bp.get("/api/v1/plugins/<plugin>/sources/<name>")
def report_source(plugin, name):
    actor = api_actor()
    return _json(_ext().report_rows(plugin, name, {k: v for k, v in request.args.items() if k != "lang"}, actor))
