"""``python -m bench install``: installing a 50-entity bundle vs plain ``metadata.create_all``.

The engine path reads the bundle from disk, validates it against the meta-schemas, checks every
cross-reference, builds the model, plans the migration, publishes 50+ versioned definitions,
creates the tables and writes the audit entry, all in one transaction. The baseline creates the
very same tables with SQLAlchemy's ``create_all`` and nothing else; both must end with the same
tables and columns.
"""
from __future__ import annotations

import uuid
from pathlib import Path

import sqlalchemy as sa
import yaml

from bench.harness import Context, result, timed

N_ENTITIES = 50


def write_bundle(root: Path, n: int) -> Path:
    (root / "entities").mkdir(parents=True, exist_ok=True)
    (root / "app.yaml").write_text(yaml.safe_dump({"key": "bench", "version": "1.0.0",
                                                   "title": {"zh-CN": "基准", "en": "Bench"}}), encoding="utf-8")
    for i in range(n):
        fields = [
            {"key": "name", "type": "text", "label": {"zh-CN": "名称", "en": "Name"}, "required": True},
            {"key": "code", "type": "text", "unique": True, "max_length": 20},
            {"key": "amount", "type": "decimal", "precision": 18, "scale": 2},
            {"key": "qty", "type": "integer", "min": 0},
            {"key": "status", "type": "select", "options": ["new", "open", "closed"]},
            {"key": "opened", "type": "date"},
            {"key": "active", "type": "boolean"},
            {"key": "notes", "type": "long_text"},
            {"key": "lines", "type": "table", "fields": [{"key": "item", "type": "text"},
                                                          {"key": "price", "type": "decimal"}]},
        ]
        if i:
            fields.append({"key": "parent", "type": "link", "entity": f"e{i - 1:02d}"})
        (root / "entities" / f"e{i:02d}.yaml").write_text(
            yaml.safe_dump({"key": f"e{i:02d}", "label": {"zh-CN": f"实体{i}", "en": f"Entity {i}"}, "fields": fields},
                           allow_unicode=True), encoding="utf-8")
    return root


def shape(engine: sa.Engine) -> dict:
    insp = sa.inspect(engine)
    return {t: sorted(c["name"] for c in insp.get_columns(t)) for t in insp.get_table_names() if t.startswith("bench_")}


def run(ctx: Context) -> list[dict]:
    from engine.runtime.loom import Loom
    from engine.settings import Settings

    n = ctx.scale(N_ENTITIES, 10)
    bundle = write_bundle(ctx.workdir / "bundle", n)
    runs = ctx.scale(5, 2)

    def fresh_settings(tag: str) -> Settings:
        inst = ctx.workdir / f"{tag}-{uuid.uuid4().hex[:8]}"
        env = {"LOOM_INSTANCE_PATH": str(inst), "LOOM_FIELD_KEY": "k", "LOOM_SECRET_KEY": "k"}
        if ctx.database_url:
            env.update(LOOM_DATABASE_URL=ctx.database_url, LOOM_DB_SCHEMA="b_" + uuid.uuid4().hex[:12])
        return Settings.from_env(env)

    shapes = {}

    def engine_install():
        loom = Loom(fresh_settings("engine"))
        loom.init_db()
        loom.install(bundle)
        shapes["engine"] = shape(loom.db)
        model = loom.model
        loom.dispose()
        return model

    model = engine_install()

    def baseline_create_all():
        s = fresh_settings("base")
        from engine.db import create_engine
        eng = create_engine(s.database_url, s.db_schema)
        md = sa.MetaData()
        for t in model.metadata.sorted_tables:
            t.to_metadata(md)
        md.create_all(eng)
        shapes["baseline"] = shape(eng)
        eng.dispose()

    engine_times, _ = timed(engine_install, runs=runs)
    base_times, _ = timed(baseline_create_all, runs=runs)
    assert shapes["engine"] == shapes["baseline"], "engine and baseline built different tables"
    return [result("install.bundle_50_entities", ops=1, engine_times=engine_times, baseline_times=base_times,
                   unit="s", higher_is_better=False,
                   settings={"entities": n, "tables": len(shapes["engine"]),
                             "database": "postgresql" if ctx.database_url else "sqlite"},
                   extra={"note": "engine = read + validate + plan + publish + DDL + audit, one transaction"})]
