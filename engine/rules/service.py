"""The monitoring service: rule versions, streaming evaluation by partition, alerts and cases.

Flow: :meth:`RuleService.ingest` stores events (idempotent), then :meth:`process` runs every rule
set. For one rule set the dispatcher (holding a lease, so only one runs at a time) reads the events
after the rule set's cursor up to the *watermark* -- the newest event time minus the rule set's
``tolerance_seconds`` -- in event-time order, splits them by partition (a stable hash of the group
key) and hands each partition its batch: in-process, or as one Celery task per partition and batch
when a broker is configured. Events that arrive after the watermark passed them are *late*: they
are stored and counted but not evaluated by the stream (a backtest includes them).

:meth:`apply_partition` evaluates a batch with the rule set's generated function and commits, in
one transaction per ``snapshot_every`` events: the alerts, the cases, the changed window state
and the partition's cursor (last applied ts, seq). A rerun of the same batch skips what the cursor
covers, so retries and restarts neither lose nor double-count anything.
"""
from __future__ import annotations

import logging
import math
import os
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone

import sqlalchemy as sa

from engine import audit
from engine.errors import Conflict, Forbidden, InvalidInput, LoomError, NotFound, Problem
from engine.meta import store
from engine.rules import ingest as ingest_mod
from engine.rules import state as state_mod
from engine.rules.codegen import Instance, Program, TypologyInstance, _ids, _num, build
from engine.rules.model import (Ruleset, definition_kind, parse_rule, parse_ruleset, parse_typology, ruleset_of)
from engine.rules.tables import alerts, cursors, events, states, versions
from engine.security import Actor

log = logging.getLogger(__name__)
DISPATCH = -1
LEASE_SECONDS = 300.0
READ_BATCH = 50_000
SYSTEM_ACTOR = Actor.system("rules")
IMPORT_PAGE = 500           # imported records read back per query
ENRICH_SECONDS = 10.0       # an enrichment script's time budget (plus a little per event)


def partition_of(gkey: str, partitions: int) -> int:
    return zlib.crc32(gkey.encode("utf-8")) % partitions if partitions > 1 else 0


def now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Running:
    """A rule set's program plus what the processor needs to turn hits into alerts."""
    ruleset: Ruleset
    program: Program
    fingerprint: tuple
    references_loaded: bool = False

    def subject(self, index: int):
        if index >= 0:
            inst = self.program.instances[index]
            return "rule", inst.rule, inst.mode
        t = self.program.typologies[-1 - index]
        return "typology", t.typology, t.mode


@dataclass
class PartitionCache:
    cursor: tuple
    fingerprint: tuple
    keys: dict = field(default_factory=dict)


