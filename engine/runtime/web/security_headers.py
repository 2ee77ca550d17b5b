"""Security headers on every response.

The Content-Security-Policy allows scripts only from this site: no inline scripts and no eval,
which is why screens use external JS files and Alpine's CSP build, and htmx runs with
``allowEval: false``. Styles may be inline (a few ``style=""`` attributes for widths and bars)
because an injected style cannot run code. Frames are refused entirely (clickjacking), and HSTS
is sent when cookies are marked secure (the site is served over HTTPS).
"""
from __future__ import annotations

CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


def init_app(app) -> None:
    secure = bool(app.config.get("SESSION_COOKIE_SECURE"))

    @app.after_request
    def _headers(resp):
        for name, value in HEADERS.items():
            resp.headers.setdefault(name, value)
        if secure:
            resp.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if resp.mimetype in ("application/json", "application/problem+json") or resp.headers.get("Set-Cookie"):
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp
