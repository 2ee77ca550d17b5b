"""The Flask application factory.

``runtime`` is the only package that knows HTTP. The app holds one :class:`Loom` (in
``app.extensions["loom"]``); every module of :mod:`engine.runtime.web` that defines a blueprint is
registered, so the API, the screens, the task inbox, reports and the designer grow side by side.
Errors of the engine become RFC 9457 ``application/problem+json`` on API paths and friendly pages
on screens.
"""
from __future__ import annotations

import importlib
import logging

from flask import Flask, current_app, g, jsonify, request

from engine.errors import LoomError

log = logging.getLogger(__name__)


def web_modules() -> list:
    """Every module of :mod:`engine.runtime.web`, in name order (see its docstring)."""
    import pkgutil
    from engine.runtime import web
    return [importlib.import_module(f"engine.runtime.web.{m.name}")
            for m in sorted(pkgutil.iter_modules(web.__path__), key=lambda m: m.name)]


def create_app(loom=None, config: dict | None = None) -> Flask:
    from engine.runtime.loom import Loom

    app = Flask("engine.runtime", instance_relative_config=False)
    loom = loom or Loom()
    loom.reload(force=True)
    app.extensions["loom"] = loom
    s = loom.settings
    app.config.update(
        SECRET_KEY=s.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=s.secure_cookies,
        MAX_CONTENT_LENGTH=(s.max_upload_mb + 5) * 1024 * 1024,
        JSON_AS_ASCII=False,
    )
    app.json.ensure_ascii = False
    app.config.update(config or {})
    modules = web_modules()
    for module in modules:
        if hasattr(module, "bp"):
            app.register_blueprint(module.bp)
    for module in modules:
        if hasattr(module, "init_app"):
            module.init_app(app)
    _register_errors(app)

    @app.get("/healthz")
    def healthz():
        return {"status": "ok", "revision": loom.model.revision}

    return app


def get_loom():
    return current_app.extensions["loom"]


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def problem_response(status: int, title: str, detail: str = "", problems=(), **extra):
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if problems:
        body["errors"] = [p.to_dict() for p in problems]
    body.update({k: v for k, v in extra.items() if v is not None})
    resp = jsonify(body)
    resp.status_code = status
    resp.content_type = "application/problem+json"
    return resp


def _register_errors(app: Flask) -> None:
    @app.errorhandler(LoomError)
    def loom_error(exc: LoomError):
        if wants_json() or "screens" not in app.blueprints:
            return problem_response(exc.status, exc.title, exc.message, exc.problems, **exc.extra)
        from engine.runtime.web.screens import render_error
        return render_error(exc)

    @app.errorhandler(404)
    def not_found(exc):
        if wants_json():
            return problem_response(404, "Not found", f"no resource at {request.path}")
        return exc

    @app.errorhandler(405)
    def not_allowed(exc):
        if wants_json():
            return problem_response(405, "Method not allowed", f"{request.method} is not allowed on {request.path}")
        return exc

    @app.errorhandler(413)
    def too_large(exc):
        return problem_response(413, "Payload too large", "the upload is larger than allowed")

    @app.errorhandler(500)
    def internal(exc):
        log.exception("internal error on %s %s", request.method, request.path)
        if wants_json():
            return problem_response(500, "Internal error", "the server hit an unexpected error; it was logged")
        return exc
