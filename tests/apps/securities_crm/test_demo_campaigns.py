"""The demo data's campaigns are live: the running one is launched and the approved one gets its
segment once the scheduler runs, as if they had been saved on a screen."""
from __future__ import annotations

import time

import sqlalchemy as sa

from engine.workflow.tables import outbox
from tests.apps.securities_crm.test_customer_360 import APP, _all


def test_the_running_demo_campaign_reaches_its_suitable_members_once(crm_demo):
    loom, _ = crm_demo
    time.sleep(1.1)                         # the campaign steps wait a second for the scheduler
    for _ in range(5):
        loom.workflow.tick()
    campaigns = {c["code"]: c for c in _all(loom, "campaign")}
    members = [m for m in _all(loom, "campaign_member") if m["campaign"] == campaigns["MKT2026-01"]["id"]]
    assert members, "the running campaign has members"
    reached = [m for m in members if m["status"] == "sent"]
    excluded = [m for m in members if m["status"] == "excluded"]
    assert reached and all(m["excluded_reason"] for m in excluded)
    with loom.db.connect() as conn:
        keys = conn.execute(sa.select(outbox.c.idempotency_key)
                            .where(outbox.c.idempotency_key.like(f"campaign:{campaigns['MKT2026-01']['id']}:%"))).scalars().all()
    assert len(keys) == len(set(keys)) == 2 * len(reached)          # sms and app, once each
    approved = [m for m in _all(loom, "campaign_member") if m["campaign"] == campaigns["MKT2026-02"]["id"]]
    assert all(m["status"] in ("queued", "excluded") for m in approved)


def test_a_branch_manager_sees_firm_wide_campaigns_but_changes_only_the_branchs_own(crm_demo):
    import pytest

    from engine.errors import Forbidden, NotFound
    from engine.runtime.web.auth import actor_for_user
    from engine.security.users import users
    loom, _ = crm_demo
    with loom.db.connect() as conn:
        uid = conn.execute(sa.select(users.c.id).where(users.c.username == "manager1")).scalar()
        manager = actor_for_user(conn, uid, None, None, loom)
    ent = loom.model.entity(f"{APP}.campaign")
    from engine.records import ListRequest
    seen = loom.query.list(ent, manager, ListRequest(page_size=50))["items"]
    firm_wide = next(c for c in seen if c["code"] == "MKT2026-01")
    assert {c["code"] for c in seen} >= {"MKT2026-01", "MKT2026-02", "MKT2026-03"}
    with pytest.raises((NotFound, Forbidden)):
        loom.records.update(ent, firm_wide["id"], {"name": "改名"}, manager)
