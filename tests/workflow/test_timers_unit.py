"""Every kind of BPMN timer gets a deadline in next_timer_at (the scheduler only wakes what has one)."""
from __future__ import annotations

from datetime import datetime, timezone

from SpiffWorkflow.bpmn.util import PendingBpmnEvent

from engine.workflow.timers import next_timer_at


class _Workflow:
    def __init__(self, events):
        self.events = events

    def waiting_events(self):
        return self.events


def test_time_date_duration_and_cycle_timers_all_count_and_the_earliest_wins():
    events = [PendingBpmnEvent("date", "TimeDateEventDefinition", "2026-12-01T09:00:00+00:00"),
              PendingBpmnEvent("sla", "DurationTimerEventDefinition", "2026-12-03T00:00:00+00:00"),
              PendingBpmnEvent("cycle", "CycleTimerEventDefinition", {"next": "2026-11-30T01:00:00+00:00"}),
              PendingBpmnEvent("msg", "MessageEventDefinition", "2026-01-01T00:00:00+00:00")]
    assert next_timer_at(_Workflow(events)) == datetime(2026, 11, 30, 1, tzinfo=timezone.utc)
    assert next_timer_at(_Workflow(events[:1])) == datetime(2026, 12, 1, 9, tzinfo=timezone.utc)
    assert next_timer_at(_Workflow(events[3:])) is None