class RuleService:
    def __init__(self, loom):
        self.loom = loom
        self._programs: dict[str, Running] = {}
        self._cache: dict[tuple, PartitionCache] = {}
        self._lock = threading.RLock()
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.dispatch = None        # fn(ruleset_key, [(partition, events)]) -> [stats]; None = in-process
        self._scripts: dict[tuple, object] = {}

    # -- definitions and versions ---------------------------------------------------------------

    def rulesets(self, conn) -> list[Ruleset]:
        out = []
        for d in store.current(conn, kind="rule"):
            if definition_kind(d.body) == "ruleset":
                out.append(parse_ruleset(d.app, d.body))
        return out

    def sync_versions(self, conn) -> None:
        """Every published rule/typology version gets a version row, in shadow until activated."""
        have = {(r.app, r.key, r.version) for r in conn.execute(sa.select(
            versions.c.app, versions.c.key, versions.c.version))}
        t = store.definitions
        ids = [r.id for r in conn.execute(sa.select(t.c.id, t.c.app, t.c.key, t.c.version).where(t.c.kind == "rule"))
               if (r.app, r.key, r.version) not in have]
        for i in range(0, len(ids), 500):
            for d in conn.execute(sa.select(t.c.app, t.c.key, t.c.version, t.c.author, t.c.body)
                                  .where(t.c.id.in_(ids[i:i + 500]))):
                kind = definition_kind(d.body)
                if kind != "ruleset":
                    conn.execute(versions.insert().values(app=d.app, kind=kind, key=d.key, version=d.version,
                                                          status="shadow", author=d.author))

    def running(self, ruleset_key: str, conn=None, selection: str = "running") -> Running:
        """The compiled program of a rule set: active versions, plus the newest version of each
        rule in shadow mode (``selection='running'``); ``'latest'`` runs the newest versions as
        active (backtests of a candidate), ``'active'`` only the active ones."""
        if conn is None:
            with self.loom.db.begin() as c:
                run = self.running(ruleset_key, c, selection)
            if not run.references_loaded:
                self._load_references(run.program)
                run.references_loaded = True
            return run
        app, _, key = ruleset_key.partition(".")
        self.sync_versions(conn)
        rs_def = next((d for d in store.current(conn, app=app, kind="rule")
                       if d.key == key and definition_kind(d.body) == "ruleset"), None)
        if rs_def is None:
            raise NotFound(f"no rule set `{ruleset_key}`", problems=[Problem(f"no rule set `{ruleset_key}`",
                                                                              field="ruleset", code="not_found")])
        ruleset = parse_ruleset(app, rs_def.body)
        current = [d for d in store.current(conn, app=app, kind="rule") if definition_kind(d.body) != "ruleset"]
        names = [d.key for d in store.current(conn, app=app, kind="rule") if definition_kind(d.body) == "ruleset"]
        current = [d for d in current if ruleset_of(d.body, names) == key]
        rows = {(r.kind, r.key, r.version): r for r in conn.execute(sa.select(versions).where(versions.c.app == app))}
        plan = []      # (kind, key, version, mode)
        for d in current:
            kind = definition_kind(d.body)
            active = [v for (k, kk, v), r in rows.items() if k == kind and kk == d.key and r.status == "active"]
            latest_status = rows.get((kind, d.key, d.version)).status if (kind, d.key, d.version) in rows else "shadow"
            if selection == "latest":
                plan.append((kind, d.key, d.version, "active"))
                continue
            if active:
                plan.append((kind, d.key, active[0], "active"))
            if selection == "running" and latest_status == "shadow" and (not active or active[0] < d.version):
                plan.append((kind, d.key, d.version, "shadow"))
        fingerprint = (rs_def.checksum, selection, tuple(sorted(plan)))
        cache_key = f"{ruleset_key}|{selection}"
        with self._lock:
            cached = self._programs.get(cache_key)
            if cached is not None and cached.fingerprint == fingerprint:
                return cached
        instances, typologies = [], []
        rule_inst: dict[tuple, int] = {}
        bodies = {}
        for kind, k, v, mode in sorted(plan):
            stored = store.get(conn, app, "rule", k, v)
            bodies[(kind, k, v, mode)] = stored
        for (kind, k, v, mode), stored in bodies.items():
            if kind == "rule":
                rule = parse_rule(stored.body, v, stored.file, stored.author)
                rule_inst[(k, mode)] = len(instances)
                instances.append(Instance(len(instances), rule, mode))
        for (kind, k, v, mode), stored in bodies.items():
            if kind == "typology":
                ty = parse_typology(stored.body, v, stored.author)
                members = []
                for rk, wt in ty.rules:
                    idx = rule_inst.get((rk, mode), rule_inst.get((rk, "active")))
                    if idx is not None:
                        members.append((idx, wt))
                typologies.append(TypologyInstance(len(typologies), ty, mode, members))
        program = build(ruleset, instances, typologies)
        run = Running(ruleset, program, fingerprint)
        with self._lock:
            self._programs[cache_key] = run
        return run

    def _load_references(self, program: Program) -> None:
        for i, f in enumerate(program.references):
            ent = self.loom.model.entities.get(f.entity)
            values = {}
            if ent is not None:
                q = self.loom.query.scoped_select(ent, SYSTEM_ACTOR)
                with self.loom.db.connect() as conn:
                    for row in conn.execute(q).mappings():
                        v = row.get(f.value_field)
                        values[row.get(f.key_field)] = _num(v) if v is not None and not isinstance(v, str) else v
            program.refs[i].clear()
            program.refs[i].update(values)

    # -- maker-checker ----------------------------------------------------------------------------

    def versions(self, app: str, key: str | None = None) -> list[dict]:
        with self.loom.db.begin() as conn:
            self.sync_versions(conn)
            q = sa.select(versions).where(versions.c.app == app)
            if key:
                q = q.where(versions.c.key == key)
            return [dict(r) for r in conn.execute(q.order_by(versions.c.key, versions.c.version)).mappings()]

    def activate(self, app: str, key: str, version: int | None, actor: Actor) -> dict:
        """Make a shadow version live. The activator must not be its author (maker-checker)."""
        with self.loom.db.begin() as conn:
            self.sync_versions(conn)
            q = sa.select(versions).where(versions.c.app == app, versions.c.key == key)
            rows = conn.execute(q.order_by(versions.c.version.desc())).mappings().all()
            if not rows:
                raise NotFound(f"no rule or typology `{app}.{key}`",
                               problems=[Problem(f"no rule or typology `{key}` in `{app}`", field="key",
                                                 code="not_found")])
            row = rows[0] if version is None else next((r for r in rows if r["version"] == version), None)
            if row is None:
                raise NotFound(f"`{key}` has no version {version}",
                               problems=[Problem(f"`{key}` has no version {version}", field="version",
                                                 code="not_found")])
            if row["status"] == "active":
                raise Conflict(f"`{key}` version {row['version']} is already active")
            if row["author"] and row["author"] == actor.username:
                raise Forbidden(f"{actor.username} wrote `{key}` version {row['version']} and may not activate it",
                                problems=[Problem("maker-checker: a second person must activate a rule version "
                                                  "(activator != author)", field="actor", code="maker_checker")])
            conn.execute(versions.update().where(versions.c.app == app, versions.c.key == key,
                                                 versions.c.status == "active").values(status="retired"))
            conn.execute(versions.update().where(versions.c.app == app, versions.c.key == key,
                                                 versions.c.version == row["version"]).values(
                status="active", activated_by=actor.username, activated_at=now()))
            audit.append(conn, "rule.activate", actor_id=actor.user_id, actor=actor.username, address=actor.address,
                         app=app, entity="rule", record_id=key,
                         detail={"key": key, "kind": row["kind"], "version": row["version"], "author": row["author"]})
            return {"app": app, "key": key, "kind": row["kind"], "version": row["version"], "status": "active",
                    "author": row["author"], "activated_by": actor.username}

    # -- ingestion ----------------------------------------------------------------------------------

    def ingest(self, items: list, *, process: bool = True, final: bool = False) -> dict:
        rows = ingest_mod.normalize(items)
        return self.ingest_rows(rows, process=process, final=final)

    def ingest_rows(self, rows: list[dict], *, process: bool = True, final: bool = False) -> dict:
        late = 0
        with self.loom.db.begin() as conn:
            accepted, duplicates = ingest_mod.store(conn, rows)
            lows = [r.ts for r in conn.execute(sa.select(cursors.c.ts).where(cursors.c.partition == DISPATCH))
                    if r.ts is not None]
            if lows and accepted:
                low = min(lows)
                late = sum(1 for r in rows if r["ts"] < low)
        out = {"accepted": accepted, "duplicates": duplicates, "late": min(late, accepted)}
        if process:
            out["processed"] = self.process(final=final)
        return out

    def record_event(self, event) -> None:
        """A ``record.*`` bus event becomes a monitoring event when some rule listens to its entity;
        a created record of an entity a rule set lists under ``records`` becomes an event of that
        kind (trade, transfer...) with the same id a batch load would give it."""
        p = event.payload
        entity = p.get("full_key") or f"{p.get('app')}.{p.get('entity')}"
        rows = []
        if event.name == "record.created":
            sources = self._record_sources(entity)
            if sources:
                rows += self._sourced_rows(entity, sources, [p.get("record") or {}])
        if self._listens_to(entity):
            rows += self._record_rows(entity, event.name, [dict(p.get("record") or p.get("before") or {})])
        if rows:
            self.ingest_rows(rows, process=True)

    def records_imported(self, event) -> None:
        """A bulk import (``records.imported``, which carries only the new ids) feeds the rules as
        the same records saved one by one would: sourced events and ``record:<entity>`` events,
        read back in pages as the system and stored. They are evaluated by the next
        :meth:`process` (the scheduler tick), not batch by batch: an import of history comes in
        batches that need not be in time order, and evaluating each batch at once would move the
        watermark past the older events of the next one (they would only count as late)."""
        p = event.payload
        entity = p.get("full_key") or f"{p.get('app')}.{p.get('entity')}"
        ids = [int(i) for i in p.get("ids") or ()]
        sources = self._record_sources(entity) if ids else []
        listens = bool(ids) and self._listens_to(entity)
        ent = self.loom.model.entities.get(entity)
        if ent is None or not (sources or listens):
            return
        from engine.records.query import ListRequest
        rows: list[dict] = []
        for i in range(0, len(ids), IMPORT_PAGE):
            req = ListRequest(filters=[("id", "in", ids[i:i + IMPORT_PAGE])], page_size=IMPORT_PAGE, with_total=False)
            recs = self.loom.query.list(ent, SYSTEM_ACTOR, req)["items"]
            if sources:
                rows += self._sourced_rows(entity, sources, recs)
            if listens:
                rows += self._record_rows(entity, "record.created", recs)
        for i in range(0, len(rows), ingest_mod.MAX_BATCH):
            self.ingest_rows(rows[i:i + ingest_mod.MAX_BATCH], process=False)

    def _record_rows(self, entity: str, name: str, recs: list[dict]) -> list[dict]:
        ent = self.loom.model.entities.get(entity)
        rows = []
        for rec in recs:
            rec = dict(rec)
            if ent is not None:     # JSON-ready records carry decimals as text: rules compare numbers
                for f in ent.fields.values():
                    if f.type in ("decimal", "integer", "number", "money") and isinstance(rec.get(f.key), str):
                        rec[f.key] = _num(rec[f.key])
            rows.append({"ext_id": f"{name}:{entity}:{rec.get('id')}:{rec.get('version')}",
                         "kind": f"record:{entity}", "ts": time.time(),
                         "payload": dict(rec, _event=name.split(".", 1)[-1])})
        return rows

    def _record_sources(self, entity: str) -> list[dict]:
        """The ``records`` entries of every rule set for ``entity``, read once per model revision."""
        revision = self.loom.model.revision
        cached = getattr(self, "_sources", None)
        if cached is None or cached[0] != revision:
            by_entity: dict[str, list] = {}
            try:
                with self.loom.db.connect() as conn:
                    sets = self.rulesets(conn)
            except sa.exc.SQLAlchemyError:
                return []
            for rs in sets:
                for src in rs.records:
                    ent = src["entity"] if "." in src["entity"] else f"{rs.app}.{src['entity']}"
                    by_entity.setdefault(ent, []).append(dict(src, _app=rs.app))
            cached = self._sources = (revision, by_entity)
        return cached[1].get(entity, [])

    def _sourced_rows(self, entity: str, sources: list[dict], recs: list[dict]) -> list[dict]:
        ent = self.loom.model.entities.get(entity)
        if ent is None:
            return []
        out, seen, linked = [], set(), {}
        for src in sources:
            rows, saved = [], []
            for rec in recs:
                ident, when = rec.get(src["id"]), rec.get(src["ts"])
                if ident in (None, "") or when is None:
                    continue
                ext = f"{src['kind']}:{ident}"
                ts = ingest_mod.parse_ts(when, 0, [])
                if ts is None or ext in seen:
                    continue
                seen.add(ext)
                payload = {k: v for k, v in rec.items() if k not in ingest_mod.RESERVED and k != "version"}
                for target, path in (src.get("fields") or {}).items():
                    payload[target] = self._follow(ent, rec, path, linked)
                for f in ent.fields.values():    # JSON-ready records carry decimals as text
                    if f.type in ("decimal", "integer", "number", "money") and isinstance(payload.get(f.key), str):
                        payload[f.key] = _num(payload[f.key])
                rows.append({"ext_id": ext, "kind": src["kind"], "ts": ts, "payload": payload})
                saved.append(rec)
            if rows and src.get("enrich"):
                self._enrich(src["_app"], src["enrich"], rows, saved)
            out += rows
        return out

    def _enrich(self, app: str, key: str, rows: list[dict], saved: list[dict]) -> None:
        """Add the fields a bundle script joins to the events (``records: [{enrich: script}]``).

        Why a script: what a rule needs beyond the record (a linked-account group, a report code, an
        account's age) is app knowledge the engine must not hold; the app's batch adapter joins the
        same fields for bulk loads, and the live road has to give the rules the same events. The
        script gets ``events`` (ingestion format) and ``saved`` (the records, same order) and the
        scripts' engine API as the system, and leaves ``result``: one dict of extra fields per
        event. If it fails the events go in without the extra fields (logged): a rule that needs
        them sees nothing, but no event is lost."""
        from engine.sandbox import Budget, SandboxError
        try:
            code = self._script(app, key)
            events_in = [dict(r["payload"], id=r["ext_id"], kind=r["kind"], ts=r["ts"]) for r in rows]
            out = code.execute({"events": events_in, "saved": [dict(s) for s in saved]},
                               api=self.loom.sandbox_api(SYSTEM_ACTOR),
                               budget=Budget(seconds=ENRICH_SECONDS + len(rows) * 0.05, memory_mb=256))
            extra = out.get("result")
            if not isinstance(extra, list) or len(extra) != len(rows) or not all(isinstance(x, dict) for x in extra):
                raise ValueError(f"`result` must be a list of {len(rows)} dicts, one per event")
        except (SandboxError, LoomError, ValueError) as exc:
            log.warning("rules: enrichment script %s/%s failed on %d event(s): %s", app, key, len(rows), exc)
            return
        for row, add in zip(rows, extra):
            row["payload"].update({k: v for k, v in add.items() if k not in ingest_mod.RESERVED})

    def _script(self, app: str, key: str):
        """A bundle script compiled once per published version."""
        from engine.sandbox import compile_script
        with self.loom.db.connect() as conn:
            d = store.get(conn, app, "script", key)
        if d is None:
            raise LoomError(f"script `{key}` is not installed in `{app}`")
        ck = (app, key, d.version)
        with self._lock:
            code = self._scripts.get(ck)
            if code is None:
                code = self._scripts[ck] = compile_script(d.body.get("source") or "", f"{app}/scripts/{key}.py")
        return code

    def _follow(self, ent, rec: dict, path: str, linked: dict):
        """``field`` of the record, or ``link.field`` of the record it links to (system read)."""
        name, _, rest = path.partition(".")
        value = rec.get(name)
        if not rest or value is None:
            return value
        f = ent.fields.get(name)
        if f is None or f.type != "link" or not f.target:
            return None
        rid = value.get("id") if isinstance(value, dict) else value
        key = (f.target, rid)
        if key not in linked:
            try:
                linked[key] = self.loom.records.get(f.target, int(rid), SYSTEM_ACTOR)
            except (NotFound, ValueError, TypeError):
                linked[key] = {}
        return linked[key].get(rest)

    def _listens_to(self, entity: str) -> bool:
        with self._lock:
            progs = list(self._programs.values())
        if not progs:
            # no rule set loaded yet: look in the store once per published revision, not per event
            revision = self.loom.model.revision
            if getattr(self, "_no_rulesets_at", None) == revision:
                return False
            try:
                with self.loom.db.connect() as conn:
                    sets = self.rulesets(conn)
                progs = [self.running(rs.full_key) for rs in sets]
            except sa.exc.SQLAlchemyError:
                return False
            if not progs:
                self._no_rulesets_at = revision
                return False
        for run in progs:
            for inst in run.program.instances:
                src = [inst.rule.trigger] + [f.source for f in inst.rule.features]
                if any(s.event == "record" and (s.entity in (None, entity)) for s in src):
                    return True
        return False

    # -- dispatch ----------------------------------------------------------------------------------

    def process(self, final: bool = False, ruleset: str | None = None) -> dict:
        """Evaluate every pending event of every rule set (or one). ``final`` ignores the tolerance
        (end of a bulk load, a backfill); otherwise events newer than the watermark wait."""
        with self.loom.db.begin() as conn:
            sets = [rs for rs in self.rulesets(conn) if ruleset in (None, rs.full_key)]
        out = {}
        for rs in sets:
            out[rs.full_key] = self._process_ruleset(rs, final)
        return out

    def _lease(self, key: str, take: bool) -> bool:
        with self.loom.db.begin() as conn:
            row = conn.execute(sa.select(cursors).where(cursors.c.ruleset == key, cursors.c.partition == DISPATCH)
                               ).mappings().first()
            t = time.time()
            if row is None:
                conn.execute(cursors.insert().values(ruleset=key, partition=DISPATCH, late=0, suppressed=0, errors=0,
                                                     max_seq=0, lease_owner=self.owner if take else None,
                                                     lease_until=t + LEASE_SECONDS if take else None))
                return True
            if not take:
                conn.execute(cursors.update().where(cursors.c.ruleset == key, cursors.c.partition == DISPATCH,
                                                    cursors.c.lease_owner == self.owner).values(
                    lease_owner=None, lease_until=None))
                return True
            n = conn.execute(cursors.update().where(
                cursors.c.ruleset == key, cursors.c.partition == DISPATCH,
                sa.or_(cursors.c.lease_owner.is_(None), cursors.c.lease_until < t,
                       cursors.c.lease_owner == self.owner)).values(
                lease_owner=self.owner, lease_until=t + LEASE_SECONDS)).rowcount
            return bool(n)

    def _process_ruleset(self, rs: Ruleset, final: bool) -> dict:
        key = rs.full_key
        stats = {"events": 0, "alerts": 0, "shadow_alerts": 0, "suppressed": 0, "late": 0, "busy": False}
        if not self._lease(key, True):
            stats["busy"] = True
            return stats
        try:
            run = self.running(key)
            self._load_references(run.program)
            while True:
                with self.loom.db.begin() as conn:
                    row = conn.execute(sa.select(cursors).where(cursors.c.ruleset == key,
                                                                cursors.c.partition == DISPATCH)).mappings().first()
                    cts, cseq, max_seq = row["ts"], row["seq"], row["max_seq"] or 0
                    top = conn.execute(sa.select(sa.func.max(events.c.ts), sa.func.max(events.c.seq))).first()
                    if top[0] is None:
                        break
                    mark = math.inf if final else top[0] - rs.tolerance_seconds
                    q = sa.select(events.c.seq, events.c.ext_id, events.c.kind, events.c.ts, events.c.payload)
                    if cts is not None:
                        q = q.where(sa.or_(events.c.ts > cts, sa.and_(events.c.ts == cts, events.c.seq > cseq)))
                    if not final:
                        q = q.where(events.c.ts <= mark)
                    batch = conn.execute(q.order_by(events.c.ts, events.c.seq).limit(READ_BATCH)).all()
                    late = 0
                    if cts is not None and top[1] > max_seq:
                        late = conn.execute(sa.select(sa.func.count()).select_from(events).where(
                            events.c.seq > max_seq, sa.or_(events.c.ts < cts,
                                                           sa.and_(events.c.ts == cts, events.c.seq <= cseq)))).scalar()
                    conn.execute(cursors.update().where(cursors.c.ruleset == key, cursors.c.partition == DISPATCH)
                                 .values(max_seq=top[1], late=cursors.c.late + late))
                    stats["late"] += late
                if not batch:
                    break
                parts: dict[int, list] = {}
                gb = rs.group_by
                for seq, ext, kind, ts, payload in batch:
                    g = payload.get(gb)
                    if g is None:
                        continue
                    g = str(g)
                    parts.setdefault(partition_of(g, rs.partitions), []).append(
                        (seq, ext, kind if kind[:7] != "record:" else kind, ts, g, payload))
                work = sorted(parts.items())
                if self.dispatch is not None and len(work) > 0:
                    results = self.dispatch(key, [(p, evs) for p, evs in work])
                else:
                    results = [self.apply_partition(key, p, evs) for p, evs in work]
                for r in results:
                    for k in ("events", "alerts", "shadow_alerts", "suppressed"):
                        stats[k] += r.get(k, 0)
                last = batch[-1]
                with self.loom.db.begin() as conn:
                    conn.execute(cursors.update().where(cursors.c.ruleset == key, cursors.c.partition == DISPATCH)
                                 .values(ts=last[3], seq=last[0], suppressed=cursors.c.suppressed + sum(
                                     r.get("suppressed", 0) for r in results)))
                if len(batch) < READ_BATCH:
                    break
        finally:
            self._lease(key, False)
        return stats

    # -- evaluation of one partition ----------------------------------------------------------------

    def apply_partition(self, ruleset_key: str, partition: int, batch: list) -> dict:
        """Apply ``batch`` ``[(seq, ext_id, kind, ts, gkey, payload)]`` (event-time order) to one
        partition; safe to repeat: what the partition's cursor already covers is skipped."""
        run = self.running(ruleset_key)
        rs = run.ruleset
        stats = {"events": 0, "alerts": 0, "shadow_alerts": 0, "suppressed": 0, "errors": 0}
        step = max(1, rs.snapshot_every)
        i = 0
        while i < len(batch):
            chunk = batch[i:i + step]
            i += step
            try:
                self._apply_chunk(run, partition, chunk, stats)
            except Exception:
                self._cache.pop((ruleset_key, partition), None)
                raise
        return stats

    def _partition_cache(self, conn, run: Running, partition: int) -> PartitionCache:
        key = run.ruleset.full_key
        if conn.dialect.name == "postgresql":
            row = conn.execute(sa.select(cursors).where(cursors.c.ruleset == key, cursors.c.partition == partition)
                               .with_for_update()).mappings().first()
        else:
            row = conn.execute(sa.select(cursors).where(cursors.c.ruleset == key, cursors.c.partition == partition)
                               ).mappings().first()
        if row is None:
            conn.execute(cursors.insert().values(ruleset=key, partition=partition, late=0, suppressed=0, errors=0))
            if conn.dialect.name == "postgresql":
                conn.execute(sa.select(cursors.c.ts).where(cursors.c.ruleset == key, cursors.c.partition == partition)
                             .with_for_update())
            cursor = (None, None)
        else:
            cursor = (row["ts"], row["seq"])
        cache = self._cache.get((key, partition))
        if cache is None or cache.cursor != cursor or cache.fingerprint != run.fingerprint:
            cache = PartitionCache(cursor, run.fingerprint)
            for gkey, data in conn.execute(sa.select(states.c.gkey, states.c.data).where(
                    states.c.ruleset == key, states.c.partition == partition)):
                cache.keys[gkey] = state_mod.load(run.program, data)
            self._cache[(key, partition)] = cache
        return cache

    def _apply_chunk(self, run: Running, partition: int, chunk: list, stats: dict) -> None:
        rs = run.ruleset
        program = run.program
        fn = program.run
        self.loom.model  # noqa: B018 -- refresh outside the write transaction (see open_cases)
        with self.loom.records.unit() as uow:
            conn = uow.conn
            cache = self._partition_cache(conn, run, partition)
            cts, cseq = cache.cursor
            keys = cache.keys
            dirty: set = set()
            new_alerts = []
            hits: list = []
            errs: list = []
            last = None
            for seq, ext, kind, ts, g, payload in chunk:
                if cts is not None and (ts < cts or (ts == cts and seq <= cseq)):
                    continue          # already applied before a restart or a retried task
                st = keys.get(g)
                if st is None:
                    st = keys[g] = program.new_state()
                fn(kind, payload, ts, ext, st, hits, errs)
                dirty.add(g)
                last = (ts, seq)
                stats["events"] += 1
                if hits:
                    for h in hits:
                        alert = self._alert(run, st, h, g, seq, ext, kind, ts, stats)
                        if alert is not None:
                            new_alerts.append(alert)
                    hits.clear()
                if errs:
                    stats["errors"] += len(errs)
                    for ri, msg in errs:
                        log.warning("rule %s failed on event %s: %s", program.instances[ri].rule.key, ext, msg)
                    errs.clear()
            if last is None:
                return
            for a in new_alerts:
                a["id"] = conn.execute(alerts.insert().values(**a)).inserted_primary_key[0]
            key = rs.full_key
            if dirty:
                dl = list(dirty)
                for j in range(0, len(dl), 500):
                    conn.execute(states.delete().where(states.c.ruleset == key, states.c.gkey.in_(dl[j:j + 500])))
                conn.execute(states.insert(), [{"ruleset": key, "gkey": g, "partition": partition,
                                                "data": state_mod.dump(program, keys[g])} for g in dl])
            conn.execute(cursors.update().where(cursors.c.ruleset == key, cursors.c.partition == partition).values(
                ts=last[0], seq=last[1], suppressed=cursors.c.suppressed + stats["suppressed"],
                errors=cursors.c.errors + stats["errors"]))
            cache.cursor = last
        if any(a["mode"] == "active" for a in new_alerts):
            self.open_cases(rs)

    def _alert(self, run: Running, st: list, hit: tuple, g: str, seq: int, ext: str, kind: str, ts: float,
               stats: dict) -> dict | None:
        skind, subject, mode = run.subject(hit[0])
        sup = st[-1]
        if sup is None:
            sup = st[-1] = {}
        skey = f"{mode}:{skind}:{subject.key}"
        window = subject.suppress_seconds if subject.suppress_seconds is not None else run.ruleset.suppress_seconds
        prev = sup.get(skey)
        if prev is not None and ts - prev < window:
            stats["suppressed"] += 1
            return None
        sup[skey] = ts
        built = explain(run, hit[:3] + (_ids(hit[3], ext),), g, ext, kind, ts)
        built.pop("_suppress")
        stats["alerts" if built["mode"] == "active" else "shadow_alerts"] += 1
        built.update(ruleset=run.ruleset.full_key, event_seq=seq, created_at=now())
        return built

    # -- cases and outcomes ---------------------------------------------------------------------------

    def open_cases(self, rs: Ruleset) -> int:
        """A case record for every active alert without one (in its own transaction each, after the
        alert committed: a crash in between leaves the alert without case_id, and the next run --
        or the scheduler tick -- opens it)."""
        case = rs.case or {}
        if not case.get("entity"):
            return 0
        ent = self.loom.model.entities.get(f"{rs.app}.{case['entity']}")
        if ent is None:
            log.warning("rule set %s: case entity %s is not installed", rs.full_key, case["entity"])
            return 0
        with self.loom.db.connect() as conn:
            pending = [dict(r) for r in conn.execute(sa.select(alerts).where(
                alerts.c.ruleset == rs.full_key, alerts.c.mode == "active", alerts.c.case_id.is_(None))
                .order_by(alerts.c.id)).mappings()]
        for alert in pending:
            # refresh the model first: a reload check inside the write transaction would open a
            # second connection, which on SQLite waits for the lock this transaction holds
            ent = self.loom.model.entities.get(f"{rs.app}.{case['entity']}") or ent
            with self.loom.records.unit() as uow:
                taken = uow.conn.execute(alerts.update().where(alerts.c.id == alert["id"], alerts.c.case_id.is_(None))
                                         .values(case_id=0)).rowcount
                if taken:
                    self._open_case(uow, rs, ent, alert)
        return len(pending)

    def _open_case(self, uow, rs: Ruleset, ent, alert: dict) -> None:
        case = rs.case or {}
        exp = alert["explanation"]
        attrs = {"alert_id": alert["id"], "subject": alert["subject"], "group_key": alert["gkey"],
                 "score": alert["score"], "action": alert["action"], "summary": exp["summary"][:500],
                 "event_id": alert["event_id"], "report": alert["report"], "status": "open"}
        mapping = {a: a for a in attrs}
        mapping.update(case.get("fields") or {})
        data = {fld: attrs[a] for a, fld in mapping.items() if a in attrs and fld in ent.fields
                and attrs[a] is not None}
        rec = self.loom.records.create(ent, data, SYSTEM_ACTOR, uow=uow)
        uow.conn.execute(alerts.update().where(alerts.c.id == alert["id"]).values(case_id=rec["id"]))
        alert["case_id"] = rec["id"]
        process = case.get("process")
        if process:
            uow.after_commit.append(lambda: self._start_review(rs, process, rec, alert))

    def _start_review(self, rs: Ruleset, process: str, rec: dict, alert: dict) -> None:
        """Start the review process for a committed case (the workflow package, when present).
        A failure is logged: the case exists and stays in the case list."""
        workflow = getattr(self.loom, "workflow", None)
        if workflow is None:
            return
        ent = f"{rs.app}.{(rs.case or {}).get('entity')}"
        data = {"case_id": rec["id"], "alert_id": alert["id"], "rule": alert["subject"], "group_key": alert["gkey"],
                "score": alert["score"]}
        keys = [process] if "." in process else [f"{rs.app}.{process}", process]
        for i, key in enumerate(keys):
            try:
                workflow.start(key, SYSTEM_ACTOR, data, subject=(ent, rec["id"]))
                return
            except NotFound:
                if i == len(keys) - 1:
                    log.error("rule set %s: review process `%s` is not deployed", rs.full_key, process)
            except Exception:
                log.exception("could not start review process %s for case %s", process, rec["id"])
                return

    def case_updated(self, event) -> None:
        """Case outcomes (a field `outcome`: true_positive / false_positive) flow back to alerts."""
        p = event.payload
        rec = p.get("record") or {}
        if "outcome" not in (p.get("changed") or rec):
            return
        outcome = rec.get("outcome")
        if outcome not in ("true_positive", "false_positive", None):
            return
        with self.loom.db.begin() as conn:
            conn.execute(alerts.update().where(alerts.c.case_id == p.get("id"),
                                               alerts.c.mode == "active").values(outcome=outcome))

    def set_outcome(self, alert_id: int, outcome: str, actor: Actor) -> dict:
        if outcome not in ("true_positive", "false_positive"):
            raise InvalidInput(problems=[Problem(f"`outcome`: `{outcome}` is not true_positive or false_positive",
                                                 field="outcome", code="invalid")])
        with self.loom.db.begin() as conn:
            n = conn.execute(alerts.update().where(alerts.c.id == alert_id).values(outcome=outcome)).rowcount
            if not n:
                raise NotFound(f"no alert {alert_id}")
            audit.append(conn, "rule.outcome", actor_id=actor.user_id, actor=actor.username, entity="alert",
                         record_id=alert_id, detail={"outcome": outcome})
            return dict(conn.execute(sa.select(alerts).where(alerts.c.id == alert_id)).mappings().first())

    def precision(self, ruleset: str | None = None) -> list[dict]:
        """Per rule/typology and mode: alerts, confirmed, false, precision of the decided ones."""
        tp = sa.func.sum(sa.case((alerts.c.outcome == "true_positive", 1), else_=0))
        fp = sa.func.sum(sa.case((alerts.c.outcome == "false_positive", 1), else_=0))
        q = sa.select(alerts.c.ruleset, alerts.c.subject_kind, alerts.c.subject, alerts.c.mode,
                      sa.func.count().label("alerts"), tp.label("tp"), fp.label("fp")).group_by(
            alerts.c.ruleset, alerts.c.subject_kind, alerts.c.subject, alerts.c.mode)
        if ruleset:
            q = q.where(alerts.c.ruleset == ruleset)
        with self.loom.db.connect() as conn:
            out = []
            for r in conn.execute(q.order_by(alerts.c.subject)).mappings():
                tpn, fpn = int(r["tp"] or 0), int(r["fp"] or 0)
                out.append({"ruleset": r["ruleset"], "kind": r["subject_kind"], "key": r["subject"],
                            "mode": r["mode"], "alerts": r["alerts"], "true_positive": tpn, "false_positive": fpn,
                            "undecided": r["alerts"] - tpn - fpn,
                            "precision": round(tpn / (tpn + fpn), 4) if tpn + fpn else None})
            return out

    def list_alerts(self, *, ruleset=None, subject=None, mode=None, limit=100, after_id=0) -> list[dict]:
        q = sa.select(alerts).where(alerts.c.id > after_id)
        for col, v in ((alerts.c.ruleset, ruleset), (alerts.c.subject, subject), (alerts.c.mode, mode)):
            if v:
                q = q.where(col == v)
        with self.loom.db.connect() as conn:
            return [dict(r) for r in conn.execute(q.order_by(alerts.c.id).limit(limit)).mappings()]

    def status(self) -> list[dict]:
        with self.loom.db.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(cursors).order_by(cursors.c.ruleset,
                                                                              cursors.c.partition)).mappings()]


