"""Who is calling: a logged-in session, or an API token; turned into an :class:`Actor`.

This module resolves identity for every request (``current_actor``) and serves login/logout,
with the hardening around them: account lockout (``engine.security.identity``), a per-address
rate limit on login attempts, session rotation on login, CSRF protection for every form and
every cookie-authenticated unsafe request (bearer-token requests are exempt: a browser never
sends that header on its own), and ``last_used_at`` on API tokens.

Templates get ``csrf_token()``; htmx/fetch send it in the ``X-CSRFToken`` header, read from
``<meta name="csrf-token" content="{{ csrf_token() }}">``.
"""
from __future__ import annotations

import os
import secrets
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from functools import wraps
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Blueprint, current_app, g, has_request_context, jsonify, redirect, request, session, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf

from engine.errors import LoomError, Unauthorized
from engine.security import Actor
from engine.security.identity import ACTORS, LockoutRule, check_login, load_actor
from engine.security.ratelimit import TokenBucket
from engine.security.users import token_hash, tokens

bp = Blueprint("auth", __name__)
csrf = CSRFProtect()

#: endpoints that take credentials: rate-limited per client address
LOGIN_ENDPOINTS = {"auth.login", "auth.api_login"}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}



class TooManyRequests(LoomError):
    status = 429
    title = "Too many requests"


def _loom():
    from engine.runtime.app import get_loom
    return get_loom()


def actor_for_user(conn, user_id: int, limit_roles: list[str] | None = None, address: str | None = None,
                   loom=None) -> Actor | None:
    """The :class:`Actor` of a user; works inside a request (session locale) and outside (tests,
    CLI: pass ``loom`` for role inheritance, or call it inside an app context)."""
    if loom is None:
        try:
            loom = _loom()
        except RuntimeError:
            loom = None
    expander = getattr(loom, "expand_roles", None) if loom is not None else None
    locale = session.get("locale") if has_request_context() else None
    return load_actor(conn, user_id, limit_roles=limit_roles, address=address, locale=locale, expand=expander)


def _client_address() -> str | None:
    return request.remote_addr


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def current_actor(optional: bool = False) -> Actor | None:
    """The actor of this request (cached on ``g``); raises 401 unless ``optional``."""
    if "actor" in g:
        return g.actor
    loom = _loom()
    actor = None
    secret = _bearer()
    if secret is not None:
        digest = token_hash(secret)
        now = datetime.now(timezone.utc)
        cached = ACTORS.get((loom.instance_id, "token", digest))
        if cached is not None:
            row, actor = cached
        else:
            with loom.db.connect() as conn:
                row = conn.execute(sa.select(tokens).where(tokens.c.token_hash == digest)).mappings().first()
                actor = None if row is None else actor_for_user(conn, row["user_id"], row["roles"], None, loom)
            ACTORS.put((loom.instance_id, "token", digest), (row, actor))
        if row is None or row["revoked_at"] is not None or (
                row["expires_at"] is not None and _aware(row["expires_at"]) < now):
            raise Unauthorized("the API token is unknown, expired or revoked")
        if actor is not None:
            actor = replace(actor, address=_client_address())
        last = _aware(row["last_used_at"])
        if actor is not None and (last is None or now - last > timedelta(minutes=1)):
            # at most one write a minute per token: reads must not queue behind SQLite's writer lock
            with loom.db.begin() as conn:
                conn.execute(tokens.update().where(tokens.c.id == row["id"]).values(last_used_at=now))
            ACTORS.put((loom.instance_id, "token", digest), ({**row, "last_used_at": now}, actor))
    elif session.get("user_id") and _session_idle():
        session.clear()           # idle too long: log in again
    elif session.get("user_id"):
        key = (loom.instance_id, "session", session["user_id"], session.get("locale"))
        actor = ACTORS.get(key)
        if actor is None:
            with loom.db.connect() as conn:
                actor = actor_for_user(conn, session["user_id"], None, None, loom)
            if actor is not None:
                ACTORS.put(key, actor)
        if actor is not None:
            actor = replace(actor, address=_client_address())
        if actor is None:
            session.clear()       # the user was deactivated: end the session
    if actor is None and not optional:
        raise Unauthorized("log in or send an API token")
    g.actor = actor
    return actor


def _session_idle() -> bool:
    """True when the session was not used for ``LOOM_SESSION_IDLE_MINUTES`` (default 60); else
    note the use (at most once a minute, so not every response sets a cookie)."""
    idle = int(current_app.config.get("LOOM_SESSION_IDLE_MINUTES", os.environ.get("LOOM_SESSION_IDLE_MINUTES", 60)))
    now = int(time.time())
    seen = session.get("seen") or now
    if idle and now - seen > idle * 60:
        return True
    if now - seen >= 60 or "seen" not in session:
        session["seen"] = now
    return False


