"""Who may call the API: nobody without a session or token; tokens work until expired or revoked."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone


from engine.security.users import create_user, issue_token, token_hash, tokens


def test_no_credentials_is_401_problem(app):
    client = app.test_client()
    for url in ("/api/v1/mini/customer", "/api/v1/meta/apps", "/api/v1/openapi.json", "/api/v1/mini/customer/1"):
        r = client.get(url)
        assert r.status_code == 401, url
        assert r.content_type == "application/problem+json"
    # a write without credentials is refused (CSRF check or 401) and writes nothing
    assert client.post("/api/v1/mini/customer", json={"name": "匿名", "risk_level": "C1"}).status_code in {400, 401}
    r = client.post("/api/v1/mini/customer", json={"name": "匿名", "risk_level": "C1"},
                    headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401


def test_token_and_session_both_work(app, mini, token):
    client = app.test_client()
    assert client.get("/api/v1/mini/customer", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    login = client.post("/api/v1/auth/login", json={"username": "alice", "password": "secret-pass-1"})
    assert login.status_code == 200
    csrf = {"X-CSRFToken": login.get_json()["csrf_token"]}
    r = client.post("/api/v1/mini/customer", json={"name": "会话", "risk_level": "C1"}, headers=csrf)
    assert r.status_code == 201 and r.get_json()["created_by"] is not None


def test_expired_and_revoked_tokens_are_refused(app, mini):
    with mini.db.begin() as conn:
        uid = create_user(conn, "bob", None)
        expired = issue_token(conn, uid, "old")
        revoked = issue_token(conn, uid, "gone")
        conn.execute(tokens.update().where(tokens.c.token_hash == token_hash(expired))
                     .values(expires_at=datetime.now(timezone.utc) - timedelta(minutes=1)))
        conn.execute(tokens.update().where(tokens.c.token_hash == token_hash(revoked))
                     .values(revoked_at=datetime.now(timezone.utc)))
    client = app.test_client()
    for secret in (expired, revoked, "loom_not-a-real-token"):
        r = client.get("/api/v1/mini/customer", headers={"Authorization": f"Bearer {secret}"})
        assert r.status_code == 401
        assert "expired or revoked" in r.get_json()["detail"]
