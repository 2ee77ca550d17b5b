"""Fixtures for the API tests: a Flask app over the `mini` bundle, a user and an API token."""
from __future__ import annotations

import pytest

from engine.security.users import create_user, issue_token


@pytest.fixture
def app(mini):
    from engine.runtime.app import create_app
    application = create_app(mini, {"TESTING": True})
    return application


def make_token(loom, username: str = "alice", **kw) -> str:
    with loom.db.begin() as conn:
        uid = create_user(conn, username, "secret-pass-1", is_admin=True, locale="zh-CN", **kw)
        return issue_token(conn, uid, "tests")


@pytest.fixture
def token(mini):
    return make_token(mini)


@pytest.fixture
def token_for():
    return make_token


class ApiClient:
    """A test client that sends the bearer token on every request."""

    def __init__(self, client, token):
        self.client, self.token = client, token

    def _headers(self, headers):
        h = {"Authorization": f"Bearer {self.token}"}
        h.update(headers or {})
        return h

    def open(self, method, url, headers=None, **kw):
        return self.client.open(url, method=method, headers=self._headers(headers), **kw)

    def get(self, url, **kw):
        return self.open("GET", url, **kw)

    def post(self, url, **kw):
        return self.open("POST", url, **kw)

    def patch(self, url, **kw):
        return self.open("PATCH", url, **kw)

    def delete(self, url, **kw):
        return self.open("DELETE", url, **kw)


@pytest.fixture
def api(app, token):
    return ApiClient(app.test_client(), token)
