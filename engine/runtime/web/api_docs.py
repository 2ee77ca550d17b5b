"""The OpenAPI document (``/api/v1/openapi.json``) and a docs page (``/api/v1/docs``, Swagger UI
served from the npm package through the vendor route). The document is rebuilt only when the
model's revision changes."""
from __future__ import annotations

from flask import Blueprint, jsonify, url_for

from engine.runtime.openapi import build_openapi
from engine.runtime.web.api_common import api_actor

bp = Blueprint("api_docs", __name__, url_prefix="/api/v1")
_cache: dict = {}


def _loom():
    from engine.runtime.app import get_loom
    return get_loom()


def openapi_document(loom) -> dict:
    model = loom.model
    key = (id(loom), model.revision, id(model))
    doc = _cache.get(key)
    if doc is None:
        import engine
        _cache.clear()
        doc = _cache[key] = build_openapi(model, version=getattr(engine, "__version__", "1"))
    return doc


@bp.get("/openapi.json")
def openapi_json():
    api_actor()
    return jsonify(openapi_document(_loom()))


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Loom API</title>
<link rel="stylesheet" href="{css}"></head>
<body><div id="swagger-ui"></div>
<script src="{js}"></script>
<script src="{init}"></script>
</body></html>"""

INIT = """window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({url: %r, dom_id: '#swagger-ui', withCredentials: true,
                               deepLinking: true, persistAuthorization: true});
});"""


@bp.get("/docs")
def docs():
    return PAGE.format(css=url_for("assets.vendor", path="swagger-ui-dist/swagger-ui.css"),
                       js=url_for("assets.vendor", path="swagger-ui-dist/swagger-ui-bundle.js"),
                       init=url_for("api_docs.docs_init"))


@bp.get("/docs/init.js")
def docs_init():
    from flask import Response
    return Response(INIT % url_for("api_docs.openapi_json"), mimetype="text/javascript")