def _aware(dt: datetime | None) -> datetime | None:
    return dt if dt is None or dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def require_admin(purpose: str = "do this") -> Actor:
    """The current actor, if an administrator (or the engine itself); else 403 saying why."""
    from engine.errors import Forbidden, Problem
    actor = current_actor()
    if not (actor.is_admin or actor.is_system):
        raise Forbidden(f"{actor.username} is not an administrator",
                        problems=[Problem(f"only administrators {purpose}", code="forbidden")])
    return actor


def login_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        try:
            current_actor()
        except Unauthorized:
            if request.path.startswith("/api/"):
                raise
            return redirect(url_for("auth.login", next=request.full_path))
        return view(*args, **kwargs)
    return wrapper


def lockout_rule() -> LockoutRule:
    cfg = current_app.config
    env = LockoutRule.from_env()
    return LockoutRule(int(cfg.get("LOOM_LOCKOUT_ATTEMPTS", env.attempts)), int(cfg.get("LOOM_LOCKOUT_MINUTES", env.minutes)))


def authenticate(username: str, password: str) -> int | None:
    """Check a username and password with lockout; returns the user id. Audited either way."""
    loom = _loom()
    with loom.db.begin() as conn:
        result = check_login(conn, username, password, address=_client_address(), rule=lockout_rule())
    g.login_result = result
    return result.user_id


def start_session(user_id: int) -> None:
    """A fresh session for a fresh login: nothing from before survives (no session fixation), and
    a new CSRF token is issued."""
    session.clear()
    session["user_id"] = user_id
    session["sid"] = secrets.token_urlsafe(16)
    session["seen"] = int(time.time())
    session.permanent = False
    g.pop("actor", None)
    g.pop("csrf_token", None)


def safe_next(target: str | None) -> str:
    """Only a path on this site: ``next=https://evil.example`` must not turn login into a redirector."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@bp.post("/api/v1/auth/login")
def api_login():
    data = request.get_json(silent=True) or request.form
    user_id = authenticate(str(data.get("username", "")), str(data.get("password", "")))
    if user_id is None:
        raise Unauthorized("wrong username or password, or the account is locked")
    start_session(user_id)
    actor = current_actor()
    return jsonify({"user": actor.username, "roles": sorted(actor.roles), "csrf_token": generate_csrf()})


@bp.post("/api/v1/auth/logout")
def api_logout():
    session.clear()
    return jsonify({"ok": True})


@bp.get("/api/v1/auth/me")
def me():
    actor = current_actor()
    return jsonify({"id": actor.user_id, "username": actor.username, "roles": sorted(actor.roles),
                    "locale": actor.locale, "is_admin": actor.is_admin, "csrf_token": generate_csrf()})


def init_app(app) -> None:
    """CSRF for forms and cookie-authenticated requests; a rate limit on login attempts."""
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)      # checked below, bearer requests exempt
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)          # valid for the session's lifetime
    app.config.setdefault("LOOM_LOGIN_RATE", int(os.environ.get("LOOM_LOGIN_RATE", "20")))   # attempts per minute
    csrf.init_app(app)
    app.extensions["login_bucket"] = TokenBucket(int(app.config["LOOM_LOGIN_RATE"]), 60.0)

    @app.before_request
    def _protect():
        if request.endpoint in LOGIN_ENDPOINTS and request.method == "POST":
            bucket = app.extensions["login_bucket"]
            if not bucket.allow(_client_address() or "?"):
                raise TooManyRequests("too many login attempts from your address; wait a minute",
                                      retry_after=bucket.retry_after(_client_address() or "?"))
        if request.method not in UNSAFE or _bearer() is not None:
            return None
        if request.endpoint == "auth.api_login" and request.is_json:
            return None        # JSON login cannot be sent cross-site without a CORS preflight
        csrf.protect()
        return None

    @app.errorhandler(CSRFError)
    def _csrf_failed(exc):
        from engine.runtime.app import problem_response
        resp = problem_response(400, "CSRF token missing or invalid",
                                "reload the page and try again (the form's security token is missing or expired)",
                                code="csrf")
        return resp


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Placeholder login page; the screens module replaces it with the real template."""
    if request.method == "POST":
        user_id = authenticate(request.form.get("username", ""), request.form.get("password", ""))
        if user_id is not None:
            start_session(user_id)
            return redirect(safe_next(request.args.get("next")))
        from flask import render_template
        from flask_babel import gettext
        return render_template("login.html", error=gettext("Wrong username or password."),
                               username=request.form.get("username", ""), next=request.args.get("next")), 401
    from flask import render_template
    return render_template("login.html", next=request.args.get("next"))
