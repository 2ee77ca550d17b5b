"""The designer's lifecycle, without HTTP: load, draft, validate, diff, plan, publish, roll back.

Every definition the designer edits is a plain bundle definition (entity, form, workflow, report,
dashboard bodies exactly as in bundle files), so ``loom app export`` after a designer session gives
readable YAML/BPMN. The form designer edits an entity and its form together: both drafts are saved
in one transaction (each with its own lock version, so a stale save of either is refused), both are
validated together as one bundle, and publishing goes entity first (with its migration plan) and
then the form -- each through ``loom.publish``, which validates like a bundle install and audits.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import sqlalchemy as sa

from engine.errors import Forbidden, InvalidInput, NotFound, Problem
from engine.meta import store
from engine.meta.merge import diff as body_diff

EDITABLE_KINDS = ("entity", "form", "workflow", "report", "dashboard")


# -- access ----------------------------------------------------------------------------------------

def can_design(loom, actor, app: str | None = None, entity: str | None = None) -> bool:
    """Admins, and users granted the ``design`` action on the entity (or on any entity of the app)."""
    if actor is None:
        return False
    if actor.is_admin or actor.is_system:
        return True
    model = loom.model
    if entity is not None:
        ent = model.entities.get(f"{app}.{entity}")
        return ent is not None and loom.policy.can(actor, ent, "design")
    return any(loom.policy.can(actor, e, "design") for k, e in model.entities.items()
               if e.parent is None and (app is None or e.app == app))


def require_design(loom, actor, app: str | None = None, entity: str | None = None) -> None:
    if not can_design(loom, actor, app, entity):
        what = f"{app}.{entity}" if entity else (app or "this app")
        raise Forbidden(f"you may not use the designer on {what}: it needs the `design` permission",
                        problems=[Problem("the `design` permission is required", field=entity, code="forbidden")])


# -- reading ---------------------------------------------------------------------------------------

@dataclass
class Loaded:
    kind: str
    key: str
    published: dict | None
    version: int                  # published version (0: never published)
    draft: dict | None
    lock_version: int             # draft lock version (0: no draft)
    draft_author: str | None

    @property
    def body(self) -> dict | None:
        return self.draft if self.draft is not None else self.published

    def to_dict(self) -> dict:
        return {"kind": self.kind, "key": self.key, "published": self.published, "version": self.version,
                "draft": self.draft, "lock_version": self.lock_version, "draft_author": self.draft_author,
                "body": self.body}


def load(loom, app: str, kind: str, key: str) -> Loaded:
    with loom.db.connect() as conn:
        cur = store.get(conn, app, kind, key)
        draft = store.get_draft(conn, app, kind, key)
    return Loaded(kind, key, cur.body if cur else None, cur.version if cur else 0,
                  draft["body"] if draft else None, draft["lock_version"] if draft else 0,
                  draft["author"] if draft else None)


def form_key_of(loom, app: str, entity: str) -> str:
    """The entity's default form key (``<entity>_form`` for a new one)."""
    with loom.db.connect() as conn:
        forms = [d for d in store.current(conn, app, "form") if d.body.get("entity") == entity]
    chosen = next((d for d in forms if d.body.get("default")), forms[0] if forms else None)
    return chosen.key if chosen else f"{entity}_form"


def catalog(loom, app: str) -> dict:
    """What the designer's home lists for one app: definitions by kind, and the app's roles."""
    with loom.db.connect() as conn:
        defs = store.current(conn, app)
        drafts = conn.execute(sa.select(store.drafts.c.kind, store.drafts.c.key, store.drafts.c.author)
                              .where(store.drafts.c.app == app)).all()
    out: dict = {k: [] for k in ("entity", "form", "workflow", "report", "dashboard", "role")}
    for d in defs:
        if d.kind in out:
            out[d.kind].append({"key": d.key, "version": d.version, "label": d.body.get("label"),
                                "author": d.author, "origin": d.origin})
    out["drafts"] = [{"kind": r.kind, "key": r.key, "author": r.author} for r in drafts]
    return out


# -- drafts ----------------------------------------------------------------------------------------

def save_drafts(loom, app: str, items: list[tuple[str, str, dict, int | None]], actor) -> dict:
    """Save several drafts in one transaction: ``[(kind, key, body, lock_version)]``.

    A stale lock version on any of them raises Conflict (naming who saved) and saves nothing."""
    out = {}
    with loom.db.begin() as conn:
        for kind, key, body, lock in items:
            _check_kind(kind)
            if not isinstance(body, dict):
                raise InvalidInput(f"the {kind} draft must be an object",
                                   problems=[Problem("must be an object", field=kind, code="type")])
            row = store.save_draft(conn, app, kind, key, body, actor.username, lock or None)
            out[kind] = {"key": key, "lock_version": row["lock_version"], "author": row["author"]}
    return out


