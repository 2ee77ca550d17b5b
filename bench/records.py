"""Records benchmarks: ``python -m bench records [--quick]``.

Three ratios, each measured in one run on one database (``LOOM_BENCH_DATABASE_URL`` when set,
else a temporary SQLite file), on the same 15-field records:

* ``records.create_http`` -- POST /api/v1/<app>/<entity> through the Flask test client (token auth,
  validation, defaults, audit, events) vs a hand-written Flask endpoint doing jsonschema
  (Draft202012Validator built once) + a SQLAlchemy Core insert. Target >= 0.8.
* ``records.bulk_import`` -- ``loom.records.import_rows`` (validation, batch checks, audit, COPY on
  PostgreSQL) vs SQLAlchemy Core executemany of already-typed rows, 1000 rows per transaction.
  Target >= 0.5 on SQLite, >= 1.0 on PostgreSQL.
* ``records.validate`` -- ``RecordValidator.load`` vs a compiled fastjsonschema validator.
  Target >= 0.5.

Each pair must produce the same result (same row count and sums, same accepted records) before
a ratio is printed.
"""
from __future__ import annotations

import random
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import sqlalchemy as sa
import yaml

from bench.harness import Context, result, timed

ENTITY = {
    "key": "account",
    "label": {"zh-CN": "资金账户", "en": "Account"},
    "fields": [
        {"key": "name", "type": "text", "label": "姓名", "required": True, "max_length": 50},
        {"key": "mobile", "type": "phone", "label": "手机号"},
        {"key": "email", "type": "email", "label": "邮箱"},
        {"key": "risk_level", "type": "select", "label": "风险等级", "required": True,
         "options": ["C1", "C2", "C3", "C4", "C5"]},
        {"key": "channel", "type": "select", "label": "渠道", "options": ["app", "branch", "web"]},
        {"key": "aum", "type": "decimal", "label": "资产", "precision": 18, "scale": 2, "min": 0},
        {"key": "cash", "type": "decimal", "label": "现金", "precision": 18, "scale": 2},
        {"key": "fee_rate", "type": "decimal", "label": "佣金率", "precision": 10, "scale": 4, "min": 0},
        {"key": "trades", "type": "integer", "label": "交易次数", "min": 0},
        {"key": "age", "type": "integer", "label": "年龄", "min": 18, "max": 120},
        {"key": "birthday", "type": "date", "label": "生日"},
        {"key": "opened_at", "type": "datetime", "label": "开户时间"},
        {"key": "is_professional", "type": "boolean", "label": "专业投资者"},
        {"key": "city", "type": "text", "label": "城市", "max_length": 40},
        {"key": "notes", "type": "long_text", "label": "备注"},
    ],
}

JSON_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "risk_level"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 50},
        "mobile": {"type": ["string", "null"], "pattern": r"^1[3-9]\d{9}$"},
        "email": {"type": ["string", "null"], "pattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$"},
        "risk_level": {"enum": ["C1", "C2", "C3", "C4", "C5"]},
        "channel": {"enum": ["app", "branch", "web", None]},
        "aum": {"type": ["string", "null"], "pattern": r"^\d{1,16}(\.\d{1,2})?$"},
        "cash": {"type": ["string", "null"], "pattern": r"^-?\d{1,16}(\.\d{1,2})?$"},
        "fee_rate": {"type": ["string", "null"], "pattern": r"^\d{1,6}(\.\d{1,4})?$"},
        "trades": {"type": ["integer", "null"], "minimum": 0},
        "age": {"type": ["integer", "null"], "minimum": 18, "maximum": 120},
        "birthday": {"type": ["string", "null"], "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
        "opened_at": {"type": ["string", "null"], "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}"},
        "is_professional": {"type": ["boolean", "null"]},
        "city": {"type": ["string", "null"], "maxLength": 40},
        "notes": {"type": ["string", "null"]},
    },
}

CHINA = timezone(timedelta(hours=8))


def make_records(n: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    cities = ["北京", "上海", "深圳", "杭州", "成都"]
    out = []
    for i in range(n):
        out.append({
            "name": f"客户{i:06d}",
            "mobile": f"1{rng.choice('3589')}{rng.randrange(10**9):09d}",
            "email": f"c{i}@example.cn",
            "risk_level": rng.choice(["C1", "C2", "C3", "C4", "C5"]),
            "channel": rng.choice(["app", "branch", "web"]),
            "aum": f"{rng.randrange(10**9) / 100:.2f}",
            "cash": f"{rng.randrange(-10**6, 10**7) / 100:.2f}",
            "fee_rate": f"{rng.randrange(1, 300) / 10000:.4f}",
            "trades": rng.randrange(0, 5000),
            "age": rng.randrange(18, 90),
            "birthday": (date(1950, 1, 1) + timedelta(days=rng.randrange(20000))).isoformat(),
            "opened_at": (datetime(2015, 1, 1) + timedelta(minutes=rng.randrange(5_000_000))).isoformat(timespec="seconds"),
            "is_professional": rng.random() < 0.1,
            "city": rng.choice(cities),
            "notes": "备注" * rng.randrange(0, 10),
        })
    return out


def typed(rec: dict) -> dict:
    """The hand-written baseline's own conversion to column values."""
    out = dict(rec)
    for k in ("aum", "cash", "fee_rate"):
        out[k] = Decimal(rec[k])
    out["birthday"] = date.fromisoformat(rec["birthday"])
    out["opened_at"] = datetime.fromisoformat(rec["opened_at"]).replace(tzinfo=CHINA)
    return out


# -- setup ------------------------------------------------------------------------------------------

def _loom(ctx: Context):
    from engine.runtime.loom import Loom
    from engine.settings import Settings

    env = {"LOOM_INSTANCE_PATH": str(ctx.workdir / "instance"), "LOOM_SECRET_KEY": "bench",
           "LOOM_FIELD_KEY": "bench-field-key"}
    if ctx.database_url:
        env["LOOM_DATABASE_URL"] = ctx.database_url
        if ctx.database_url.startswith("postgresql"):
            env["LOOM_DB_SCHEMA"] = "bench_" + uuid.uuid4().hex[:12]
    settings = Settings.from_env(env)
    loom = Loom(settings)
    loom.init_db()
    bundle = ctx.workdir / "bundle"
    (bundle / "entities").mkdir(parents=True, exist_ok=True)
    (bundle / "app.yaml").write_text(yaml.safe_dump({"key": "bench", "version": "1.0.0", "title": "Bench",
                                                     "engine": ">=0.1,<1", "prefix": "bench"}, allow_unicode=True))
    (bundle / "entities" / "account.yaml").write_text(yaml.safe_dump(ENTITY, allow_unicode=True))
    loom.install(bundle)
    return loom, settings


def _baseline_table(loom) -> sa.Table:
    ent = loom.model.entity("bench.account")
    md = sa.MetaData()
    t = sa.Table("bench_baseline_account", md, *[sa.Column(c.name, c.type, primary_key=c.primary_key,
                                                           nullable=c.nullable) for c in ent.table.columns])
    for idx in ent.table.indexes:   # the same indexes as the engine's table, so both pay the same
        sa.Index("b_" + idx.name, *[t.c[c.name] for c in idx.columns], unique=idx.unique)
    md.create_all(loom.db)
    return t


def _clear(loom, *tables) -> None:
    with loom.db.begin() as conn:
        for t in tables:
            conn.execute(t.delete())


def _check_same(loom, a: sa.Table, b: sa.Table) -> tuple:
    with loom.db.connect() as conn:
        def stats(t):
            return conn.execute(sa.select(sa.func.count(), sa.func.sum(t.c.aum), sa.func.sum(t.c.trades),
                                          sa.func.min(t.c.birthday), sa.func.max(t.c.fee_rate))).one()
        sa_, sb = stats(a), stats(b)
    assert tuple(sa_) == tuple(sb), (sa_, sb)
    return tuple(sa_)


def _settings(loom) -> dict:
    return {"database": loom.db.dialect.name}


# -- (c) validation -------------------------------------------------------------------------------

def bench_validate(ctx: Context, loom) -> dict:
    import fastjsonschema

    records = make_records(ctx.scale(20000, 2000), seed=11)
    validator = loom.model.entity("bench.account").validator
    fast = fastjsonschema.compile(JSON_SCHEMA)

    def engine_run():
        load = validator.load
        return sum(1 for r in records if load(r) is not None)

    def baseline_run():
        ok = 0
        for r in records:
            fast(r)
            ok += 1
        return ok

    e_times, e_ok = timed(engine_run)
    b_times, b_ok = timed(baseline_run)
    assert e_ok == b_ok == len(records)
    return result("records.validate", ops=len(records), engine_times=e_times, baseline_times=b_times,
                  unit="ops/s", target=0.5, settings={"records": len(records), "fields": 15,
                                                       "baseline": "fastjsonschema.compile"})


# -- (b) bulk import ------------------------------------------------------------------------------

def bench_import(ctx: Context, loom) -> dict:
    from engine.security import Actor

    n = ctx.scale(20000, 2000)
    records = make_records(n, seed=5)
    ent = loom.model.entity("bench.account")
    base = _baseline_table(loom)
    actor = Actor(user_id=1, username="bench", locale="zh-CN", is_admin=True)
    batch = 1000

    def engine_run():
        _clear(loom, ent.table)
        t0 = time.perf_counter()
        res = loom.records.import_rows(ent, enumerate(records, start=2), actor, batch_size=batch)
        dt = time.perf_counter() - t0
        assert res.inserted == n, res.to_dict()
        return dt

    def baseline_run():
        _clear(loom, base)
        t0 = time.perf_counter()
        now = datetime.now(timezone.utc)
        for i in range(0, n, batch):
            rows = []
            for rec in records[i:i + batch]:
                row = typed(rec)
                row.update(created_at=now, updated_at=now, created_by=1, updated_by=1, version=1)
                rows.append(row)
            with loom.db.begin() as conn:
                conn.execute(base.insert(), rows)
        return time.perf_counter() - t0

    # the clearing is not timed: each run returns its own elapsed time
    e_times = [engine_run() for _ in range(4)][1:]
    b_times = [baseline_run() for _ in range(4)][1:]
    same = _check_same(loom, ent.table, base)
    target = 1.0 if loom.db.dialect.name == "postgresql" else 0.5
    return result("records.bulk_import", ops=n, engine_times=e_times, baseline_times=b_times, target=target,
                  settings={**_settings(loom), "rows": n, "batch": batch,
                            "baseline": "SQLAlchemy Core executemany of typed rows"},
                  extra={"checked": [str(v) for v in same]})


# -- (a) create over HTTP -------------------------------------------------------------------------

def _baseline_app(loom, table: sa.Table):
    from flask import Flask, jsonify, request
    from jsonschema import Draft202012Validator

    app = Flask("bench_baseline")
    validator = Draft202012Validator(JSON_SCHEMA)
    db = loom.db

    @app.post("/baseline/account")
    def create():
        data = request.get_json()
        errors = [e.message for e in validator.iter_errors(data)]
        if errors:
            return jsonify({"errors": errors}), 422
        row = typed(data)
        now = datetime.now(timezone.utc)
        row.update(created_at=now, updated_at=now, created_by=1, updated_by=1, version=1)
        with db.begin() as conn:
            new_id = conn.execute(table.insert().values(**row)).inserted_primary_key[0]
        return jsonify({"id": new_id, **data, "version": 1}), 201

    return app


def bench_http(ctx: Context, loom) -> dict:
    from engine.runtime.app import create_app
    from engine.security.users import create_user, issue_token

    n = ctx.scale(1000, 150)
    records = make_records(n, seed=3)
    ent = loom.model.entity("bench.account")
    base = _baseline_table(loom)
    with loom.db.begin() as conn:
        uid = create_user(conn, "bench_http", None, is_admin=True)
        token = issue_token(conn, uid, "bench")
    engine_client = create_app(loom, {"TESTING": True}).test_client()
    base_client = _baseline_app(loom, base).test_client()
    headers = {"Authorization": f"Bearer {token}"}

    def run(client, url, table, extra_headers):
        _clear(loom, table)
        per = []
        t0 = time.perf_counter()
        for rec in records:
            s = time.perf_counter()
            resp = client.post(url, json=rec, headers=extra_headers)
            per.append(time.perf_counter() - s)
            assert resp.status_code == 201, resp.get_data(as_text=True)
        return time.perf_counter() - t0, per

    # engine and baseline runs alternate, so a burst of load on a shared machine hits both alike;
    # the first round warms both up and is not counted
    e_runs, b_runs = [], []
    for _ in range(5):
        e_runs.append(run(engine_client, "/api/v1/bench/account", ent.table, headers))
        b_runs.append(run(base_client, "/baseline/account", base, {}))
    e_runs, b_runs = e_runs[1:], b_runs[1:]
    same = _check_same(loom, ent.table, base)
    return result("records.create_http", ops=n, engine_times=[r[0] for r in e_runs],
                  baseline_times=[r[0] for r in b_runs], per_op=[x for r in e_runs for x in r[1]], target=0.8,
                  settings={**_settings(loom), "requests": n, "client": "Flask test client",
                            "baseline": "Flask + Draft202012Validator + Core insert"},
                  extra={"checked": [str(v) for v in same]})


def run(ctx: Context) -> list[dict]:
    loom, settings = _loom(ctx)
    try:
        return [bench_validate(ctx, loom), bench_import(ctx, loom), bench_http(ctx, loom)]
    finally:
        loom.dispose()
        if settings.db_schema:
            from engine.db import drop_schema
            drop_schema(settings.database_url, settings.db_schema)
