"""Timer arithmetic: when an instance next needs the scheduler, when a timer-start process next runs.

SpiffWorkflow keeps each waiting timer's absolute deadline in the task (``waiting_events()``); we
copy the earliest into the indexed ``next_timer_at`` column after every save, so a scheduler tick
selects only instances that are due instead of loading every waiting one. Timer start events
(ISO cycles, dates, durations, or a ``cron`` property) are not left to SpiffWorkflow, which would
grow one instance's task tree forever; a schedule row starts a fresh instance each time instead.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.astimezone(timezone.utc)


#: SpiffWorkflow's timer event definitions (timeDate's class name has no "Timer" in it)
TIMER_EVENTS = frozenset({"TimerEventDefinition", "DurationTimerEventDefinition", "CycleTimerEventDefinition",
                          "TimeDateEventDefinition"})


def next_timer_at(wf) -> datetime | None:
    """The earliest deadline among the workflow's waiting timers, or None."""
    best = None
    for ev in wf.waiting_events():
        if (ev.event_type or "") not in TIMER_EVENTS:
            continue
        value = ev.value
        if isinstance(value, dict):
            value = value.get("next")
        if not isinstance(value, str):
            continue
        try:
            when = _aware(datetime.fromisoformat(value))
        except ValueError:
            continue
        if best is None or when < best:
            best = when
    return best


def _evaluate(expression: str) -> str:
    from engine.workflow.scripting import compiled
    return str(compiled(expression.strip(), "eval").evaluate({}))


def next_start_time(timer: dict, after: datetime | None, now: datetime | None = None) -> datetime | None:
    """When a timer start event next fires after ``after`` (None: the first time)."""
    from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition as T
    now = now or datetime.now(timezone.utc)
    kind, expr = timer["kind"], timer["expression"]
    if kind == "cron":
        from croniter import croniter
        return _aware(croniter(expr, after or now).get_next(datetime))
    value = _evaluate(expr)
    if kind == "date":
        when = _aware(T.get_datetime(value))
        return when if after is None or when > after else None
    if kind == "duration":
        return now + T.get_timedelta_from_start(T.parse_iso_duration(value)) if after is None else None
    cycles, start, duration = T.parse_iso_recurring_interval(value)
    start = _aware(start)
    if after is None:
        return start if start > now - timedelta(seconds=1) else start + duration
    nxt = after + duration
    while nxt <= now:
        nxt += duration
    return nxt


def force_start_event(wf) -> None:
    """Make a new instance of a timer-start process begin now (the schedule decided it is time)."""
    from SpiffWorkflow.bpmn.specs.event_definitions.timer import CycleTimerEventDefinition, TimerEventDefinition
    from SpiffWorkflow.util.task import TaskState
    for task in wf.get_tasks(state=TaskState.FUTURE | TaskState.WAITING | TaskState.READY):
        ed = getattr(task.task_spec, "event_definition", None)
        if isinstance(ed, CycleTimerEventDefinition):
            task.internal_data["event_value"] = {"cycles": 1, "next": "2000-01-01T00:00:00+00:00", "duration": 0}
        elif isinstance(ed, TimerEventDefinition):
            task.internal_data["event_value"] = "2000-01-01T00:00:00+00:00"
            task.internal_data["event_fired"] = True
