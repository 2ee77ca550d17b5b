"""Login hardening over HTTP: lockout, rate limit, session rotation, CSRF, tokens, headers."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from engine.audit import audit_log
from engine.security.users import token_hash, tokens, users
from tests.conftest import BUNDLES
from tests.security.world import PASSWORD, build_world, login, make_app


@pytest.fixture
def world(loom):
    return build_world(loom, BUNDLES)


@pytest.fixture
def app(world):
    return make_app(world.loom, LOOM_LOCKOUT_ATTEMPTS=3, LOOM_LOCKOUT_MINUTES=15, LOOM_LOGIN_RATE=50)


def _actions(loom, username):
    with loom.db.connect() as conn:
        return [r[0] for r in conn.execute(sa.select(audit_log.c.action).where(audit_log.c.actor == username)
                                           .order_by(audit_log.c.id))]


def test_lockout_after_failed_logins(app, world):
    c = app.test_client()
    for _ in range(3):
        assert c.post("/api/v1/auth/login", json={"username": "adv1", "password": "wrong"}).status_code == 401
    # the right password no longer helps while the account is locked
    r = c.post("/api/v1/auth/login", json={"username": "adv1", "password": PASSWORD})
    assert r.status_code == 401
    assert _actions(world.loom, "adv1")[-4:] == ["login_failed"] * 3 + ["login_locked"]
    with world.loom.db.connect() as conn:
        until = conn.execute(sa.select(users.c.locked_until).where(users.c.username == "adv1")).scalar()
    until = until if until.tzinfo else until.replace(tzinfo=timezone.utc)
    assert timedelta(minutes=14) < until - datetime.now(timezone.utc) <= timedelta(minutes=15)
    # other users are not affected; after the lock expires the right password works again
    login(c, "adv2")
    with world.loom.db.begin() as conn:
        conn.execute(users.update().where(users.c.username == "adv1")
                     .values(locked_until=datetime.now(timezone.utc) - timedelta(seconds=1)))
    login(app.test_client(), "adv1")
    assert _actions(world.loom, "adv1")[-1] == "login"


def test_login_rate_limit_per_address(world):
    app = make_app(world.loom, LOOM_LOGIN_RATE=4)
    c = app.test_client()
    codes = [c.post("/api/v1/auth/login", json={"username": f"nobody{i}", "password": "x"}).status_code
             for i in range(6)]
    assert codes[:4] == [401] * 4 and codes[4:] == [429, 429]
    r = c.post("/api/v1/auth/login", json={"username": "adv1", "password": PASSWORD})
    assert r.status_code == 429 and r.content_type == "application/problem+json"
    # another address is not limited
    r = c.post("/api/v1/auth/login", json={"username": "adv1", "password": PASSWORD},
               environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert r.status_code == 200


def _form_token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_csrf_on_forms_and_cookie_api_requests(app, world):
    c = app.test_client()
    # the login form itself needs its token
    assert c.post("/login", data={"username": "root", "password": PASSWORD}).status_code == 400
    token = _form_token(c.get("/login").get_data(as_text=True))
    r = c.post("/login", data={"username": "root", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 302
    # a cookie-authenticated unsafe API request without the header is refused
    body = {"name": "无令牌", "risk_level": "C1"}
    r = c.post("/api/v1/secure/customer", json=body)
    assert r.status_code == 400 and r.get_json()["code"] == "csrf"
    # the token after login comes from /me (rotated at login), and is accepted in the header
    csrf = c.get("/api/v1/auth/me").get_json()["csrf_token"]
    r = c.post("/api/v1/secure/customer", json=body, headers={"X-CSRFToken": csrf})
    assert r.status_code == 201, r.get_data(as_text=True)
    # the token of the anonymous login page does not work for the new session
    r = c.post("/api/v1/secure/customer", json=body, headers={"X-CSRFToken": token})
    assert r.status_code == 400


def test_bearer_requests_need_no_csrf_token(app, world):
    from engine.security import admin
    root = world.actor("root")
    with world.loom.db.begin() as conn:
        _, secret = admin.issue_token(conn, root, world.users["root"], "ci")
    r = app.test_client().post("/api/v1/secure/customer", json={"name": "令牌", "risk_level": "C1"},
                               headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 201


def test_session_is_rotated_at_login(app, world):
    c = app.test_client()
    c.get("/login")
    before = c.get_cookie("session")
    login(c, "adv1")
    after = c.get_cookie("session")
    assert after is not None and (before is None or after.value != before.value)
    assert after.http_only and after.same_site == "Lax"
    c.post("/api/v1/auth/logout", headers={"X-CSRFToken": c.get("/api/v1/auth/me").get_json()["csrf_token"]})
    assert c.get("/api/v1/auth/me").status_code == 401


def test_login_redirect_stays_on_site(app, world):
    c = app.test_client()
    token = _form_token(c.get("/login").get_data(as_text=True))
    r = c.post("/login?next=https://evil.example/x", data={"username": "adv1", "password": PASSWORD,
                                                            "csrf_token": token})
    assert r.status_code == 302 and r.headers["Location"] == "/"


def test_tokens_expire_are_revocable_role_scoped_and_track_last_use(app, world):
    from engine.security import admin
    loom = world.loom
    sysadmin = world.actor("sysadmin")
    with loom.db.begin() as conn:
        tid, secret = admin.issue_token(conn, sysadmin, world.users["root"], "scoped",
                                        roles=["secure.admin"], days=1)
        with pytest.raises(Exception):
            admin.issue_token(conn, sysadmin, world.users["adv1"], "x", roles=["secure.admin"])
    c = app.test_client()
    h = {"Authorization": f"Bearer {secret}"}
    assert c.get("/api/v1/secure/customer", headers=h).status_code == 200
    with loom.db.connect() as conn:
        assert conn.execute(sa.select(tokens.c.last_used_at).where(tokens.c.id == tid)).scalar() is not None
    # the expiry time passes while the token's row is remembered: still refused
    from freezegun import freeze_time
    with loom.db.connect() as conn:
        expires = conn.execute(sa.select(tokens.c.expires_at).where(tokens.c.id == tid)).scalar()
    with freeze_time(expires.replace(tzinfo=timezone.utc) + timedelta(seconds=1), ignore=["engine.runtime.loom"]):
        assert c.get("/api/v1/secure/customer", headers=h).status_code == 401
    # an expiry edited in the database by hand is seen once the actor cache (2 s) lets go of it
    from engine.security.identity import invalidate_actors
    with loom.db.begin() as conn:
        conn.execute(tokens.update().where(tokens.c.id == tid)
                     .values(expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)))
    invalidate_actors()
    assert c.get("/api/v1/secure/customer", headers=h).status_code == 401
    with loom.db.begin() as conn:
        conn.execute(tokens.update().where(tokens.c.id == tid).values(expires_at=datetime.now(timezone.utc) + timedelta(days=1)))
    invalidate_actors()
    assert c.get("/api/v1/secure/customer", headers=h).status_code == 200
    with loom.db.begin() as conn:                 # revoking through the engine takes effect at once
        admin.revoke_token(conn, sysadmin, tid)
    assert c.get("/api/v1/secure/customer", headers=h).status_code == 401
    assert "token_issue" in _actions(loom, "sysadmin") and "token_revoke" in _actions(loom, "sysadmin")
    # a token limited to the advisor role of a compliance+advisor user sees only the advisor's rows
    with loom.db.begin() as conn:
        admin.grant(conn, sysadmin, world.users["adv1"], "secure.compliance")
        _, narrow = admin.issue_token(conn, sysadmin, world.users["adv1"], "n", roles=["secure.advisor"])
        _, wide = admin.issue_token(conn, sysadmin, world.users["adv1"], "w")
    got = {i["id"] for i in c.get("/api/v1/secure/customer", headers={"Authorization": f"Bearer {narrow}"}).get_json()["items"]}
    assert got == {world.customers["c1"], world.customers["c2"]}
    got = {i["id"] for i in c.get("/api/v1/secure/customer", headers={"Authorization": f"Bearer {wide}"}).get_json()["items"]}
    assert got == set(world.customers.values())


def test_security_headers(app, world):
    c = app.test_client()
    for url in ("/login", "/api/v1/auth/me"):
        r = c.get(url)
        csp = r.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-eval" not in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
        assert "Strict-Transport-Security" not in r.headers
    secure = make_app(world.loom, SESSION_COOKIE_SECURE=True)
    assert "max-age" in secure.test_client().get("/login").headers["Strict-Transport-Security"]


def test_deactivated_user_loses_session_and_tokens(app, world):
    from engine.security import admin
    sysadmin = world.actor("sysadmin")
    c = app.test_client()
    login(c, "adv2")
    with world.loom.db.begin() as conn:
        _, secret = admin.issue_token(conn, sysadmin, world.users["adv2"], "x")
        admin.set_active(conn, sysadmin, world.users["adv2"], False)
    assert c.get("/api/v1/auth/me").status_code == 401
    assert app.test_client().get("/api/v1/auth/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_idle_sessions_expire(app, world):
    import time
    c = app.test_client()
    login(c, "adv1")
    assert c.get("/api/v1/auth/me").status_code == 200
    with c.session_transaction() as s:
        s["seen"] = int(time.time()) - 61 * 60
    assert c.get("/api/v1/auth/me").status_code == 401
    assert c.get("/api/v1/auth/me").status_code == 401      # the session was ended, not just refused once
