"""Dashboard screens: /app/<app>/dashboards[/<key>] rendered with Apache ECharts.

The page carries no inline script (a CSP without 'unsafe-inline' is enforced): it links
``static/reports/dashboard.js`` and ECharts from node_modules, and hands the dashboard's JSON URL
over in ``data-*`` attributes; the script fetches the widgets (chart options built by the
server) and draws them. Templates extend ``base.html`` when the screens package provides it, else
a minimal standalone layout.
"""
from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from jinja2 import TemplateNotFound

from engine.runtime.web.auth import current_actor, login_required

bp = Blueprint("reports_screens", __name__)



def _layout() -> str:
    try:
        current_app.jinja_env.get_template("base.html")
        return "base.html"
    except TemplateNotFound:
        return "reports/standalone.html"


def _ext():
    from engine.runtime.app import get_loom
    return get_loom().extensions["reports"]


@bp.get("/app/<app>/dashboards")
@login_required
def home(app=None):
    actor = current_actor()
    key = _ext().dashboards.default_for(app, actor)
    if key is None:
        return render_template("reports/empty.html", layout=_layout(), app=app), 404
    return redirect(url_for("reports_screens.dashboard", app=app, key=key, **request.args))


@bp.get("/app/<app>/dashboards/<key>")
@login_required
def dashboard(app, key):
    actor = current_actor()
    data = _ext().dashboards.render(app, key, actor, {k: v for k, v in request.args.items()})
    from engine.runtime.web.screens import navigation
    return render_template("reports/dashboard.html", layout=_layout(), app=app, key=key, dashboard=data,
                           locale=actor.locale, actor=actor, nav=navigation(actor),
                           api_url=url_for("api_reports.dashboard", app=app, key=key, **request.args))

