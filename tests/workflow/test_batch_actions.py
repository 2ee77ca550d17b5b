"""The batch service actions (record.create_many / record.update_many / notify.channel_many): rows a
script task prepared are written in the step's transaction, all or nothing, errors name the row, and
outbox messages with a key already queued are skipped, so re-running a send queues nothing twice."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from engine.errors import InvalidInput
from engine.security import Actor
from engine.workflow.actions import ActionContext, run_action
from engine.workflow.tables import outbox

SYSTEM = Actor.system("tests")


def run(loom, name, params, key):
    with loom.records.unit() as uow:
        ctx = ActionContext(loom, uow, 1, "mini", "task", key, Actor.system("workflow"))
        return run_action(name, params, ctx)


def names(loom):
    from engine.records.query import ListRequest
    items = loom.query.list(loom.records.entity("mini.customer"), SYSTEM, ListRequest(page_size=100))["items"]
    return sorted((c["name"], c["risk_level"]) for c in items)


def test_create_and_update_many_write_every_row(mini):
    before = names(mini)
    made = run(mini, "record.create_many", {"entity": "customer", "rows": [
        {"name": "甲", "risk_level": "C1"}, {"name": "乙", "risk_level": "C3"}]}, "k1")
    assert made["count"] == 2 and len(made["ids"]) == 2
    done = run(mini, "record.update_many", {"entity": "customer", "rows": [
        {"id": made["ids"][0], "data": {"risk_level": "C2"}}]}, "k2")
    assert done == {"count": 1}
    assert sorted(set(names(mini)) - set(before)) == [("乙", "C3"), ("甲", "C2")]


def test_a_bad_row_rolls_back_the_batch_and_names_the_row(mini):
    before = names(mini)
    with pytest.raises(InvalidInput) as exc:
        run(mini, "record.create_many", {"entity": "customer", "rows": [
            {"name": "甲", "risk_level": "C1"}, {"name": "乙", "risk_level": "C9"}]}, "k3")
    assert "row 1" in str(exc.value) and exc.value.problems[0].path == "rows/1"
    assert names(mini) == before          # the good first row was rolled back with the bad one
    with pytest.raises(InvalidInput, match="must be a list"):
        run(mini, "record.create_many", {"entity": "customer", "rows": {"name": "x"}}, "k4")
    with pytest.raises(InvalidInput, match="no `id`"):
        run(mini, "record.update_many", {"entity": "customer", "rows": [{"data": {"name": "x"}}]}, "k5")


def test_channel_many_skips_keys_already_in_the_outbox(mini):
    msgs = [{"channel": "sms", "key": "c:1:sms", "payload": {"to": 1}},
            {"channel": "app", "key": "c:1:app", "payload": {"to": 1}}]
    assert run(mini, "notify.channel_many", {"messages": msgs}, "k6") == {"queued": 2, "skipped": 0}
    # a new task attempt (another key) sending the same messages plus one more: only the new one goes out
    more = msgs + [{"channel": "sms", "key": "c:2:sms", "payload": {"to": 2}}]
    assert run(mini, "notify.channel_many", {"messages": more}, "k7") == {"queued": 1, "skipped": 2}
    with mini.db.connect() as conn:
        keys = sorted(conn.execute(sa.select(outbox.c.idempotency_key)).scalars())
    assert keys == ["c:1:app", "c:1:sms", "c:2:sms"]
    with pytest.raises(InvalidInput, match="needs `channel` and `key`"):
        run(mini, "notify.channel_many", {"messages": [{"channel": "sms"}]}, "k8")
