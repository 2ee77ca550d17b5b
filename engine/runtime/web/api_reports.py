"""REST API of reports and dashboards (JSON; errors are RFC 9457 problem+json).

GET  /api/v1/reports/<app>                         reports the caller may run
GET  /api/v1/reports/<app>/<key>?params            rows, columns, totals, pivot (level=, drill=, rows=, columns=)
GET  /api/v1/reports/<app>/<key>/export?format=csv|xlsx
GET  /api/v1/reports/<app>/<key>/records?drill=&<dim>=   the records behind a figure + list-screen URL
POST /api/v1/reports/<app>/<key>/schedules         e-mail the report regularly (run as the caller)
GET  /api/v1/dashboards/<app>                      dashboards + the caller's default
GET  /api/v1/dashboards/<app>/<key>?filters        widgets with chart options
GET  /api/v1/dashboards/<app>/<key>/widgets/<w>?level=&drill=   one widget (drill-down)
GET|PUT /api/v1/me/dashboards/<app>                the caller's personal dashboard
"""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from engine.errors import InvalidInput, Problem
from engine.runtime.web.api_common import api_actor, json_body

bp = Blueprint("api_reports", __name__)


def _ext():
    from engine.runtime.app import get_loom
    return get_loom().extensions["reports"]


def _args(exclude=()) -> dict:
    return {k: v for k, v in request.args.items() if k not in exclude}


def _list(name):
    v = request.args.get(name)
    return None if v is None else [x for x in v.split(",") if x]


def _run_kwargs(args: dict) -> dict:
    from engine.reports import parse_drill
    kw = {"rows": _list("rows"), "columns": _list("columns"), "level": args.pop("level", None),
          "drill": parse_drill(args.pop("drill", None))}
    for k in ("rows", "columns", "format", "lang"):
        args.pop(k, None)
    return kw


@bp.get("/api/v1/reports/<app>")
def list_reports(app):
    return jsonify({"items": _ext().reports.list(app, api_actor())})


@bp.get("/api/v1/reports/<app>/<key>")
def run_report(app, key):
    args = _args()
    kw = _run_kwargs(args)
    return jsonify(_ext().reports.run(key, api_actor(), args, app=app, **kw))


@bp.get("/api/v1/reports/<app>/<key>/export")
def export_report(app, key):
    from engine.reports import export_csv, export_xlsx
    fmt = request.args.get("format", "xlsx")
    if fmt not in {"csv", "xlsx"}:
        raise InvalidInput(problems=[Problem("`format` must be csv or xlsx", field="format", code="parameter")])
    actor = api_actor()
    args = _args()
    kw = _run_kwargs(args)
    result = _ext().reports.run(key, actor, args, app=app, action="export", **kw)
    if fmt == "csv":
        data, mime = export_csv(result, actor.locale), "text/csv; charset=utf-8"
    else:
        data, mime = export_xlsx(result, actor.locale), \
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    resp = Response(data, mimetype=mime)
    resp.headers["Content-Disposition"] = f'attachment; filename="{app}-{key}.{fmt}"'
    return resp


@bp.get("/api/v1/reports/<app>/<key>/records")
def report_records(app, key):
    from engine.reports import parse_drill
    reports = _ext().reports
    rep = reports.definition(app, key)
    args = _args(exclude={"lang", "page", "page_size"})
    drill = parse_drill(args.pop("drill", None))
    args.pop("level", None)
    dims = {k: args.pop(k) for k in list(args) if k in rep.dimensions}
    return jsonify(reports.records(rep, api_actor(), args, drill=drill, dim_filters=dims))


@bp.post("/api/v1/reports/<app>/<key>/schedules")
def create_schedule(app, key):
    from engine.reports.schedule import create_schedule as create
    body = json_body()
    sid = create(_ext().loom, _ext().reports, app, key, api_actor(), body)
    return jsonify({"id": sid}), 201


@bp.get("/api/v1/dashboards/<app>")
def list_dashboards(app):
    actor = api_actor()
    d = _ext().dashboards
    return jsonify({"items": d.list(app, actor), "default": d.default_for(app, actor)})


@bp.get("/api/v1/dashboards/<app>/<key>")
def dashboard(app, key):
    return jsonify(_ext().dashboards.render(app, key, api_actor(), _args(exclude={"lang"})))


@bp.get("/api/v1/dashboards/<app>/<key>/widgets/<wkey>")
def dashboard_widget(app, key, wkey):
    return jsonify(_ext().dashboards.widget(app, key, wkey, api_actor(), _args(exclude={"lang"})))


@bp.route("/api/v1/me/dashboards/<app>", methods=["GET", "PUT"])
def personal_dashboard(app):
    d = _ext().dashboards
    actor = api_actor()
    if request.method == "PUT":
        return jsonify(d.save_personal(app, actor, json_body()))
    return jsonify({"body": d.personal(app, actor)})
