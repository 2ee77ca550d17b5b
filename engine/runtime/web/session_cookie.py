"""The signed session cookie, without per-request setup cost.

Flask's :class:`~flask.sessions.SecureCookieSessionInterface` builds its signing serializer
(deriving the key) on every request, before it even looks for a cookie. API clients that
authenticate with a bearer token never send one, and the key does not change while the app
runs, so this interface looks for the cookie first and builds the serializer once per key.
Cookie format and signing are Flask's own, unchanged.
"""
from __future__ import annotations

from flask.sessions import SecureCookieSessionInterface


class CookieSessionInterface(SecureCookieSessionInterface):
    def __init__(self) -> None:
        self._serializer = None
        self._keys = None

    def get_signing_serializer(self, app):
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        if self._keys != keys:
            self._serializer = super().get_signing_serializer(app)
            self._keys = keys
        return self._serializer

    def open_session(self, app, request):
        if not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class() if app.secret_key else None
        return super().open_session(app, request)


def init_app(app) -> None:
    app.session_interface = CookieSessionInterface()