def discard(loom, app: str, kind: str, key: str) -> None:
    with loom.db.begin() as conn:
        store.discard_draft(conn, app, kind, key)


def _check_kind(kind: str) -> None:
    if kind not in EDITABLE_KINDS:
        raise InvalidInput(f"the designer does not edit `{kind}` definitions",
                           problems=[Problem(f"unknown kind `{kind}`", field="kind", code="kind")])


# -- validation and plan ---------------------------------------------------------------------------

def check(loom, app: str, replacements: list[tuple[str, str, dict]], checkers: bool = True) -> dict:
    """Validate the app with these definitions replaced, exactly like a bundle install would
    (structure, model build with every expression compiled, the extensions' checks), and plan the
    migration. Returns ``{"problems": [...], "migration": [...], "destructive": bool}``; changes nothing."""
    from engine.forms import plan_migration
    from engine.install.publish import validate_changes

    for kind, key, body in replacements:
        _check_kind(kind)
        if body.get("key", key) != key:
            return _result([Problem(f"the definition's key `{body.get('key')}` does not match `{key}`",
                                    field="key", code="key")])
    with loom.db.connect() as conn:
        problems, model = validate_changes(conn, app, {(k, key): b for k, key, b in replacements},
                                           loom.install_checks if checkers else ())
        if problems or model is None:
            return _result(problems)
        migration = plan_migration(conn, model, {app}) if any(k == "entity" for k, _, _ in replacements) else None
        conn.rollback()
    steps = migration.describe() if migration is not None else []
    refused = [Problem(f"refused: {s}", code="refused") for s in (migration.refused if migration is not None else [])]
    return {"problems": refused, "migration": steps, "destructive": _destructive(migration),
            "model": None if refused else model}


def _result(problems) -> dict:
    return {"problems": list(problems), "migration": [], "destructive": False, "model": None}


def _destructive(migration) -> bool:
    if migration is None:
        return False
    for attr in ("destructive", "has_destructive", "is_destructive"):
        v = getattr(migration, attr, None)
        if v is not None:
            return bool(v() if callable(v) else v)
    return any("archive" in s.lower() or "drop" in s.lower() for s in migration.describe())


def diff(loom, app: str, kind: str, key: str, body: dict) -> list[str]:
    """Readable changes of ``body`` against the published version ("+ /fields[key=x]" ...)."""
    with loom.db.connect() as conn:
        cur = store.get(conn, app, kind, key)
    return body_diff(cur.body if cur else {}, body)


# -- publishing ------------------------------------------------------------------------------------

def publish(loom, app: str, items: list[tuple[str, str, dict, int | None]], actor, *,
            confirm_destructive: bool = False, comment: str | None = None) -> list[dict]:
    """Publish ``[(kind, key, body, expected_version)]`` together, in one transaction.

    The same road as ``loom.publish`` (engine.install.publish) -- the app validated as a bundle
    with these definitions replaced, the migration planned and applied, a new version per
    definition with origin "designer" (the partner's shipped body carried forward), an audit entry
    each -- but for several definitions at once, because an entity and its form often only make
    sense together (a removed field must leave the form in the same step). A workflow is then
    deployed as a new process version. Returns what changed."""
    result = check(loom, app, [(k, key, b) for k, key, b, _ in items])
    if result["problems"]:
        raise InvalidInput(f"{len(result['problems'])} problem(s); nothing was published", problems=result["problems"])
    if result["destructive"] and not confirm_destructive:
        raise InvalidInput("this change archives columns; confirm it explicitly to publish",
                           problems=[Problem(s, code="destructive") for s in result["migration"] if "archive" in s],
                           code="confirm_destructive")
    # the engine's one publish road: validated together, migrated once, audited, deployed by hooks
    results = loom.publish_many(app, items, actor, confirm_destructive=confirm_destructive, comment=comment)
    return [{"kind": kind, "key": key, "changed": r.changed, "version": r.stored.version,
             "migration": r.migration.describe(), **({"deployed": True} if kind == "workflow" and r.changed else {})}
            for (kind, key, *_), r in zip(items, results)]


