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
