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


_NOT_CACHED = frozenset({"application/json", "application/problem+json"})


def init_app(app) -> None:
    secure = bool(app.config.get("SESSION_COOKIE_SECURE"))
    items = [(name.lower(), name, value) for name, value in HEADERS.items()]
    if secure:
        items.append(("strict-transport-security", "Strict-Transport-Security", "max-age=31536000; includeSubDomains"))

    @app.after_request
    def _headers(resp):
        # one pass over the present names instead of a setdefault (a scan) per header: this runs
        # on every response, and it was a measurable share of a small API call
        present = {name.lower() for name in resp.headers.keys()}
        resp.headers.extend([(name, value) for low, name, value in items if low not in present])
        if "cache-control" not in present and ("set-cookie" in present or resp.mimetype in _NOT_CACHED):
            resp.headers.add("Cache-Control", "no-store")
        return resp
