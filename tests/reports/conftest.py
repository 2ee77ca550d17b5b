"""Fixtures for the reports tests: the `sales` bundle installed, and a small policy of our own
(so these tests do not depend on the security package): advisors see only their own trades and
customers; a `junior` role cannot see trade commissions."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from engine.security import Actor
from tests.conftest import BUNDLES


class SalesPolicy:
    def __init__(self, loom):
        self.loom = loom

    def can(self, actor, entity, action):
        if actor.is_admin or "manager" in actor.roles:
            return True
        if "advisor" in actor.roles or "junior" in actor.roles:
            return action in {"read", "export"}
        return False

    def _my_advisors(self, actor):
        adv = self.loom.model.entity("sales", "advisor").table
        return sa.select(adv.c.id).where(adv.c.username == actor.username).scalar_subquery()

    def row_filter(self, actor, entity, action="read"):
        if actor.is_admin or "manager" in actor.roles:
            return None
        if entity.full_key == "sales.trade":
            return entity.table.c.advisor.in_(self._my_advisors(actor))
        if entity.full_key == "sales.customer":
            return entity.table.c.advisor.in_(self._my_advisors(actor))
        return None

    def field_rules(self, actor, entity):
        if "junior" in actor.roles and entity.full_key == "sales.trade":
            return {"commission": "hidden"}
        return {}


def use_policy(loom):
    loom.policy_factory = lambda lm, model: SalesPolicy(lm)
    loom.reload(force=True)


@pytest.fixture
def sales(loom):
    loom.install(BUNDLES / "sales")
    use_policy(loom)
    return loom


@pytest.fixture
def reports(sales):
    return sales.extensions["reports"].reports


def actor(username, *roles, locale="zh-CN", user_id=None):
    return Actor(user_id=user_id, username=username, roles=frozenset(roles), locale=locale)


MANAGER = actor("boss", "manager")
WANGFANG = actor("wangfang", "advisor")      # advisor A1 (北京一组)
CHENJING = actor("chenjing", "advisor")      # advisor A4 (上海一组)
JUNIOR = actor("wangfang", "junior")
