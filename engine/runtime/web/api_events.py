"""Monitoring API: event ingestion, alerts, outcomes, precision, rule versions, backtests, reports.

``POST /api/v1/events`` takes a JSON array or JSON lines (``application/x-ndjson``) of events
``{"id", "kind", "ts", ...fields}``; resending a batch is safe (duplicates are counted, not
stored twice). ``?flush=1`` evaluates everything at once, ignoring the out-of-order tolerance
(end of a bulk load). Feeding events and deciding outcomes needs the ``compliance`` or
``rules_feed`` role (or an administrator); activating a rule version needs ``compliance`` or
``rules_admin`` and another person than the version's author; reading alerts, statistics and
versions needs one of those roles.
"""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from engine.errors import Forbidden, InvalidInput, Problem
from engine.runtime.web.api_common import api_actor

bp = Blueprint("api_events", __name__, url_prefix="/api/v1")

FEED_ROLES = ("compliance", "rules_feed")
ADMIN_ROLES = ("compliance", "rules_admin")
READ_ROLES = ("compliance", "rules_feed", "rules_admin")


def _loom():
    from engine.runtime.app import get_loom
    return get_loom()


def _service():
    from engine.rules import service
    return service(_loom())


def _require(actor, roles, what):
    if not actor.has_role(*roles):
        raise Forbidden(f"{actor.username} may not {what}",
                        problems=[Problem(f"needs one of the roles {', '.join(roles)}", code="forbidden")])


def _int_param(name: str, default: int, lo: int = 0, hi: int = 10_000) -> int:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(problems=[Problem(f"`{name}`: `{raw}` is not a whole number", field=name,
                                             code="parameter")]) from None
    if not lo <= value <= hi:
        raise InvalidInput(problems=[Problem(f"`{name}`: must be between {lo} and {hi}", field=name,
                                             code="parameter")])
    return value


@bp.post("/events")
def post_events():
    from engine.rules import parse_body
    actor = api_actor()
    _require(actor, FEED_ROLES, "send monitoring events")
    raw = request.get_data()
    if not raw.strip():
        raise InvalidInput("empty body", problems=[Problem("send a JSON array or JSON lines of events",
                                                           code="invalid_body")])
    items = parse_body(raw)
    if not isinstance(items, list):
        raise InvalidInput(problems=[Problem("expected a JSON array of events", code="invalid_body")])
    flush = request.args.get("flush") in ("1", "true", "yes")
    result = _service().ingest(items, final=flush)
    return jsonify(result)


@bp.get("/alerts")
def list_alerts():
    _require(api_actor(), READ_ROLES, "read monitoring alerts and rules")
    items = _service().list_alerts(ruleset=request.args.get("ruleset"), subject=request.args.get("rule"),
                                   mode=request.args.get("mode"), limit=_int_param("limit", 100, 1, 1000),
                                   after_id=_int_param("after", 0, 0, 2**62))
    return jsonify({"items": items, "next_after": items[-1]["id"] if items else None})


@bp.get("/alerts/<int:alert_id>")
def get_alert(alert_id: int):
    from engine.errors import NotFound
    _require(api_actor(), READ_ROLES, "read monitoring alerts and rules")
    items = _service().list_alerts(after_id=alert_id - 1, limit=1)
    if not items or items[0]["id"] != alert_id:
        raise NotFound(f"no alert {alert_id}", problems=[Problem(f"no alert {alert_id}", code="not_found")])
    return jsonify(items[0])


@bp.post("/alerts/<int:alert_id>/outcome")
def alert_outcome(alert_id: int):
    actor = api_actor()
    _require(actor, FEED_ROLES, "decide alert outcomes")
    body = request.get_json(silent=True) or {}
    return jsonify(_service().set_outcome(alert_id, body.get("outcome"), actor))


@bp.get("/alerts/export")
def export_alerts():
    from engine.rules import export_report
    actor = api_actor()
    _require(actor, FEED_ROLES, "export regulatory reports")
    report = request.args.get("report", "suspicious")
    fmt = request.args.get("format", "csv")
    content, media = export_report(_loom(), report, fmt, ruleset=request.args.get("ruleset"))
    resp = Response(content, mimetype=media.split(";")[0])
    resp.headers["Content-Disposition"] = f'attachment; filename="{report}.{fmt}"'
    return resp


@bp.get("/rules/precision")
def precision():
    _require(api_actor(), READ_ROLES, "read monitoring alerts and rules")
    return jsonify({"items": _service().precision(request.args.get("ruleset"))})


@bp.get("/rules/status")
def status():
    _require(api_actor(), READ_ROLES, "read monitoring alerts and rules")
    return jsonify({"items": _service().status()})


@bp.get("/rules/<app>/versions")
def rule_versions(app: str):
    _require(api_actor(), READ_ROLES, "read monitoring alerts and rules")
    return jsonify({"items": _service().versions(app, request.args.get("key"))})


@bp.post("/rules/<app>/<key>/activate")
def activate(app: str, key: str):
    actor = api_actor()
    _require(actor, ADMIN_ROLES, "activate rule versions")
    body = request.get_json(silent=True) or {}
    version = body.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise InvalidInput(problems=[Problem("`version`: a whole number", field="version", code="parameter")])
    return jsonify(_service().activate(app, key, version, actor))


@bp.post("/rules/<app>/<ruleset>/backtest")
def run_backtest(app: str, ruleset: str):
    from engine.rules import backtest
    actor = api_actor()
    _require(actor, ADMIN_ROLES, "run backtests")
    body = request.get_json(silent=True) or {}
    selection = body.get("selection", "running")
    if selection not in ("running", "latest", "active"):
        raise InvalidInput(problems=[Problem("`selection`: running, latest or active", field="selection",
                                             code="parameter")])
    method = body.get("method", "auto")
    if method not in ("auto", "replay", "vectorised"):
        raise InvalidInput(problems=[Problem("`method`: auto, replay or vectorised", field="method",
                                             code="parameter")])
    try:
        res = backtest(_service(), f"{app}.{ruleset}", selection=selection, method=method)
    except ValueError as exc:
        raise InvalidInput(problems=[Problem(str(exc), field="method", code="parameter")]) from None
    counts = [{"subject": k[0], "mode": k[1], "alerts": v} for k, v in sorted(res.by_subject().items())]
    return jsonify({"ruleset": res.ruleset, "method": res.method, "events": res.events,
                    "seconds": round(res.seconds, 4), "suppressed": res.suppressed, "alerts": counts})
