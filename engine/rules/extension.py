"""Attach monitoring rules to a Loom: tables, the service, install checks, bus subscriptions, tick."""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class RulesExtension:
    def __init__(self, loom):
        from engine.rules.service import RuleService
        self.loom = loom
        self.service = RuleService(loom)

    def init_db(self, db_engine):
        """The loom_rule_* tables are declared on SYSTEM at attach time; make sure they exist."""
        from engine.db import sync_system_tables
        return sync_system_tables(db_engine)

    def tick(self):
        """Scheduler tick: evaluate what waited for the tolerance to pass (wall clock)."""
        try:
            return self.service.process()
        except Exception:  # a tick must not kill the scheduler
            log.exception("rules tick failed")
            return None


def install_check(bundle, model):
    from engine.rules.model import check_definitions
    defs = [(d.body, d.file) for d in bundle.of_kind("rule")]
    problems = check_definitions(defs)
    entities = {d.key for d in bundle.of_kind("entity")}
    for body, file in defs:
        case = body.get("case") if body.get("kind") == "ruleset" else None
        if case and case.get("entity") and case["entity"] not in entities:
            from engine.errors import Problem
            problems.append(Problem(f"rule set `{body.get('key')}`: case entity `{case['entity']}` does not exist",
                                    file=file, path="case/entity", code="reference"))
        if body.get("kind") == "ruleset":
            problems.extend(_check_records(body, file, bundle, entities))
    return problems


def _check_records(body, file, bundle, entities):
    """``records`` entries name an entity of the bundle and fields it has (``link.field`` one link away)."""
    from engine.errors import Problem
    out = []
    app = bundle.key
    ents = {d.key: d.body for d in bundle.of_kind("entity")}
    scripts = {d.key for d in bundle.of_kind("script")}
    for i, src in enumerate(body.get("records") or ()):
        if src.get("enrich") and src["enrich"] not in scripts:
            out.append(Problem(f"rule set `{body.get('key')}`: enrichment script `{src['enrich']}` is not in the "
                               f"bundle (scripts/{src['enrich']}.py)", file=file, path=f"records/{i}/enrich",
                               code="reference"))
        name = src.get("entity", "")
        local = name.split(".", 1)[1] if "." in name and name.split(".", 1)[0] == app else name
        if local not in entities:
            out.append(Problem(f"rule set `{body.get('key')}`: records entity `{name}` does not exist", file=file,
                               path=f"records/{i}/entity", code="reference"))
            continue
        fields = {f.get("key"): f for f in ents[local].get("fields") or ()}
        paths = [("id", src.get("id")), ("ts", src.get("ts"))] + [
            (f"fields/{k}", v) for k, v in (src.get("fields") or {}).items()]
        for where, path in paths:
            head, _, rest = str(path).partition(".")
            f = fields.get(head)
            link = f.get("entity", "") if f and f.get("type") == "link" else ""
            if rest and "." in link:        # a link into another app: checked when the event arrives
                continue
            target = ents.get(link)
            if f is None or (rest and (target is None or rest not in {x.get("key") for x in target.get("fields") or ()})):
                out.append(Problem(f"rule set `{body.get('key')}`: `{path}` is not a field of `{local}`"
                                   + (" (or of the record it links to)" if rest else ""), file=file,
                                   path=f"records/{i}/{where}", code="reference"))
    return out


def attach(loom) -> None:
    import engine.rules.tables  # noqa: F401
    ext = RulesExtension(loom)
    loom.extend("rules", ext)
    loom.install_checks.append(install_check)
    loom.bus.subscribe("record.*", _record_handler(ext))
    loom.bus.subscribe("records.imported", ext.service.records_imported)
    if loom.settings.broker_url:
        def dispatch(ruleset, work):
            from engine.rules import tasks
            return tasks.dispatch(loom, ruleset, work)
        ext.service.dispatch = dispatch


def _record_handler(ext):
    def handle(event):
        svc = ext.service
        p = event.payload
        entity = p.get("full_key") or f"{p.get('app')}.{p.get('entity')}"
        if event.name == "record.updated":
            svc.case_updated(event)
        if entity:
            svc.record_event(event)
    return handle
