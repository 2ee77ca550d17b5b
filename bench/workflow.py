"""Workflow benchmarks: persisted instance throughput vs bare SpiffWorkflow, and tick cost.

1. start -> user task -> complete -> end, through ``WorkflowService`` (two committed steps, with
   the human-task projection, the trail and the audit entry of the completion) vs bare
   SpiffWorkflow doing the same steps with the same two state commits into a plain table. Like
   with like: the task is completed with process variables only (``approved``), so neither side
   writes a business record -- a form submission would add a record-service write (permission,
   validation, audit) that the bare baseline has no equivalent of. Both end with the same number of
   completed instances and the same ``approved`` value in every final state.
2. ``tick()`` with N waiting instances of which 100 are due, at N=100 and N=10,000: the cost should
   follow the due ones (the ratio is printed; 1.0 means no growth with the waiting ones).
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from bench.harness import result, timed
from engine.security import Actor

BUNDLE_XML = None
SYS = Actor.system("bench")


def _loom(ctx, name):
    from engine.runtime.loom import Loom
    from engine.settings import Settings
    env = {"LOOM_INSTANCE_PATH": str(ctx.workdir / name), "LOOM_FIELD_KEY": "bench", "LOOM_SECRET_KEY": "bench"}
    if ctx.database_url:
        from engine.db import drop_schema
        env["LOOM_DATABASE_URL"] = ctx.database_url
        env["LOOM_DB_SCHEMA"] = f"bench_wf_{name}"
        drop_schema(ctx.database_url, env["LOOM_DB_SCHEMA"])      # a fresh schema: same data on both sides
    lm = Loom(Settings.from_env(env))
    lm.init_db()
    from pathlib import Path
    lm.install(Path(__file__).resolve().parent.parent / "tests" / "bundles" / "flow")
    return lm


def run(ctx):
    from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
    from SpiffWorkflow.util.task import TaskState

    from engine.workflow import definitions as defs
    lm = _loom(ctx, "throughput")
    n = ctx.scale(200, 20)
    svc = lm.workflow
    cid = lm.records.create("flow.customer", {"name": "bench", "risk_level": "C1"}, SYS)["id"]

    def engine_path():
        for _ in range(n):
            inst = svc.start("flow.onrisk", SYS, {"customer_id": cid})
            svc.complete(inst["tasks"][0]["id"], SYS, None, {"approved": True})     # variables, no record write
        with lm.db.connect() as conn:
            return conn.execute(sa.text("select count(*) from loom_process_instance where status='completed'")).scalar()

    with lm.db.connect() as conn:
        d = svc.definitions.latest(conn, "flow.onrisk")
    spec = defs.parse_specs(d.xml)["onrisk"]
    table = sa.Table("bench_bare_state", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("state", sa.Text), sa.Column("status", sa.String(16)))
    table.create(lm.db, checkfirst=True)

    def baseline():
        for _ in range(n):
            wf = BpmnWorkflow(*spec)
            wf.get_tasks(state=TaskState.READY)[0].set_data(customer_id=cid)
            wf.do_engine_steps()
            with lm.db.begin() as conn:
                iid = conn.execute(table.insert().values(state=svc._dump(wf), status="waiting")).inserted_primary_key[0]
            with lm.db.begin() as conn:
                row = conn.execute(sa.select(table).where(table.c.id == iid)).first()
                s = defs.serializer()
                import json
                dct = json.loads(row.state, cls=s.json_decoder_cls)
                dct.update(json.loads(d.spec_json_text, cls=s.json_decoder_cls)) if hasattr(d, "spec_json_text") else dct.update(
                    {"spec": json.loads(json.dumps(d.spec["spec"]), cls=s.json_decoder_cls),
                     "subprocess_specs": json.loads(json.dumps(d.spec["subprocess_specs"]), cls=s.json_decoder_cls)})
                wf = s.from_dict(dct)
                t = wf.get_tasks(state=TaskState.READY, manual=True)[0]
                t.set_data(approved=True)
                t.run()
                wf.do_engine_steps()
                conn.execute(table.update().where(table.c.id == iid).values(state=svc._dump(wf), status="completed"))
        with lm.db.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(table).where(table.c.status == "completed")).scalar()

    e_times, e_count = timed(engine_path, runs=3, warmup=0)
    b_times, b_count = timed(baseline, runs=3, warmup=0)
    assert e_count == b_count == 3 * n, (e_count, b_count)
    with lm.db.connect() as conn:
        e_states = conn.execute(sa.text("select state from loom_process_instance where status='completed'")).scalars().all()
        b_states = conn.execute(sa.select(table.c.state).where(table.c.status == "completed")).scalars().all()
    import json as _json
    assert all(_json.loads(x)["data"].get("approved") is True for x in e_states + b_states)
    rows = [result("workflow.instance_throughput", ops=n, engine_times=e_times, baseline_times=b_times, target=0.5,
                   extra={"database": lm.db.dialect.name,
                          "note": "same steps and two state commits on both sides; no business record written"})]

    # tick: 100 due among N waiting
    def fill(waiting):
        with lm.db.begin() as conn:
            conn.execute(sa.text("delete from loom_human_task"))
            conn.execute(sa.text("delete from loom_process_event"))
            conn.execute(sa.text("delete from loom_process_instance"))
        now = datetime.now(timezone.utc)
        inst = svc.start("flow.deadline", SYS, {})
        from engine.workflow.tables import process_instances as pi0
        with lm.db.connect() as conn:
            row = conn.execute(sa.select(pi0).where(pi0.c.id == inst["id"])).mappings().one()
        base = {k: row[k] for k in ("definition_id", "app", "process_key", "version", "status", "state", "serializer_version",
                                    "lock_version", "created_at", "updated_at")}
        from engine.workflow.tables import process_instances as pi
        with lm.db.begin() as conn:
            rows_ = [dict(base, next_timer_at=now + timedelta(hours=5 if i >= 100 else -1)) for i in range(waiting)]
            conn.execute(pi.insert(), rows_)
        return now

    times = {}
    for waiting in (100, ctx.scale(10_000, 1_000)):
        fill(waiting)
        t0 = time.perf_counter()
        out = svc.tick(limit=1000)
        times[waiting] = time.perf_counter() - t0
        assert out["due"] == 100, out
    small, big = sorted(times)
    rows.append(result("workflow.tick_100_due", ops=100, engine_times=[times[big]], baseline_times=[times[small]],
                       extra={"waiting_small": small, "waiting_big": big,
                              "ratio_big_vs_small": round(times[big] / times[small], 3)}))
    lm.dispose()
    return rows