def _label(value, locale="en"):
    if isinstance(value, dict):
        return value.get(locale) or value.get("en") or next(iter(value.values()), "")
    return value or ""


def explain(run: Running, hit: tuple, g: str, ext: str, kind: str, ts: float) -> dict:
    """An alert row (without ids) whose explanation says why: rules fired with their feature values,
    the thresholds (params, condition, typology weights and thresholds) and the evidence events."""
    index, score, values, evidence = hit
    skind, subject, mode = run.subject(index)
    rs = run.ruleset
    rules = []
    if skind == "rule":
        r = subject
        rules.append({"rule": r.key, "version": r.version, "label": r.label, "score": score,
                      "condition": r.condition.source, "thresholds": dict(r.params),
                      "features": {f.key: v for f, v in zip(r.features, values)}})
        action, report = "alert", r.report
        extra = {}
    else:
        t = subject
        ti = run.program.typologies[-1 - index]
        for (mi, wt), sc in zip(ti.members, values):
            mr = run.program.instances[mi].rule
            rules.append({"rule": mr.key, "version": mr.version, "label": mr.label, "weight": wt, "score": sc,
                          "fired": bool(sc), "condition": mr.condition.source, "thresholds": dict(mr.params)})
        action = "block" if t.block_threshold is not None and score >= t.block_threshold else "alert"
        report = t.report
        extra = {"typology": {"key": t.key, "version": t.version, "alert_threshold": t.alert_threshold,
                              "block_threshold": t.block_threshold}}
    fired = [r["rule"] for r in rules if r.get("fired", True)]
    summary = (f"{_label(subject.label)}: {rs.group_by}={g}, score {score:g}"
               f" ({', '.join(fired)}) on {kind} {ext}")
    explanation = {"summary": summary, "subject": {"kind": skind, "key": subject.key, "version": subject.version,
                                                   "label": subject.label, "mode": mode},
                   "group": {rs.group_by: g}, "event": {"id": ext, "kind": kind, "ts": ts},
                   "rules": rules, "evidence": list(evidence)[:200], **extra}
    suppress = subject.suppress_seconds if subject.suppress_seconds is not None else rs.suppress_seconds
    return {"subject_kind": skind, "subject": subject.key, "version": subject.version, "mode": mode,
            "action": action, "gkey": g, "event_id": ext, "ts": ts, "score": float(score), "report": report,
            "explanation": explanation, "_suppress": suppress}