def history(loom, app: str, kind: str, key: str) -> list[dict]:
    with loom.db.connect() as conn:
        rows = store.history(conn, app, kind, key)
    return [{"version": s.version, "status": s.status, "author": s.author, "origin": s.origin,
             "created_at": s.created_at.isoformat() if s.created_at else None} for s in rows]


def rollback(loom, app: str, kind: str, key: str, to_version: int, actor, *, confirm_destructive: bool = False) -> dict:
    """Publish an earlier version's body again (a new version: history is never rewritten), through
    the same validation, migration and audit as any publish."""
    with loom.db.connect() as conn:
        old = store.get(conn, app, kind, key, to_version)
        cur = store.get(conn, app, kind, key)
    if old is None:
        raise NotFound(f"{kind} `{key}` has no version {to_version}",
                       problems=[Problem(f"no version {to_version}", field="version", code="not_found")])
    return publish(loom, app, [(kind, key, old.body, cur.version if cur else None)], actor,
                   confirm_destructive=confirm_destructive, comment=f"rollback to version {to_version}")[0]


# -- expressions -----------------------------------------------------------------------------------

def check_expression(source: str, mode: str = "eval") -> list[dict]:
    """Problems of an expression (or script, mode ``exec``) as the analyst types it."""
    from engine.sandbox import check as sandbox_check
    return [p.to_dict() for p in sandbox_check(source or "", mode=mode)]


# -- reports ---------------------------------------------------------------------------------------

def preview_report(loom, app: str, body: dict, actor, params: dict | None = None) -> dict:
    """Run a draft report through the reports engine with the designer's own permissions (row
    scopes and field rules apply), without publishing it; with the chart option it would draw."""
    from engine.meta.schema import iter_problems
    from engine.reports import parse_report
    from engine.reports.charts import chart_option
    from engine.reports.validate import check_report

    problems = [Problem(msg, path="/".join(map(str, path)) or None, code="schema").to_dict()
                for msg, path in iter_problems("report", body)]
    if problems:
        return {"ok": False, "problems": problems}
    try:
        rep = parse_report(app, body)
    except InvalidInput as exc:
        return {"ok": False, "problems": [p.to_dict() for p in exc.problems]}
    found = check_report(rep, loom.model)
    if found:
        return {"ok": False, "problems": [Problem(msg, path="/".join(map(str, path)) or None, code="report").to_dict()
                                          for msg, path in found]}
    reports = loom.extensions["reports"].reports
    chart = rep.chart or {}
    kind = chart.get("type") or "bar"
    dim = chart.get("dimension") or (rep.rows[0] if rep.rows else None)
    measures = chart.get("measures") or list(rep.measures)[:1]
    if kind in {"bar", "line", "pie", "funnel", "treemap"}:
        result = reports.run(rep, actor, params or {}, rows=[dim] if dim else [], columns=[], measures=measures)
        option = chart_option(kind, result, dim, measures, stack=bool(chart.get("stack")),
                              horizontal=bool(chart.get("horizontal")))
    else:
        result, option = reports.run(rep, actor, params or {}), None
    return {"ok": True, "problems": [], "result": _jsonable(result), "option": option, "chart": kind}


def _jsonable(value):
    return json.loads(json.dumps(value, default=str, ensure_ascii=False))


def dashboard_with(loom, app: str, dashboard: str, report_key: str, report_body: dict, locale: str,
                   label: str | None = None) -> tuple[dict, int | None]:
    """The dashboard's body with a widget for the report (added, or replaced when it is there);
    a new dashboard when none has that key. Returns (body, published version or None)."""
    import copy
    with loom.db.connect() as conn:
        cur = store.get(conn, app, "dashboard", dashboard)
    chart = report_body.get("chart") or {}
    kind = chart.get("type") or "bar"
    if kind == "pivot":
        kind = "table"
    widget = {"key": report_key, "type": kind, "report": report_key, "w": 6, "h": 3}
    if report_body.get("label"):
        widget["label"] = report_body["label"]
    if chart.get("dimension"):
        widget["dimension"] = chart["dimension"]
    if chart.get("measures"):
        widget["measures"] = list(chart["measures"])
    if kind == "kpi":
        widget["measure"] = (chart.get("measures") or [report_body["measures"][0]["key"]])[0]
        widget.pop("measures", None)
    if cur is None:
        body = {"key": dashboard, "label": {"zh-CN": label or dashboard, "en": label or dashboard}, "widgets": [widget]}
        return body, None
    body = copy.deepcopy(cur.body)
    widgets = [w for w in body.get("widgets") or [] if w.get("key") != report_key]
    body["widgets"] = widgets + [widget]
    return body, cur.version
