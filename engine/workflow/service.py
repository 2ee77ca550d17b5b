"""Running processes: start, complete tasks, timers, messages, retries -- each step one transaction.

Every step follows the same shape (:meth:`WorkflowService._step`): open a unit of work, lock the
instance row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises
writers), restore the workflow from its state JSON plus the cached spec of *its* definition
version, change it, run the engine to the next wait state, then write the business records (through
the record service, in the same unit), the instance state with ``lock_version + 1``, the human-task
projection and the trail of who did what. Either all of it commits or none of it does, so a crash
between steps loses nothing: the instance resumes from its last committed state.
"""
from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone
from typing import Callable
from uuid import UUID

import sqlalchemy as sa
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState

from engine import audit
from engine.errors import Conflict, Forbidden, InvalidInput, NotFound, Problem
from engine.security import Actor
from engine.workflow import definitions as defs
from engine.workflow.actions import ActionContext, run_action
from engine.workflow.scripting import EngineScriptEngine, RestrictedTaskDataEnvironment, compiled
from engine.workflow.tables import (human_tasks, process_definitions, process_events, process_instances,
                                    process_schedules, task_refs)
from engine.workflow.timers import force_start_event, next_start_time, next_timer_at

log = logging.getLogger(__name__)

#: deeper task trees are refused: SpiffWorkflow's task iterator stops at depth 1000 and then
#: reports a looping instance as completed (see the reference notes)
MAX_TREE_DEPTH = 900
OPEN = ("waiting", "error")


# The hot statements of a step, built once: building a SQLAlchemy statement per call (coercions,
# cache keys) cost more than running it on SQLite. Parameters are bound at execution.
_B = sa.bindparam
_PI, _HT = process_instances, human_tasks
_SAVE_INSTANCE = _PI.update().where(_PI.c.id == _B("_id"), _PI.c.lock_version == _B("_lock")).values(
    state=_B("state"), status=_B("status"), next_timer_at=_B("next_timer_at"), lock_version=_B("lock_version"),
    updated_at=_B("updated_at"), error=_B("error"), serializer_version=_B("serializer_version"),
    completed_at=sa.func.coalesce(_B("completed_now", type_=_PI.c.completed_at.type), _PI.c.completed_at))
_OPEN_IDS = sa.select(_HT.c.id).where(_HT.c.instance_id == _B("_iid"), _HT.c.status == "ready")
_CLOSE_DONE = _HT.update().where(_HT.c.id == _B("_tid")).values(status="completed", completed_at=_B("at"),
                                                                 completed_by=_B("by"))
_LOCK_BY_TASK = sa.select(_PI).where(_PI.c.id == sa.select(_HT.c.instance_id).where(_HT.c.id == _B("_tid"))
                                     .scalar_subquery())
_LOCK_BY_TASK_PG = _LOCK_BY_TASK.with_for_update()
_INSERT_TASKS = _HT.insert()
_INSERT_REFS = task_refs.insert()
_TASKS_OF = sa.select(_HT).where(_HT.c.instance_id == _B("_iid"), sa.or_(_HT.c.status == "ready", _HT.c.id == _B("_tid")))


class ProcessLimitExceeded(InvalidInput):
    title = "Process limit exceeded"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _aware(dt):
    if dt is None:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


class _Step:
    """What one step knows: the unit of work, the instance, who acts, what happened."""

    def __init__(self, svc: "WorkflowService", uow, instance_id: int, app: str, actor: Actor):
        self.svc, self.uow, self.instance_id, self.app, self.actor = svc, uow, instance_id, app, actor
        self.error: dict | None = None
        self.events: list[tuple[str, str | None, str | None, dict | None]] = []

    def services(self, name: str, params: dict, task):
        ctx = ActionContext(self.svc.loom, self.uow, self.instance_id, self.app, task.task_spec.bpmn_id,
                            f"wf:{self.instance_id}:{task.id}", Actor.system("workflow"))
        result = run_action(name, params, ctx)
        self.events.append(("service", task.task_spec.bpmn_id, str(task.id), {"action": name}))
        return result


