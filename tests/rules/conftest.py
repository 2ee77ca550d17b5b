"""Fixtures for the monitoring tests: the `surveil` bundle, event builders, in-memory programs,
and a real Celery worker (only with LOOM_TEST_BROKER_URL)."""
from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import BUNDLES, ROOT

T0 = 1_700_000_000.0          # 2023-11-14T22:13:20Z
RULESET = "surveil.surveillance"


def ev(eid, kind, ts, **fields) -> dict:
    return {"id": eid, "kind": kind, "ts": T0 + ts, **fields}


def trade(eid, ts, account="A1", amount=1000.0, price=10.0, symbol="600000", **more) -> dict:
    return ev(eid, "trade", ts, account=account, amount=amount, price=price, symbol=symbol, **more)


def random_events(n: int, seed: int = 7, accounts: int = 25) -> list[dict]:
    """A reproducible mix of trades, orders and cancels over many accounts."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        acct = f"A{rnd.randint(1, accounts)}"
        kind = rnd.choice(["trade", "trade", "order", "order", "cancel"])
        e = ev(f"E{i}", kind, i * 5 + rnd.randint(0, 4), account=acct)
        if kind == "trade":
            e.update(symbol=rnd.choice(["600000", "600036", "000001"]), price=round(rnd.uniform(8, 35), 2),
                     amount=round(rnd.uniform(1000, 600000), 2))
        out.append(e)
    return out


def make_run(rules: list[dict], ruleset: dict | None = None, typologies: list[dict] = (), refs: list[dict] = ()):
    """An in-memory compiled program (no database) from definition bodies, all active."""
    from engine.rules import Instance, TypologyInstance, build, parse_rule, parse_ruleset, parse_typology
    from engine.rules.service import Running
    rs = parse_ruleset("t", ruleset or {"key": "rs", "kind": "ruleset", "label": "rs", "group_by": "account",
                                        "suppress_seconds": 0})
    insts = [Instance(i, parse_rule(b), "active") for i, b in enumerate(rules)]
    index = {i.rule.key: i.index for i in insts}
    tys = []
    for j, b in enumerate(typologies):
        t = parse_typology(b)
        tys.append(TypologyInstance(j, t, "active", [(index[k], w) for k, w in t.rules]))
    prog = build(rs, insts, tys)
    for i, table in enumerate(refs):
        prog.refs[i].update(table)
    return Running(rs, prog, ())


def history(events: list[dict], group_by: str = "account") -> list[tuple]:
    """Events as the evaluator takes them, in event-time order."""
    from engine.rules import normalize
    rows = normalize(events)
    out = [(i + 1, r["ext_id"], r["kind"], r["ts"], str(r["payload"][group_by]), r["payload"])
           for i, r in enumerate(rows) if r["payload"].get(group_by) is not None]
    return sorted(out, key=lambda h: (h[3], h[0]))


def feed(run, events: list[dict], errors: list | None = None) -> list[dict]:
    """Stream events through a program; return every hit with its feature values by name."""
    from engine.rules.codegen import _ids
    fn = run.program.run
    states: dict = {}
    out, hits, errs = [], [], []
    for seq, ext, kind, ts, g, payload in history(events, run.ruleset.group_by):
        st = states.setdefault(g, run.program.new_state())
        fn(kind, payload, ts, ext, st, hits, errs)
        for idx, score, values, buffers in hits:
            evidence = _ids(buffers, ext)
            skind, subject, _ = run.subject(idx)
            feats = dict(zip([f.key for f in subject.features], values)) if skind == "rule" else {}
            out.append({"rule": subject.key, "event": ext, "score": score, "features": feats,
                        "evidence": evidence, "group": g})
        hits.clear()
        if errors is None:
            assert not errs, errs
        else:
            errors.extend(errs)
        errs.clear()
    return out


@pytest.fixture
def surveil(loom):
    loom.install(BUNDLES / "surveil")
    return loom


@pytest.fixture
def svc(surveil):
    from engine.rules import service
    return service(surveil)


def activate_all(svc, app="surveil", by="checker"):
    from engine.security import Actor
    actor = Actor(user_id=None, username=by, is_admin=True)
    for v in svc.versions(app):
        if v["status"] == "shadow":
            svc.activate(app, v["key"], v["version"], actor)


def rewrite_rule(bundle: Path, name: str, **changes) -> None:
    path = bundle / "rules" / f"{name}.yaml"
    body = yaml.safe_load(path.read_text(encoding="utf-8"))
    body.update(changes)
    path.write_text(yaml.safe_dump(body, allow_unicode=True, sort_keys=False), encoding="utf-8")


# -- a real Celery worker ------------------------------------------------------------------------

BROKER = os.environ.get("LOOM_TEST_BROKER_URL", "")


@pytest.fixture
def celery_worker_env(settings, tmp_path):
    """Start ``celery -A engine.runtime.celery_app:celery worker`` on the test's database; stop it
    by its own PID afterwards."""
    if not BROKER:
        pytest.skip("LOOM_TEST_BROKER_URL is not set")
    env = dict(os.environ, LOOM_BROKER_URL=BROKER, LOOM_DATABASE_URL=settings.database_url,
               LOOM_DB_SCHEMA=settings.db_schema or "", LOOM_INSTANCE_PATH=str(settings.instance_path),
               LOOM_FIELD_KEY="test-field-key", LOOM_SECRET_KEY="test-secret", PYTHONPATH=str(ROOT))
    celery_bin = shutil.which("celery", path=str(Path(sys.executable).parent)) or "celery"
    log = open(tmp_path / "worker.log", "w")
    proc = subprocess.Popen([celery_bin, "-A", "engine.runtime.celery_app:celery", "worker", "-I", "engine.rules.tasks",
                             "--pool=solo", "--concurrency=1", "--loglevel=INFO", "-n", f"rules-{os.getpid()}@%h"],
                            cwd=str(ROOT), env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while time.time() < deadline:
        if "ready" in (tmp_path / "worker.log").read_text():
            break
        if proc.poll() is not None:
            break
        time.sleep(0.3)
    else:
        proc.terminate()
        pytest.fail("the Celery worker did not start: " + (tmp_path / "worker.log").read_text()[-2000:])
    if proc.poll() is not None:
        pytest.fail("the Celery worker exited: " + (tmp_path / "worker.log").read_text()[-2000:])
    yield env
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
