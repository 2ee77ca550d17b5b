"""Fixtures for the workflow tests: the `flow` bundle installed, users with roles, API clients.

The Celery worker fixture (``celery_worker``) is shared from tests/conftest.py: it starts a real
worker on LOOM_TEST_BROKER_URL and skips without one.
"""
from __future__ import annotations

import pytest

from engine.security import Actor
from engine.security.users import create_user, issue_token
from tests.conftest import BUNDLES

USERS = {"alice": ["flow.advisor"], "carol": ["flow.compliance"], "mike": ["flow.manager", "flow.advisor",
                                                                          "flow.compliance"], "zoe": []}


@pytest.fixture
def flow(loom):
    loom.install(BUNDLES / "flow")
    return loom


@pytest.fixture
def actors(flow):
    out = {}
    with flow.db.begin() as conn:
        for name, roles in USERS.items():
            uid = create_user(conn, name, "secret-pass-1", roles=roles, locale="en")
            out[name] = Actor(user_id=uid, username=name, roles=frozenset(roles), locale="en")
    return out


class Client:
    def __init__(self, client, token):
        self.client, self.token = client, token

    def open(self, method, url, **kw):
        headers = {"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        return self.client.open(url, method=method, headers=headers, **kw)

    def get(self, url, **kw):
        return self.open("GET", url, **kw)

    def post(self, url, **kw):
        return self.open("POST", url, **kw)


@pytest.fixture
def app(flow, actors):
    from engine.runtime.app import create_app
    return create_app(flow, {"TESTING": True})


@pytest.fixture
def clients(flow, actors, app):
    out = {}
    with flow.db.begin() as conn:
        for name, a in actors.items():
            out[name] = Client(app.test_client(), issue_token(conn, a.user_id, "tests"))
    return out