class WorkflowService:
    def __init__(self, loom, clock: Callable[[], datetime] | None = None):
        self.loom = loom
        self.clock = clock or utcnow
        self.definitions = defs.DefinitionCache()
        self._triggers: tuple[float, list] = (0.0, [])

    # -- state ------------------------------------------------------------------------------------

    def _engine(self, step: _Step) -> EngineScriptEngine:
        api = self.loom.sandbox_api(step.actor) if getattr(self.loom, "sandbox_api_factory", None) else None
        return EngineScriptEngine(environment=RestrictedTaskDataEnvironment(api=api, services=step.services))

    def _new(self, d: defs.Definition, step: _Step):
        from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
        spec, subs = d.objects()
        return BpmnWorkflow(spec, dict(subs), script_engine=self._engine(step))

    def _restore(self, row, d: defs.Definition, step: _Step):
        """The workflow from its state JSON and the shared spec objects of its version.

        The state is decoded once; the spec is not restored at all (it is the cached one). A state
        written by an older serializer goes through SpiffWorkflow's migrations on the full path.
        """
        s = defs.serializer()
        dct = json.loads(row["state"], cls=s.json_decoder_cls)
        version = row["serializer_version"] or s.VERSION
        if version == s.VERSION:
            spec, subs = d.objects()
            dct["spec"], dct["subprocess_specs"] = spec, dict(subs)
        else:
            dct["spec"] = json.loads(json.dumps(d.spec["spec"]), cls=s.json_decoder_cls)
            dct["subprocess_specs"] = json.loads(json.dumps(d.spec["subprocess_specs"]), cls=s.json_decoder_cls)
            dct[s.VERSION_KEY] = version
            s.migrate(dct)
        wf = s.from_dict(dct)
        wf.script_engine = self._engine(step)
        return wf

    @staticmethod
    def _dump(wf) -> str:
        s = defs.serializer()
        with defs._SER_LOCK:
            s.registry._encoder_mode = True
            try:
                dct = s.to_dict(wf)
                dct.pop("spec", None)
                dct.pop("subprocess_specs", None)
                return json.dumps(dct, cls=s._encoder_cls, separators=(",", ":"))
            finally:
                s.registry._encoder_mode = False

    def _lock(self, conn, instance_id: int, *, skip_locked: bool = False, due_before=None):
        t = process_instances
        q = sa.select(t).where(t.c.id == instance_id)
        if due_before is not None:
            q = q.where(t.c.next_timer_at <= due_before)
        if conn.dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=skip_locked)
        return conn.execute(q).mappings().first()

    def _run(self, wf, step: _Step, *, timers: bool = False) -> None:
        try:
            if timers:
                wf.refresh_timers()
            wf.do_engine_steps()
        except (WorkflowTaskException, SpiffWorkflowException) as exc:
            task = getattr(exc, "task", None)
            original = getattr(exc, "exception", None)
            message = getattr(original, "message", None) or str(exc).splitlines()[0]
            step.error = {"bpmn_id": task.task_spec.bpmn_id if task else None, "task_id": str(task.id) if task else None,
                          "message": message, "at": self.clock().isoformat()}
            step.events.append(("error", step.error["bpmn_id"], step.error["task_id"], {"message": message}))
        self._check_depth(wf)

    @staticmethod
    def _check_depth(wf) -> None:
        tasks = getattr(wf, "tasks", {})
        if len(tasks) < MAX_TREE_DEPTH:
            return
        deepest = 0
        for t in tasks.values():
            if not t._children:
                deepest = max(deepest, t.depth)
        if deepest >= MAX_TREE_DEPTH:
            from collections import Counter
            counts = Counter(t.task_spec.bpmn_id for t in tasks.values() if t.task_spec.bpmn_id)
            bpmn_id = counts.most_common(1)[0][0] if counts else None    # the step that repeated most
            raise ProcessLimitExceeded(
                f"the process ran {deepest} steps deep (limit {MAX_TREE_DEPTH}) at `{bpmn_id}`: a loop went round too "
                "often. Cap the loop count in its gateway condition, or wait on a timer cycle, or start a new "
                "instance per round; nothing was saved",
                problems=[Problem(f"task tree depth {deepest} exceeds {MAX_TREE_DEPTH}", path=bpmn_id, code="depth")])

    def _status(self, wf, step: _Step) -> str:
        if wf.get_tasks(state=TaskState.ERROR):
            return "error"
        if wf.is_completed():
            return "completed"
        return "waiting"

    def _save(self, conn, row: dict, d: defs.Definition, wf, step: _Step, *, completed_task: str | None = None,
              completed_by: str | None = None) -> dict:
        now = self.clock()
        status = self._status(wf, step)
        values = dict(state=self._dump(wf), status=status, next_timer_at=next_timer_at(wf) if status != "completed" else None,
                      lock_version=row["lock_version"] + 1, updated_at=now,
                      error=step.error if status == "error" else None,
                      serializer_version=defs.serializer().VERSION)
        n = conn.execute(_SAVE_INSTANCE, {**values, "_id": row["id"], "_lock": row["lock_version"],
                                          "completed_now": now if status == "completed" else None}).rowcount
        if status == "completed":
            values["completed_at"] = now
        if n != 1:
            raise Conflict(f"process instance {row['id']} was changed by someone else at the same time; reload and retry")
        ready = self._sync_tasks(conn, row, d, wf, completed_task, completed_by, now)
        trail = [{"instance_id": row["id"], "at": now, "actor": step.actor.username, "action": action,
                  "bpmn_id": bpmn_id, "task_id": task_id, "detail": detail}
                 for action, bpmn_id, task_id, detail in step.events]
        if status == "completed" and row["status"] != "completed":
            trail.append({"instance_id": row["id"], "at": now, "actor": step.actor.username, "action": "completed",
                          "bpmn_id": None, "task_id": None, "detail": None})
        if trail:
            conn.execute(process_events.insert(), trail)     # one executemany for the step's trail
        out = {**row, **values}
        if ready is not None:
            out["_ready"] = ready
        return out

    # -- human-task projection ----------------------------------------------------------------------

    def _eval(self, source: str, data: dict, what: str):
        try:
            return compiled(source.strip(), "eval").evaluate(dict(data))
        except Exception as exc:  # noqa: BLE001  (a bad property must not block the step)
            log.warning("workflow task property %s failed: %s", what, exc)
            return None

    def _sync_tasks(self, conn, row, d: defs.Definition, wf, completed_task, completed_by, now) -> None:
        t = human_tasks
        ready = {str(x.id): x for x in wf.get_tasks(state=TaskState.READY, manual=True)}
        if row["lock_version"] == 0:
            existing = set()        # a new instance has no projected tasks yet
        elif row.get("_open_tasks") is not None:
            existing = set(row["_open_tasks"])      # read with the task, under the instance lock
        else:
            existing = {r.id for r in conn.execute(_OPEN_IDS, {"_iid": row["id"]})}
        closed = existing - set(ready)
        if completed_task in closed:
            conn.execute(_CLOSE_DONE, {"_tid": completed_task, "at": now, "by": completed_by})
            closed.discard(completed_task)
        if closed:
            conn.execute(t.update().where(t.c.id.in_(sorted(closed))).values(status="cancelled", completed_at=now,
                                                                            completed_by=None))
        rows, refs = [], []
        for tid in set(ready) - existing:
            task = ready[tid]
            refs.extend({"task_id": tid, "instance_id": row["id"], "entity": ent, "record_id": rid, "variable": var}
                        for var, ent, rid in self.references(d, task.data, row))
            meta = d.meta.get("tasks", {}).get(task.task_spec.bpmn_id, {})
            cands = None
            if meta.get("candidates"):
                value = self._eval(meta["candidates"], task.data, "candidates")
                values = [value] if isinstance(value, str) else list(value or [])
                cands = {"users": [str(v) for v in values if not str(v).startswith("role:")],
                         "roles": [defs.role_key(d.app, str(v)[5:]) for v in values if str(v).startswith("role:")]}
            due = None
            if meta.get("due"):
                due = self._due(self._eval(meta["due"], task.data, "due"), now)
            if due is None:
                due = self._boundary_deadline(task)
            priority = 50
            if meta.get("priority"):
                p = self._eval(meta["priority"], task.data, "priority")
                priority = int(p) if isinstance(p, (int, float)) else 50
            form = meta.get("form")
            rows.append(dict(
                id=tid, instance_id=row["id"], app=d.app, process_key=d.key, bpmn_id=task.task_spec.bpmn_id,
                name=task.task_spec.bpmn_name or meta.get("name") or task.task_spec.bpmn_id,
                lane=task.task_spec.lane, role=defs.role_key(d.app, task.task_spec.lane), candidates=cands,
                form_key=(form if not form or "." in form else f"{d.app}.{form}"), status="ready", due_at=due,
                priority=priority, created_at=now))
        if rows:
            conn.execute(_INSERT_TASKS, rows)   # one executemany for all new tasks
        if refs:
            conn.execute(_INSERT_REFS, refs)
        if existing & set(ready):
            return None                         # tasks still open from before: the caller reads them
        return [dict(r, assignee=None, claimed_by=None, completed_at=None, completed_by=None) for r in rows]

    @staticmethod
    def _due(value, now):
        if value is None:
            return None
        if isinstance(value, datetime):
            return _aware(value)
        from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition as T
        try:
            return now + T.get_timedelta_from_start(T.parse_iso_duration(str(value)))
        except Exception:  # noqa: BLE001
            try:
                return _aware(datetime.fromisoformat(str(value)))
            except ValueError:
                return None

    @staticmethod
    def _boundary_deadline(task):
        """A timer on the task's boundary is its SLA: show its deadline as the due date."""
        best = None
        parent = task.parent
        for sib in (parent.children if parent is not None else []):
            if sib is task or not sib.has_state(TaskState.WAITING):
                continue
            value = sib.internal_data.get("event_value")
            if isinstance(value, dict):
                value = value.get("next")
            if isinstance(value, str):
                try:
                    when = _aware(datetime.fromisoformat(value))
                except ValueError:
                    continue
                best = when if best is None or when < best else best
        return best

    # -- what a task's data points at ---------------------------------------------------------------

    def record_variable_map(self, d: defs.Definition) -> dict[str, str]:
        """Process variables of ``d`` that hold record ids -> the entity (``app.entity``) of each.

        Two sources, both declared rather than guessed from values: a user task's ``record``
        property names the variable holding its form's record, and a variable named
        ``<entity>_id`` after an entity of the process's app holds that entity's ids (the name
        record triggers give the record that started the process)."""
        model = self.loom.model
        cache = getattr(self, "_var_maps", None)
        if cache is None or cache[0] is not model:
            cache = self._var_maps = (model, {})
        if d.id in cache[1]:
            return cache[1][d.id]
        out = {f"{e.key}_id": e.full_key for e in model.entities_of(d.app) if e.parent is None}
        for meta in d.meta.get("tasks", {}).values():
            key = meta.get("form")
            form = model.forms.get(key if not key or "." in key else f"{d.app}.{key}") if key else None
            if form is not None:
                out[meta.get("record") or f"{form.entity}_id"] = f"{form.app}.{form.entity}"
        cache[1][d.id] = out
        return out

    def references(self, d: defs.Definition, data: dict, row: dict | None = None) -> list[tuple[str, str, int]]:
        """(variable, entity, record id) for each record the process data points at, plus the
        record the instance was started for (its subject)."""
        out, seen = [], set()
        for var, ent in self.record_variable_map(d).items():
            rid = _record_id(data.get(var))
            if rid is not None and (ent, rid) not in seen:
                seen.add((ent, rid))
                out.append((var, ent, rid))
        if row and row.get("subject_entity") and row.get("subject_id") is not None:
            key = (row["subject_entity"], int(row["subject_id"]))
            if key not in seen:
                out.append(("subject", *key))
        return out

    def open_tasks_about(self, entity: str, record_ids, limit: int = 50) -> list[dict]:
        """Open human tasks whose process data points at one of ``record_ids`` of ``entity``
        (newest first). The caller decides who may see which (see :meth:`may_look`)."""
        ids = sorted({int(i) for i in record_ids})
        if not ids:
            return []
        t, r = human_tasks, task_refs
        q = (sa.select(t, r.c.record_id.label("_ref_id"), r.c.variable.label("_ref_var"))
             .select_from(t.join(r, r.c.task_id == t.c.id))
             .where(t.c.status == "ready", r.c.entity == entity, r.c.record_id.in_(ids))
             .order_by(t.c.priority.desc(), t.c.created_at.desc()).limit(limit * 3))
        out, seen = [], set()
        with self.loom.db.connect() as conn:
            for row in conn.execute(q).mappings():
                if row["id"] in seen:
                    continue
                seen.add(row["id"])
                j = self.task_json(row)
                j["record_id"], j["variable"] = row["_ref_id"], row["_ref_var"]
                out.append(j)
        return out[:limit]

    def may_look(self, actor: Actor, row) -> bool:
        """May ``actor`` open the task's page: who may take it, who holds or finished it, managers."""
        return (self.eligible(actor, row) or row["assignee"] == actor.username
                or row.get("completed_by") == actor.username or self.is_manager(actor, row["app"]))

    def prefill(self, task_id: str, data: dict | None = None) -> dict:
        """Values for the task's form taken from its process data: a form field named like a
        variable takes its value, a link field takes the id in ``<field>_id`` or in a variable
        holding ids of the linked entity (``customer`` <- ``customer_id``), or the instance's
        subject when that is a record of the linked entity. Only plain values; the form shows
        them, the user still submits them (nothing is written here). ``data``: the task's data when
        the caller already has it (:meth:`task_data`), which saves restoring the workflow again."""
        with self.loom.db.connect() as conn:
            trow = self.task_row(conn, task_id)
            if trow["status"] != "ready":
                return {}
            row = conn.execute(sa.select(process_instances).where(process_instances.c.id == trow["instance_id"])
                               ).mappings().one()
            d = self.definitions.get(conn, row["definition_id"])
        form = self.form_of(trow)
        if form is None:
            return {}
        ent = self.loom.model.entities.get(f"{form.app}.{form.entity}")
        if ent is None:
            return {}
        if data is None:
            wf = self._restore(row, d, _Step(self, None, row["id"], d.app, Actor.system("reader")))
            task = wf.get_task_from_id(UUID(str(task_id)))
            data = _jsonable(dict(task.data)) if task is not None else {}
        by_entity: dict[str, list[int]] = {}
        for var, e, rid in self.references(d, data, row):
            by_entity.setdefault(e, []).append(rid)
        record_var = d.meta.get("tasks", {}).get(trow["bpmn_id"], {}).get("record") or f"{form.entity}_id"
        fields = [k for s in form.spec.get("sections") or [] for k in (s.get("fields") or [])] or list(ent.fields)
        out = {}
        for key in fields:
            f = ent.fields.get(key)
            if f is None or f.type in {"computed", "table", "attachment"} or key == record_var:
                continue
            if f.type == "link":
                rid = _record_id(data.get(key)) if key in data else _record_id(data.get(f"{key}_id"))
                if rid is None:
                    candidates = by_entity.get(f.target) or []
                    rid = candidates[0] if len(set(candidates)) == 1 else None   # ambiguous: leave it empty
                if rid is not None:
                    out[key] = rid
            elif key in data and isinstance(data[key], (str, int, float, bool, list)) and data[key] is not None:
                if isinstance(data[key], list) and not all(isinstance(v, (str, int)) for v in data[key]):
                    continue
                out[key] = data[key]
        return out

    # -- starting -----------------------------------------------------------------------------------

    def start(self, process_key: str, actor: Actor, data: dict | None = None, *, correlation_key: str | None = None,
              subject: tuple[str, int] | None = None, uow=None, timer_start: bool = False) -> dict:
        """Start the newest version of a process; returns the instance (id, status, tasks)."""
        data = _plain_data(data or {}, "data")
        with self.loom.records.unit(uow) as u:
            d = self.definitions.latest(u.conn, process_key)
            if d is None:
                raise NotFound(f"no process `{process_key}` is deployed",
                               problems=[Problem(f"no process `{process_key}`", field="process", code="not_found")])
            now = self.clock()
            if correlation_key is None and d.meta.get("start", {}).get("correlation"):
                ck = self._eval(d.meta["start"]["correlation"], data, "correlation")
                correlation_key = None if ck is None else str(ck)
            t = process_instances
            iid = u.conn.execute(t.insert(), dict(
                definition_id=d.id, app=d.app, process_key=d.key, version=d.version, status="waiting", state="{}",
                lock_version=0, correlation_key=correlation_key, subject_entity=subject[0] if subject else None,
                subject_id=subject[1] if subject else None, started_by=actor.username, created_at=now,
                updated_at=now)).inserted_primary_key[0]
            step = _Step(self, u, iid, d.app, actor)
            wf = self._new(d, step)
            if timer_start:
                force_start_event(wf)
            for task in wf.get_tasks(state=TaskState.READY):
                task.set_data(**data)
            step.events.append(("started", None, None, {"version": d.version, "data": sorted(data)}))
            self._run(wf, step)
            row = dict(id=iid, definition_id=d.id, app=d.app, process_key=d.key, version=d.version, status="waiting",
                       lock_version=0, correlation_key=correlation_key, next_timer_at=None, error=None,
                       subject_entity=subject[0] if subject else None, subject_id=subject[1] if subject else None)
            saved = self._save(u.conn, row, d, wf, step)
            return self._summary(saved, u.conn)

    # -- tasks ----------------------------------------------------------------------------------------

    def task_row(self, conn, task_id: str):
        row = conn.execute(sa.select(human_tasks).where(human_tasks.c.id == str(task_id))).mappings().first()
        if row is None:
            raise NotFound(f"no task `{task_id}`", problems=[Problem(f"no task `{task_id}`", field="task", code="not_found")])
        return row

    @staticmethod
    def _has_role(actor: Actor, role: str | None) -> bool:
        if not role:
            return False
        return role in actor.roles or role.split(".", 1)[-1] in actor.roles

    def eligible(self, actor: Actor, row) -> bool:
        """May ``actor`` take this task (lane role, candidates), ignoring who claimed it?"""
        if actor.is_admin or actor.is_system:
            return True
        cands = row["candidates"] or {}
        if actor.username in (cands.get("users") or []):
            return True
        roles = list(cands.get("roles") or [])
        if row["role"]:
            roles.append(row["role"])
        if any(self._has_role(actor, r) for r in roles):
            return True
        return not roles and not (cands.get("users") or [])

    def can_work(self, actor: Actor, row) -> bool:
        if row["assignee"] and row["assignee"] != actor.username:
            return actor.is_admin or actor.is_system
        return self.eligible(actor, row)

    def may_see(self, actor, detail: dict) -> bool:
        """Who may look at an instance: managers of its app, its starter, and anyone who held,
        completed or may take one of its tasks. Screens and API ask this one question."""
        if actor.is_system or actor.is_admin:
            return True
        app = detail["process"].split(".", 1)[0]
        if self.is_manager(actor, app) or detail.get("started_by") == actor.username:
            return True
        for h in detail.get("history") or []:
            if actor.username in (h.get("completed_by"), h.get("assignee")):
                return True
            if h.get("status") == "ready" and self.eligible(actor, {"role": h.get("role"),
                                                                     "candidates": h.get("candidates")}):
                return True
        return False

    def is_manager(self, actor: Actor, app: str) -> bool:
        return actor.is_admin or actor.is_system or self._has_role(actor, f"{app}.manager") or "workflow.manager" in actor.roles

    def _open_task(self, conn, task_id: str, actor: Actor):
        # lock the task's instance first, then read the task under that lock (two statements)
        q = _LOCK_BY_TASK_PG if conn.dialect.name == "postgresql" else _LOCK_BY_TASK
        inst = conn.execute(q, {"_tid": str(task_id)}).mappings().first()
        if inst is None:
            raise NotFound(f"no task `{task_id}`", problems=[Problem(f"no task `{task_id}`", field="task", code="not_found")])
        # the task and its open siblings in one read (the projection sync needs the open ones)
        rows = conn.execute(_TASKS_OF, {"_iid": inst["id"], "_tid": str(task_id)}).mappings().all()
        trow = next(r for r in rows if r["id"] == str(task_id))
        inst = {**inst, "_open_tasks": {r["id"] for r in rows if r["status"] == "ready"}}
        if trow["status"] != "ready":
            who = f" by {trow['completed_by']}" if trow["completed_by"] else ""
            raise Conflict(f"task `{trow['name']}` was already {trow['status']}{who}; it cannot be changed any more",
                           problems=[Problem(f"task is {trow['status']}", field="task", code="task_closed")])
        return trow, inst

    def complete(self, task_id: str, actor: Actor, data: dict | None = None, variables: dict | None = None, *,
                 expected_lock_version: int | None = None) -> dict:
        """Submit a task's form: validate it through the record service, move the process on."""
        variables = _plain_data(variables or {}, "variables")
        with self.loom.records.unit() as u:
            trow, inst = self._open_task(u.conn, task_id, actor)
            if expected_lock_version is not None and int(expected_lock_version) != inst["lock_version"]:
                raise Conflict(f"process instance {inst['id']} moved on since you opened the task "
                               f"(version {expected_lock_version}, now {inst['lock_version']}); reload it",
                               current_version=inst["lock_version"])
            if not self.can_work(actor, trow):
                if trow["assignee"]:
                    raise Conflict(f"task `{trow['name']}` is assigned to {trow['assignee']}",
                                   problems=[Problem("assigned to someone else", field="task", code="claimed")])
                raise Forbidden(f"{actor.username} may not work on task `{trow['name']}` (role {trow['role']})")
            d = self.definitions.get(u.conn, inst["definition_id"])
            step = _Step(self, u, inst["id"], d.app, actor)
            wf = self._restore(inst, d, step)
            task = wf.get_task_from_id(UUID(str(task_id)))
            if task is None or task.state != TaskState.READY:
                raise Conflict(f"task `{trow['name']}` is no longer open")
            if data is not None and trow["form_key"]:
                self._submit_form(u, d, trow, task, data, actor)
            elif data:
                raise InvalidInput("this task has no form; send `variables` instead of `data`",
                                   problems=[Problem("task has no form", field="data", code="parameter")])
            if variables:
                task.set_data(**variables)
            task.run()
            step.events.append(("task_completed", task.task_spec.bpmn_id, str(task.id),
                                {"fields": sorted((data or {}).keys()), "variables": sorted(variables)}))
            self._run(wf, step)
            saved = self._save(u.conn, dict(inst), d, wf, step, completed_task=str(task.id), completed_by=actor.username)
            audit.append(u.conn, "task.complete", actor_id=actor.user_id, actor=actor.username, address=actor.address,
                         app=d.app, detail={"instance": inst["id"], "task": str(task_id), "bpmn_id": trow["bpmn_id"]})
        return self._summary(saved)

    def form_of(self, trow):
        if not trow["form_key"]:
            return None
        return self.loom.model.forms.get(trow["form_key"])

    def _submit_form(self, u, d, trow, task, data: dict, actor: Actor) -> None:
        if not isinstance(data, dict):
            raise InvalidInput("`data` must be an object of form fields", problems=[Problem("not an object", field="data")])
        form = self.form_of(trow)
        if form is None:
            raise NotFound(f"form `{trow['form_key']}` of task `{trow['name']}` is not installed")
        allowed = {f for s in form.spec.get("sections") or [] for f in (s.get("fields") or [])}
        extra = sorted(k for k in data if allowed and k not in allowed)
        if extra:
            raise InvalidInput(problems=[Problem(f"field `{k}` is not on form `{form.key}`", field=k, code="unknown_field")
                                         for k in extra])
        entity = f"{form.app}.{form.entity}"
        meta = d.meta.get("tasks", {}).get(trow["bpmn_id"], {})
        var = meta.get("record") or f"{form.entity}_id"
        rec_id = task.data.get(var)
        if rec_id:
            self.loom.records.update(entity, int(rec_id), data, actor, uow=u)
        else:
            rec = self.loom.records.create(entity, data, actor, uow=u)
            task.set_data(**{var: rec["id"]})

    def _assign(self, task_id: str, actor: Actor, action: str, fn) -> dict:
        with self.loom.records.unit() as u:
            trow, inst = self._open_task(u.conn, task_id, actor)
            values = fn(trow, u.conn)
            u.conn.execute(human_tasks.update().where(human_tasks.c.id == trow["id"]).values(**values))
            u.conn.execute(process_events.insert().values(instance_id=inst["id"], at=self.clock(), actor=actor.username,
                                                          action=action, bpmn_id=trow["bpmn_id"], task_id=trow["id"],
                                                          detail={k: v for k, v in values.items() if k == "assignee"}))
            return dict(self.task_row(u.conn, task_id))

    def claim(self, task_id: str, actor: Actor) -> dict:
        def fn(trow, conn):
            if trow["assignee"] == actor.username:
                return {}
            if trow["assignee"]:
                raise Conflict(f"task `{trow['name']}` is already claimed by {trow['assignee']}",
                               problems=[Problem("already claimed", field="task", code="claimed")])
            if not self.eligible(actor, trow):
                raise Forbidden(f"{actor.username} may not claim task `{trow['name']}` (role {trow['role']})")
            return {"assignee": actor.username, "claimed_by": actor.username}
        return self._assign(task_id, actor, "claimed", fn)

    def unclaim(self, task_id: str, actor: Actor) -> dict:
        def fn(trow, conn):
            if trow["assignee"] != actor.username and not self.is_manager(actor, trow["app"]):
                raise Forbidden(f"only {trow['assignee'] or 'the assignee'} or a manager may release this task")
            return {"assignee": None, "claimed_by": None}
        return self._assign(task_id, actor, "unclaimed", fn)

    def delegate(self, task_id: str, actor: Actor, to_user: str) -> dict:
        """The assignee hands the task to a colleague (or a manager reassigns it)."""
        def fn(trow, conn):
            manager = self.is_manager(actor, trow["app"])
            if trow["assignee"] != actor.username and not manager:
                raise Forbidden("claim the task before delegating it, or ask a manager to reassign it")
            if not to_user:
                raise InvalidInput(problems=[Problem("name the user to hand the task to", field="to", code="required")])
            self._user_exists(conn, to_user)
            return {"assignee": to_user}
        return self._assign(task_id, actor, "delegated", fn)

    def reassign(self, task_id: str, actor: Actor, to_user: str | None) -> dict:
        def fn(trow, conn):
            if not self.is_manager(actor, trow["app"]):
                raise Forbidden(f"only a manager may reassign tasks ({trow['app']}.manager)")
            if to_user:
                self._user_exists(conn, to_user)
            return {"assignee": to_user or None}
        return self._assign(task_id, actor, "reassigned", fn)

    def set_task(self, task_id: str, actor: Actor, *, priority: int | None = None, due_at: datetime | None = None) -> dict:
        def fn(trow, conn):
            if not self.is_manager(actor, trow["app"]):
                raise Forbidden("only a manager may change a task's priority or due date")
            out = {}
            if priority is not None:
                out["priority"] = int(priority)
            if due_at is not None:
                out["due_at"] = due_at
            return out
        return self._assign(task_id, actor, "updated", fn)

    def _user_exists(self, conn, username: str) -> None:
        from engine.security.users import users
        if conn.execute(sa.select(users.c.id).where(users.c.username == username)).first() is None:
            raise InvalidInput(problems=[Problem(f"no user `{username}`", field="to", code="unknown_user")])

    # -- admin: retry, cancel -------------------------------------------------------------------------

    def retry(self, instance_id: int, actor: Actor) -> dict:
        """Run the failed tasks of an instance again (effects already done are not repeated)."""
        with self.loom.records.unit() as u:
            inst = self._lock(u.conn, instance_id)
            if inst is None:
                raise NotFound(f"no process instance {instance_id}")
            if not self.is_manager(actor, inst["app"]):
                raise Forbidden("only an administrator or manager may retry a failed process")
            if inst["status"] != "error":
                raise Conflict(f"process instance {instance_id} is {inst['status']}, not failed; nothing to retry")
            d = self.definitions.get(u.conn, inst["definition_id"])
            step = _Step(self, u, inst["id"], d.app, actor)
            wf = self._restore(inst, d, step)
            step.events.append(("retried", None, None, None))
            for task in wf.get_tasks(state=TaskState.ERROR):
                try:
                    task.run()
                except (WorkflowTaskException, SpiffWorkflowException) as exc:
                    original = getattr(exc, "exception", None)
                    step.error = {"bpmn_id": task.task_spec.bpmn_id, "task_id": str(task.id),
                                  "message": getattr(original, "message", None) or str(exc).splitlines()[0],
                                  "at": self.clock().isoformat()}
                    step.events.append(("error", task.task_spec.bpmn_id, str(task.id), {"message": step.error["message"]}))
            if step.error is None:
                self._run(wf, step)
            saved = self._save(u.conn, dict(inst), d, wf, step)
        return self._summary(saved)

    def cancel(self, instance_id: int, actor: Actor) -> dict:
        with self.loom.records.unit() as u:
            inst = self._lock(u.conn, instance_id)
            if inst is None:
                raise NotFound(f"no process instance {instance_id}")
            if not self.is_manager(actor, inst["app"]):
                raise Forbidden("only an administrator or manager may cancel a process")
            now = self.clock()
            t = process_instances
            u.conn.execute(t.update().where(t.c.id == instance_id).values(
                status="cancelled", next_timer_at=None, lock_version=inst["lock_version"] + 1, updated_at=now))
            u.conn.execute(human_tasks.update().where(human_tasks.c.instance_id == instance_id,
                                                      human_tasks.c.status == "ready").values(status="cancelled", completed_at=now))
            u.conn.execute(process_events.insert().values(instance_id=instance_id, at=now, actor=actor.username,
                                                          action="cancelled"))
        return self.instance(instance_id)

    # -- timers -------------------------------------------------------------------------------------

    def tick(self, now: datetime | None = None, limit: int = 500) -> dict:
        """Fire due timers and timer-start schedules. Cost follows the due rows only."""
        now = now or self.clock()
        t = process_instances
        fired = failed = 0
        with self.loom.db.connect() as conn:
            ids = [r.id for r in conn.execute(sa.select(t.c.id).where(t.c.next_timer_at <= now)
                                              .order_by(t.c.next_timer_at).limit(limit))]
        for iid in ids:
            try:
                if self._fire(iid, now):
                    fired += 1
            except Exception:  # noqa: BLE001  (one broken instance must not stop the others)
                log.exception("timer of process instance %s failed", iid)
                failed += 1
        started = self._run_schedules(now)
        return {"due": len(ids), "fired": fired, "failed": failed, "started": started}

    def _fire(self, instance_id: int, now: datetime) -> bool:
        with self.loom.records.unit() as u:
            inst = self._lock(u.conn, instance_id, skip_locked=True, due_before=now)
            if inst is None or inst["status"] not in OPEN:
                return False
            d = self.definitions.get(u.conn, inst["definition_id"])
            step = _Step(self, u, inst["id"], d.app, Actor.system("scheduler"))
            wf = self._restore(inst, d, step)
            before = {str(x.id) for x in wf.get_tasks(state=TaskState.WAITING)}
            self._run(wf, step, timers=True)
            after = {str(x.id) for x in wf.get_tasks(state=TaskState.WAITING)}
            if before - after:
                step.events.append(("timer", None, None, {"fired": len(before - after)}))
            self._save(u.conn, dict(inst), d, wf, step)
            return bool(before - after)

    def _run_schedules(self, now: datetime) -> int:
        s = process_schedules
        with self.loom.db.connect() as conn:
            keys = [r.process_key for r in conn.execute(sa.select(s.c.process_key).where(s.c.next_run_at <= now))]
        started = 0
        for key in keys:
            with self.loom.records.unit() as u:
                q = sa.select(s).where(s.c.process_key == key, s.c.next_run_at <= now)
                if u.conn.dialect.name == "postgresql":
                    q = q.with_for_update(skip_locked=True)
                row = u.conn.execute(q).mappings().first()
                if row is None:
                    continue
                self.start(key, Actor.system("scheduler"), {}, uow=u, timer_start=True)
                nxt = next_start_time({"kind": row["kind"], "expression": row["expression"]}, _aware(row["next_run_at"]), now)
                u.conn.execute(s.update().where(s.c.process_key == key).values(next_run_at=nxt, last_run_at=now))
                started += 1
        return started

    # -- messages -------------------------------------------------------------------------------------

    def message(self, name: str, correlation_key: str, payload: dict | None, actor: Actor) -> list[int]:
        """Deliver a message to every open instance correlated by ``correlation_key``."""
        # the spiff class: event definitions compare by class, and the parser builds spiff ones
        from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition
        from SpiffWorkflow.bpmn.util.event import BpmnEvent
        payload = _plain_data(payload or {}, "payload")
        t = process_instances
        with self.loom.db.connect() as conn:
            ids = [r.id for r in conn.execute(sa.select(t.c.id).where(t.c.correlation_key == str(correlation_key),
                                                                     t.c.status.in_(OPEN)))]
        delivered = []
        for iid in ids:
            with self.loom.records.unit() as u:
                inst = self._lock(u.conn, iid)
                d = self.definitions.get(u.conn, inst["definition_id"])
                step = _Step(self, u, iid, d.app, actor)
                wf = self._restore(inst, d, step)
                waiting = [e for e in wf.waiting_events() if e.name == name]
                if not waiting:
                    continue
                wf.catch(BpmnEvent(MessageEventDefinition(name), payload))
                step.events.append(("message", None, None, {"name": name}))
                self._run(wf, step)
                self._save(u.conn, dict(inst), d, wf, step)
                delivered.append(iid)
        return delivered

    # -- triggers ---------------------------------------------------------------------------------------

    def triggers(self) -> list[tuple[str, dict]]:
        at, cached = self._triggers
        if time.monotonic() - at < 1.0:
            return cached
        t = process_definitions
        out: dict[str, tuple[int, dict]] = {}
        with self.loom.db.connect() as conn:
            for r in conn.execute(sa.select(t.c.key, t.c.version, t.c.meta).where(t.c.active.is_(True))):
                trig = (r.meta or {}).get("start", {}).get("trigger")
                if trig and (r.key not in out or out[r.key][0] < r.version):
                    out[r.key] = (r.version, trig)
                elif r.key in out and out[r.key][0] < r.version:
                    del out[r.key]
        cached = [(k, v[1]) for k, v in out.items()]
        self._triggers = (time.monotonic(), cached)
        return cached

    def on_record_event(self, event) -> None:
        p = event.payload
        kind = event.name.split(".")[-1]
        full = p.get("full_key") or f"{p.get('app')}.{p.get('entity')}"
        for key, trig in self.triggers():
            app = key.split(".", 1)[0]
            ent = trig["entity"] if "." in trig["entity"] else f"{app}.{trig['entity']}"
            if ent != full or trig.get("on", "created") not in {kind, "saved"}:
                continue
            variables = {"record": p.get("record") or {}, "before": p.get("before"), "changed": p.get("changed") or []}
            if trig.get("condition") and not self._eval(trig["condition"], variables, "trigger condition"):
                continue
            var = trig.get("variable") or f"{full.split('.', 1)[1]}_id"
            actor = p.get("actor")
            self.start(key, actor if isinstance(actor, Actor) else Actor.system("trigger"), {var: p["id"]},
                       subject=(full, p["id"]))

    # -- reading ------------------------------------------------------------------------------------------

    def _summary(self, row: dict, conn=None) -> dict:
        if conn is None and row.get("_ready") is None:
            with self.loom.db.connect() as c:
                return self._summary(row, c)
        if row.get("_ready") is not None:
            tasks = [self.task_json(r) for r in row["_ready"]]
        else:
            tasks = [self.task_json(r) for r in conn.execute(
                sa.select(human_tasks).where(human_tasks.c.instance_id == row["id"], human_tasks.c.status == "ready")
                .order_by(human_tasks.c.created_at)).mappings()]
        return {"id": row["id"], "process": row["process_key"], "version": row["version"], "status": row["status"],
                "lock_version": row["lock_version"], "next_timer_at": _iso(row.get("next_timer_at")),
                "error": row.get("error"), "correlation_key": row.get("correlation_key"), "tasks": tasks}

    @staticmethod
    def task_json(r) -> dict:
        return {"id": r["id"], "instance_id": r["instance_id"], "process": r["process_key"], "bpmn_id": r["bpmn_id"],
                "name": r["name"], "lane": r["lane"], "role": r["role"], "candidates": r["candidates"],
                "form": r["form_key"], "assignee": r["assignee"], "status": r["status"], "due_at": _iso(r["due_at"]),
                "priority": r["priority"], "created_at": _iso(r["created_at"]), "completed_at": _iso(r["completed_at"]),
                "completed_by": r["completed_by"]}

    def instance(self, instance_id: int, *, detail: bool = False) -> dict:
        with self.loom.db.connect() as conn:
            row = conn.execute(sa.select(process_instances).where(process_instances.c.id == instance_id)).mappings().first()
            if row is None:
                raise NotFound(f"no process instance {instance_id}")
            out = self._summary(dict(row), conn)
            if not detail:
                return out
            d = self.definitions.get(conn, row["definition_id"])
            step = _Step(self, None, row["id"], d.app, Actor.system("reader"))
            wf = self._restore(row, d, step)
            completed, current = set(), set()
            for task in wf.get_tasks():
                bid = task.task_spec.bpmn_id
                if not bid:
                    continue
                if task.has_state(TaskState.COMPLETED):
                    completed.add(bid)
                elif task.has_state(TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.ERROR):
                    current.add(bid)
            events = [{"at": _iso(e["at"]), "actor": e["actor"], "action": e["action"], "bpmn_id": e["bpmn_id"],
                       "task_id": e["task_id"], "detail": e["detail"]}
                      for e in conn.execute(sa.select(process_events).where(process_events.c.instance_id == instance_id)
                                            .order_by(process_events.c.id)).mappings()]
            data = dict(wf.last_task.data) if wf.last_task is not None else {}
            data.update(wf.data)        # while running, the process data lives in the last task
            out.update(completed=sorted(completed), current=sorted(current), events=events, data=_jsonable(data),
                       started_by=row["started_by"], created_at=_iso(row["created_at"]),
                       completed_at=_iso(row["completed_at"]), definition_id=d.id, process_name=d.name,
                       subject_entity=row["subject_entity"], subject_id=row["subject_id"])
            history = [self.task_json(r) for r in conn.execute(
                sa.select(human_tasks).where(human_tasks.c.instance_id == instance_id).order_by(human_tasks.c.created_at))
                .mappings()]
            out["history"] = history
            return out

    def task_data(self, task_id: str) -> dict:
        """The data a task sees (record ids, variables): what its form is prefilled from."""
        with self.loom.db.connect() as conn:
            trow = self.task_row(conn, task_id)
            row = conn.execute(sa.select(process_instances).where(process_instances.c.id == trow["instance_id"])
                               ).mappings().one()
            d = self.definitions.get(conn, row["definition_id"])
        wf = self._restore(row, d, _Step(self, None, row["id"], d.app, Actor.system("reader")))
        task = wf.get_task_from_id(UUID(str(task_id)))
        return _jsonable(dict(task.data)) if task is not None else {}

    def record_variables(self, definition_id: int) -> dict[str, str]:
        """Process variables that hold record ids, and the entity of each (from the task forms)."""
        with self.loom.db.connect() as conn:
            d = self.definitions.get(conn, definition_id)
        out = {}
        for meta in d.meta.get("tasks", {}).values():
            key = meta.get("form")
            if not key:
                continue
            form = self.loom.model.forms.get(key if "." in key else f"{d.app}.{key}")
            if form is not None:
                out[meta.get("record") or f"{form.entity}_id"] = f"{form.app}.{form.entity}"
        return out

    def definition_xml(self, instance_id: int) -> str:
        with self.loom.db.connect() as conn:
            row = conn.execute(sa.select(process_instances.c.definition_id).where(process_instances.c.id == instance_id)).first()
            if row is None:
                raise NotFound(f"no process instance {instance_id}")
            return self.definitions.get(conn, row.definition_id).xml

    def inbox(self, actor: Actor, view: str = "mine", limit: int = 200) -> list[dict]:
        """``mine`` (assigned to me), ``group`` (unclaimed, for my roles), ``overdue``, ``all`` (managers)."""
        t = human_tasks
        q = sa.select(t).where(t.c.status == "ready")
        now = self.clock()
        if view == "mine":
            q = q.where(t.c.assignee == actor.username)
        elif view == "group":
            q = q.where(t.c.assignee.is_(None))
        elif view == "overdue":
            q = q.where(t.c.due_at < now)
        elif view != "all":
            raise InvalidInput(problems=[Problem(f"`{view}` is not a view: mine, group, overdue or all", field="view",
                                                 code="parameter")])
        q = q.order_by(t.c.priority.desc(), t.c.due_at.is_(None), t.c.due_at, t.c.created_at).limit(limit * 5)
        with self.loom.db.connect() as conn:
            rows = conn.execute(q).mappings().all()
        out = []
        for r in rows:
            if view == "mine" or self.can_work(actor, r) or (view in {"all", "overdue"} and self.is_manager(actor, r["app"])):
                j = self.task_json(r)
                j["overdue"] = bool(r["due_at"] and _aware(r["due_at"]) < now)
                out.append(j)
            if len(out) >= limit:
                break
        return out

    def instances(self, *, status: str | None = None, process: str | None = None, limit: int = 100) -> list[dict]:
        t = process_instances
        q = sa.select(t.c.id, t.c.process_key, t.c.version, t.c.status, t.c.lock_version, t.c.next_timer_at,
                      t.c.error, t.c.correlation_key, t.c.created_at).order_by(t.c.id.desc()).limit(limit)
        if status:
            q = q.where(t.c.status == status)
        if process:
            q = q.where(t.c.process_key == process)
        with self.loom.db.connect() as conn:
            return [{"id": r.id, "process": r.process_key, "version": r.version, "status": r.status,
                     "lock_version": r.lock_version, "next_timer_at": _iso(r.next_timer_at), "error": r.error,
                     "correlation_key": r.correlation_key, "created_at": _iso(r.created_at)} for r in conn.execute(q)]

    def processes(self) -> list[dict]:
        t = process_definitions
        with self.loom.db.connect() as conn:
            rows = conn.execute(sa.select(t.c.id, t.c.key, t.c.version, t.c.name, t.c.app, t.c.file, t.c.meta)
                                .where(t.c.active.is_(True)).order_by(t.c.key, t.c.version)).all()
        latest = {}
        for r in rows:
            latest[r.key] = {"key": r.key, "version": r.version, "name": r.name, "app": r.app, "file": r.file,
                             "definition_id": r.id, "start": (r.meta or {}).get("start", {})}
        return list(latest.values())

    @staticmethod
    def started_by_hand(process: dict) -> bool:
        """A process whose start event waits for nothing: no timer, record trigger or message."""
        start = process.get("start") or {}
        return not (start.get("timer") or start.get("trigger") or start.get("message"))

    def may_start(self, actor: Actor, process: dict) -> bool:
        """May ``actor`` start ``process`` by hand? Administrators and the system always may; a
        person needs the role of the lane the start event sits in, or, when it is in no lane, any
        role of the process's app. Automatic processes (timers, triggers, messages) start by
        themselves, so only administrators may start them by hand."""
        if actor.is_admin or actor.is_system:
            return True
        if not self.started_by_hand(process):
            return False
        role = (process.get("start") or {}).get("role")
        if role:
            return self._has_role(actor, role)
        prefix = f"{process.get('app')}."
        return any(r.startswith(prefix) for r in actor.roles)

    def start_form(self, process: dict):
        """The form a person fills in to start ``process`` (the start event's ``formKey``), or None."""
        key = (process.get("start") or {}).get("form")
        return self.loom.model.forms.get(key) if key else None

    def start_with_form(self, process_key: str, actor: Actor, data: dict) -> dict:
        """Start a process from its start form: ``data`` is validated with the form entity's rules
        (types, ranges, options; the form's required fields), but no record is written -- the
        values become the process data, a link field ``customer`` as ``customer_id``, the way a
        record trigger names its record."""
        process = next((p for p in self.processes() if p["key"] == process_key), None)
        form = self.start_form(process) if process else None
        if form is None:
            raise NotFound(f"process `{process_key}` has no start form")
        ent = self.loom.model.entities[f"{form.app}.{form.entity}"]
        on_form = [f for s in form.spec.get("sections") or [] for f in (s.get("fields") or [])]
        on_form = [f if isinstance(f, str) else f.get("field") for f in on_form]
        extra = sorted(k for k in data if k not in on_form)
        if extra:
            raise InvalidInput(problems=[Problem(f"field `{k}` is not on form `{form.key}`", field=k,
                                                 code="unknown_field") for k in extra])
        from engine.forms import messages as form_messages
        try:
            typed, problems = ent.validator.load(data, partial=True, locale=actor.locale), []
        except InvalidInput as exc:         # report the missing fields too: every problem at once
            typed, problems = {k: v for k, v in data.items() if k not in {p.field for p in exc.problems}}, exc.problems
        reported = {p.field for p in problems}
        problems = list(problems) + [
            Problem(form_messages.render("required", actor.locale), field=k, code="required")
            for k in on_form if k in ent.fields and ent.fields[k].required and k not in reported
            and typed.get(k) in (None, "", [])]
        if problems:
            raise InvalidInput(problems=problems)
        from engine.records.serialize import record_to_json
        values = record_to_json(ent, {k: v for k, v in typed.items() if k in on_form})
        variables = {}
        for k, v in values.items():
            if k not in on_form:
                continue
            f = ent.fields.get(k)
            if f is not None and f.type == "link":
                rid = v.get("id") if isinstance(v, dict) else v
                if rid is not None:
                    try:        # the person must be able to read what they start a process about
                        self.loom.records.get(f.target, int(rid), actor)
                    except (NotFound, Forbidden):
                        raise InvalidInput(problems=[Problem(f"no readable record #{rid} for `{k}`", field=k,
                                                             code="link")]) from None
                variables[f"{k}_id"] = rid
            else:
                variables[k] = v
        return self.start(process_key, actor, variables)

    def startable(self, actor: Actor) -> list[dict]:
        """The processes ``actor`` may start from the screens (automatic ones are left out)."""
        return [p for p in self.processes() if self.started_by_hand(p) and self.may_start(actor, p)]


def _iso(v):
    if v is None:
        return None
    return _aware(v).isoformat() if isinstance(v, datetime) else v


def _record_id(value) -> int | None:
    """A record id held in process data: an int, digits, or ``{"id": n}`` (what record.create leaves)."""
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) < 19:
        return int(value)
    return None


def _jsonable(data):
    from engine.db import dumps
    return json.loads(dumps(data)) if data else {}


def _plain_data(data, field: str) -> dict:
    if not isinstance(data, dict):
        raise InvalidInput(problems=[Problem(f"`{field}` must be an object", field=field, code="parameter")])
    try:
        json.dumps(data)
    except (TypeError, ValueError):
        raise InvalidInput(problems=[Problem(f"`{field}` must hold plain JSON values (record ids, not records)",
                                             field=field, code="parameter")]) from None
    return data
