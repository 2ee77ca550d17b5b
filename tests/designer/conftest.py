"""Fixtures for the designer's endpoint tests: the app over `mini`, an admin (alice) and an
analyst without the design permission (bob), each with an API token."""
from __future__ import annotations

import pytest

from engine.security.users import create_user, issue_token


class Client:
    """A Flask test client sending one user's bearer token (no CSRF needed for bearer calls)."""

    def __init__(self, client, token):
        self.client, self.token = client, token

    def get(self, url, **kw):
        return self.client.get(url, headers={"Authorization": f"Bearer {self.token}"}, **kw)

    def post(self, url, json=None, **kw):
        return self.client.post(url, json=json, headers={"Authorization": f"Bearer {self.token}"}, **kw)

    def delete(self, url, **kw):
        return self.client.delete(url, headers={"Authorization": f"Bearer {self.token}"}, **kw)


def _token(loom, username, **kw):
    with loom.db.begin() as conn:
        uid = create_user(conn, username, f"{username}-pass-123", locale="en", **kw)
        return issue_token(conn, uid, "tests")


@pytest.fixture
def app(mini):
    from engine.runtime.app import create_app
    return create_app(mini, {"TESTING": True})


@pytest.fixture
def alice(app, mini):
    return Client(app.test_client(), _token(mini, "alice", is_admin=True))


@pytest.fixture
def carol(app, mini):
    """A second analyst (admin) editing the same definitions."""
    return Client(app.test_client(), _token(mini, "carol", is_admin=True))


@pytest.fixture
def bob(app, mini):
    """An advisor: may read and write customers but not design."""
    return Client(app.test_client(), _token(mini, "bob", roles=["mini.advisor"]))
