"""BPMN definitions: parse, check at deploy, store versioned, load specs for instances.

At install, :func:`check_bundle` (a ``loom.install_checks`` entry) parses every ``workflows/*.bpmn``
with ``SpiffBpmnParser`` and the BPMN XSD, compiles every script, condition, timer expression,
service parameter and task property through the sandbox, and checks every referenced form, lane
role and service action. Each problem names the BPMN element id and its line in the file, read
from lxml's line numbers. :func:`deploy` (a ``loom.install_hooks`` entry) then writes one new
immutable version per changed process in the install transaction. Instances keep the definition
id they started with, so running instances finish on their version while new ones take the newest.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata

import sqlalchemy as sa
from lxml import etree

from engine.errors import Problem
from engine.workflow.tables import process_definitions, process_schedules

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NS = {"bpmn": BPMN, "spiffworkflow": SPIFF}
_ISO_BARE = re.compile(r"^(R\d*/)?(P[0-9YMWDTHS.,]+|\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d\d:?\d\d)?)(/P[0-9YMWDTHS.,]+)?$")
#: task properties evaluated as expressions against the task data
EXPRESSION_PROPERTIES = ("candidates", "due", "priority", "trigger.condition", "correlation")

try:
    SPIFF_VERSION = metadata.version("SpiffWorkflow")
except metadata.PackageNotFoundError:  # pragma: no cover
    SPIFF_VERSION = None


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _local(el) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def properties(el) -> dict[str, str]:
    """``spiffworkflow:properties/property`` of an element as a dict."""
    out = {}
    for p in el.findall("bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property", NS):
        out[p.get("name", "")] = p.get("value", "")
    return out


def role_key(app: str, lane: str | None) -> str | None:
    if not lane:
        return None
    lane = lane.strip()
    return lane if "." in lane else f"{app}.{lane}"


# -- parsing ----------------------------------------------------------------------------------------

def parse_specs(xml: str, file: str = "workflow.bpmn"):
    """``{process_id: (spec, subprocess_specs)}`` with XSD validation (raises ValidationException)."""
    from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser, VALIDATOR
    parser = SpiffBpmnParser(validator=VALIDATOR)
    parser.add_bpmn_str(xml.encode("utf-8"), filename=file)
    out = {}
    for pid in parser.get_process_ids():
        if parser.get_process_parser(pid).node.get("isExecutable", "true") == "false":
            continue
        out[pid] = (parser.get_spec(pid), parser.get_subprocess_specs(pid))
    return out


def analyse(app: str, xml: str) -> dict[str, dict]:
    """What the engine needs to know of each process without the spec: tasks, lanes, triggers."""
    root = etree.fromstring(xml.encode("utf-8"))
    out = {}
    for proc in root.iter(f"{{{BPMN}}}process"):
        if proc.get("isExecutable", "true") == "false":
            continue
        pid = proc.get("id")
        lane_of = {}
        for lane in proc.iter(f"{{{BPMN}}}lane"):
            for ref in lane.findall("bpmn:flowNodeRef", NS):
                lane_of[(ref.text or "").strip()] = lane.get("name") or lane.get("id")
        tasks, lines, start = {}, {}, {}
        for el in proc.iter():
            eid = el.get("id") if isinstance(el.tag, str) else None
            if eid:
                lines[eid] = el.sourceline
            kind = _local(el)
            if kind == "userTask" or kind == "manualTask":
                props = properties(el)
                tasks[eid] = {"name": el.get("name") or eid, "type": kind, "lane": lane_of.get(eid),
                              "role": role_key(app, lane_of.get(eid)), "form": props.get("formKey") or props.get("form"),
                              "record": props.get("record"), "candidates": props.get("candidates"),
                              "due": props.get("due"), "priority": props.get("priority")}
            elif kind == "startEvent" and el.getparent() is proc:
                props = properties(el)
                timer = el.find("bpmn:timerEventDefinition", NS)
                if timer is not None:
                    for sub, k in (("timeCycle", "cycle"), ("timeDate", "date"), ("timeDuration", "duration")):
                        t = timer.find(f"bpmn:{sub}", NS)
                        if t is not None:
                            start["timer"] = {"kind": k, "expression": (t.text or "").strip()}
                if props.get("cron"):
                    start["timer"] = {"kind": "cron", "expression": props["cron"]}
                if props.get("trigger.entity"):
                    start["trigger"] = {"entity": props["trigger.entity"], "on": props.get("trigger.on", "created"),
                                        "condition": props.get("trigger.condition"),
                                        "variable": props.get("trigger.variable")}
                if props.get("correlation"):
                    start["correlation"] = props["correlation"]
                if el.find("bpmn:messageEventDefinition", NS) is not None:
                    start["message"] = True
                # a person may start the process by hand when the start event is a plain one; the
                # lane it sits in names the role that may (no lane: anyone with a role in the app)
                start["role"] = role_key(app, lane_of.get(eid))
                form = props.get("formKey") or props.get("form")
                if form:        # a start form: what a person fills in to start it from the screens
                    start["form"] = form if "." in form else f"{app}.{form}"
        out[pid] = {"name": proc.get("name") or pid, "tasks": tasks, "lines": lines, "start": start}
    return out


# -- checks ---------------------------------------------------------------------------------------

@dataclass
class _Checker:
    app: str
    file: str
    roles: set[str]
    forms: set[str]
    entities: set[str]
    problems: list[Problem] = field(default_factory=list)

    def add(self, el, message: str, code: str = "bpmn", line: int | None = None) -> None:
        eid = el.get("id") if el is not None else None
        where = f"`{eid}`: " if eid else ""
        self.problems.append(Problem(where + message, file=self.file, line=line or (el.sourceline if el is not None else None),
                                     path=eid, code=code))

    def compile(self, owner, source: str, mode: str, what: str, line: int | None = None) -> None:
        from engine.sandbox import SandboxCompileError
        from engine.workflow.scripting import compiled
        if not source or not source.strip():
            self.add(owner, f"{what} is empty", code="expression", line=line)
            return
        try:
            compiled(source.strip() if mode == "eval" else source, mode, f"{self.file}#{owner.get('id')}")
        except SandboxCompileError as exc:
            base = line or owner.sourceline
            if exc.problems:
                for p in exc.problems:
                    self.add(owner, f"{what}: {p.message}", code="expression",
                             line=base + ((p.line or 1) - 1 if mode == "exec" else 0))
            else:
                self.add(owner, f"{what}: {exc.message}", code="expression", line=base)


def check_xml(app: str, xml: str, file: str, roles: set[str], forms: set[str], entities: set[str]) -> list[Problem]:
    from engine.workflow.actions import ACTIONS
    from engine.workflow.scripting import BUDGET_PROPERTY, budget_problem
    c = _Checker(app, file, roles, forms, entities)
    try:
        root = etree.fromstring(xml.encode("utf-8"))
    except etree.XMLSyntaxError as exc:
        return [Problem(f"BPMN is not well-formed XML: {exc.msg}", file=file, line=exc.lineno, code="xml")]
    try:
        specs = parse_specs(xml, file)
    except Exception as exc:   # ValidationException and friends: XSD, unsupported elements
        line = getattr(exc, "line_number", None) or None
        eid = getattr(exc, "id", None)
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return [Problem((f"`{eid}`: " if eid else "") + f"invalid BPMN: {msg}", file=file,
                        line=int(line) if str(line or "").isdigit() else None, path=eid or None, code="bpmn")]
    if not specs:
        c.add(None, "the file has no executable process")
    for el in root.iter():
        kind = _local(el)
        if kind == "script" and _local(el.getparent()) == "scriptTask":
            c.compile(el.getparent(), el.text or "", "exec", "script", line=el.sourceline)
            raw = properties(el.getparent()).get(BUDGET_PROPERTY)
            if raw is not None and budget_problem(raw):
                c.add(el.getparent(), budget_problem(raw), code="budget")
        elif kind in {"preScript", "postScript"}:
            c.compile(el.getparent().getparent(), el.text or "", "exec", kind, line=el.sourceline)
        elif kind == "conditionExpression":
            c.compile(el.getparent(), el.text or "", "eval", "condition", line=el.sourceline)
        elif kind in {"timeDuration", "timeDate", "timeCycle"}:
            owner = el.getparent().getparent()
            text = (el.text or "").strip()
            if _ISO_BARE.match(text):
                c.add(owner, f"timer `{text}` must be quoted: write \"{text}\" (SpiffWorkflow evaluates timer "
                             f"expressions as Python, so an unquoted duration fails when the timer starts)",
                      code="timer", line=el.sourceline)
            else:
                c.compile(owner, text, "eval", "timer expression", line=el.sourceline)
        elif kind == "serviceTaskOperator":
            owner = el.getparent().getparent()
            op = el.get("id")
            if op not in ACTIONS:
                c.add(owner, f"service action `{op}` does not exist; available: {', '.join(sorted(ACTIONS))}",
                      code="action", line=el.sourceline)
            for p in el.iter(f"{{{SPIFF}}}parameter"):
                c.compile(owner, p.get("value", ""), "eval", f"parameter `{p.get('id')}`", line=p.sourceline)
        elif kind == "serviceTask" and el.find("bpmn:extensionElements/spiffworkflow:serviceTaskOperator", NS) is None:
            c.add(el, "service task names no action (add spiffworkflow:serviceTaskOperator)", code="action")
        elif kind == "lane":
            role = role_key(app, el.get("name"))
            if role not in roles:
                c.add(el, f"lane `{el.get('name')}` names no role; roles: {', '.join(sorted(roles)) or '(none)'}",
                      code="role")
        elif kind in {"userTask", "manualTask"}:
            props = properties(el)
            form = props.get("formKey") or props.get("form")
            if kind == "userTask":
                if not form:
                    c.add(el, "user task names no form: add the property `formKey` with a form key of the bundle",
                          code="form")
                elif (form if "." in form else f"{app}.{form}") not in forms:
                    c.add(el, f"form `{form}` does not exist", code="form")
            for name in ("candidates", "due", "priority"):
                if props.get(name):
                    c.compile(el, props[name], "eval", f"property `{name}`")
        elif kind == "startEvent":
            props = properties(el)
            if props.get("trigger.entity"):
                ent = props["trigger.entity"]
                if (ent if "." in ent else f"{app}.{ent}") not in entities:
                    c.add(el, f"trigger entity `{ent}` does not exist", code="trigger")
                if props.get("trigger.on", "created") not in {"created", "updated", "saved"}:
                    c.add(el, "`trigger.on` must be created, updated or saved", code="trigger")
                if props.get("trigger.condition"):
                    c.compile(el, props["trigger.condition"], "eval", "trigger condition")
            if props.get("correlation"):
                c.compile(el, props["correlation"], "eval", "property `correlation`")
            form = props.get("formKey") or props.get("form")
            if form and (form if "." in form else f"{app}.{form}") not in forms:
                c.add(el, f"start form `{form}` does not exist", code="form")
            if props.get("cron"):
                try:
                    from croniter import croniter
                    croniter(props["cron"])
                except Exception as exc:  # noqa: BLE001  (croniter raises several kinds)
                    c.add(el, f"cron `{props['cron']}` is invalid: {exc}", code="timer")
    return c.problems


def check_bundle(bundle, model) -> list[Problem]:
    """``loom.install_checks`` entry: every workflow of the bundle, every problem at once."""
    workflows = bundle.of_kind("workflow")
    if not workflows:
        return []
    app = bundle.key
    roles = {f"{app}.{d.key}" for d in bundle.of_kind("role")}
    if model is not None:
        forms = set(model.forms) | {f"{app}.{d.key}" for d in bundle.of_kind("form")}
        entities = set(model.entities)
    else:
        forms = {f"{app}.{d.key}" for d in bundle.of_kind("form")}
        entities = {f"{app}.{d.key}" for d in bundle.of_kind("entity")}
    problems: list[Problem] = []
    for d in workflows:
        problems.extend(check_xml(app, d.body["xml"], d.file or f"workflows/{d.key}.bpmn", roles, forms, entities))
    return problems


# -- deploying ------------------------------------------------------------------------------------

_SER_LOCK = threading.Lock()


def serializer():
    from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
    from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
    global _SERIALIZER
    if _SERIALIZER is None:
        _SERIALIZER = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG))
    return _SERIALIZER


_SERIALIZER = None


def spec_json(spec, subs) -> str:
    from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
    s = serializer()
    wf = BpmnWorkflow(spec, subs)
    with _SER_LOCK:
        s.registry._encoder_mode = True
        try:
            d = s.to_dict(wf)
            text = json.dumps({"spec": d["spec"], "subprocess_specs": d["subprocess_specs"]}, cls=s._encoder_cls)
        finally:
            s.registry._encoder_mode = False
    return text


def deploy_xml(conn: sa.Connection, app: str, xml: str, file: str | None = None) -> list[dict]:
    """Store a new version of every process in ``xml`` whose XML changed; returns what was written."""
    sha = hashlib.sha256(xml.encode("utf-8")).hexdigest()
    specs = parse_specs(xml, file or "workflow.bpmn")
    info = analyse(app, xml)
    out = []
    for pid, (spec, subs) in specs.items():
        key = f"{app}.{pid}"
        t = process_definitions
        latest = conn.execute(sa.select(t.c.version, t.c.xml_sha256).where(t.c.key == key)
                              .order_by(t.c.version.desc()).limit(1)).first()
        if latest is not None and latest.xml_sha256 == sha:
            continue
        version = (latest.version if latest else 0) + 1
        meta = info.get(pid, {})
        new_id = conn.execute(t.insert().values(
            app=app, key=key, process_id=pid, version=version, name=meta.get("name"), file=file, xml=xml,
            xml_sha256=sha, spec=spec_json(spec, subs), meta=meta, spiff_version=SPIFF_VERSION, active=True,
            created_at=_now())).inserted_primary_key[0]
        _sync_schedule(conn, key, meta.get("start", {}).get("timer"))
        out.append({"id": new_id, "key": key, "version": version})
    return out


def _sync_schedule(conn, key: str, timer: dict | None) -> None:
    conn.execute(process_schedules.delete().where(process_schedules.c.process_key == key))
    if timer:
        from engine.workflow.timers import next_start_time
        conn.execute(process_schedules.insert().values(
            process_key=key, expression=timer["expression"], kind=timer["kind"],
            next_run_at=next_start_time(timer, None)))


def deploy_hook(conn: sa.Connection, plan, actor) -> None:
    """``loom.install_hooks`` entry: deploy changed workflows inside the install transaction."""
    changed = {d.key for d in plan.definitions if d.kind == "workflow" and d.change in {"added", "changed"}}
    for d in plan.bundle.of_kind("workflow"):
        if d.key in changed or not _deployed(conn, plan.bundle.key, d.body["xml"]):
            deploy_xml(conn, plan.bundle.key, d.body["xml"], d.file)
    removed = {d.key for d in plan.definitions if d.kind == "workflow" and d.change == "removed"}
    if removed:
        t = process_definitions
        for key in removed:
            conn.execute(t.update().where(t.c.app == plan.bundle.key, t.c.file.like(f"%/{key}.bpmn")).values(active=False))


def _deployed(conn, app: str, xml: str) -> bool:
    sha = hashlib.sha256(xml.encode("utf-8")).hexdigest()
    t = process_definitions
    return conn.execute(sa.select(t.c.id).where(t.c.app == app, t.c.xml_sha256 == sha).limit(1)).first() is not None


# -- loading ----------------------------------------------------------------------------------------

@dataclass
class Definition:
    id: int
    app: str
    key: str
    process_id: str
    version: int
    name: str | None
    meta: dict
    spec: dict            # {"spec": ..., "subprocess_specs": ...} as JSON-decoded dicts
    xml: str
    _objects: tuple | None = field(default=None, repr=False, compare=False)

    def objects(self) -> tuple:
        """The restored spec objects ``(spec, subprocess_specs)``, built once per version.

        Restoring the spec from its JSON for every step was the main cost of a persisted step;
        a deployed version is immutable and SpiffWorkflow specs hold no per-instance state (every
        workflow of a parser shares them), so all instances of this version share one restore.
        """
        objs = self._objects
        if objs is None:
            with _SER_LOCK:
                objs = self._objects
                if objs is None:
                    s = serializer()
                    fresh = json.loads(json.dumps(self.spec), cls=s.json_decoder_cls)
                    spec = s.registry.restore(fresh["spec"])
                    subs = {k: s.registry.restore(v) for k, v in (fresh.get("subprocess_specs") or {}).items()}
                    objs = self._objects = (spec, subs)
        return objs


class DefinitionCache:
    """Definitions by id (immutable, so cached forever) and the newest version per key."""

    def __init__(self):
        self._by_id: dict[int, Definition] = {}
        self._lock = threading.Lock()

    def get(self, conn, definition_id: int) -> Definition:
        d = self._by_id.get(definition_id)
        if d is None:
            row = conn.execute(sa.select(process_definitions).where(process_definitions.c.id == definition_id)).mappings().one()
            d = self._build(row)
        return d

    def _build(self, row) -> Definition:
        s = serializer()
        spec = json.loads(row["spec"], cls=s.json_decoder_cls)
        d = Definition(row["id"], row["app"], row["key"], row["process_id"], row["version"], row["name"],
                       row["meta"] or {}, spec, row["xml"])
        d.objects()
        with self._lock:
            self._by_id[d.id] = d
        return d

    def latest(self, conn, key: str) -> Definition | None:
        row = conn.execute(_LATEST_BY_KEY if "." in key else _LATEST_BY_PID, {"k": key}).first()
        return self.get(conn, row.id) if row else None


# built once (a statement per call cost more than the query itself on SQLite)
_LATEST_BY_KEY = (sa.select(process_definitions.c.id)
                  .where(process_definitions.c.key == sa.bindparam("k"), process_definitions.c.active.is_(True))
                  .order_by(process_definitions.c.version.desc()).limit(1))
_LATEST_BY_PID = (sa.select(process_definitions.c.id)
                  .where(process_definitions.c.process_id == sa.bindparam("k"), process_definitions.c.active.is_(True))
                  .order_by(process_definitions.c.version.desc()).limit(1))
