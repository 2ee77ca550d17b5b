"""Write an installed bundle back out, and take one out of service.

Export produces exactly the bundle format that install reads -- readable YAML, the BPMN XML, the
scripts -- from the *current published* definitions, so changes made later in the designer are
included and can be reviewed in git.
"""
from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import sqlalchemy as sa

from engine import audit
from engine.errors import NotFound
from engine.meta import store
from engine.meta.bundle import FOLDERS
from engine.meta.yamlpos import dump
from engine.security import Actor

_FOLDER_OF = {kind: folder for folder, kind in FOLDERS.items()}


def export_files(conn: sa.Connection, app: str) -> dict[str, bytes]:
    row = conn.execute(sa.select(store.apps).where(store.apps.c.key == app)).mappings().first()
    if row is None:
        raise NotFound(f"no installed bundle `{app}`")
    files: dict[str, bytes] = {"app.yaml": dump(row["manifest"]).encode("utf-8")}
    roles_files: dict[str, list] = {}
    for d in store.current(conn, app=app):
        if d.kind == "role":
            roles_files.setdefault(d.file or "roles.yaml", []).append(d.body)
            continue
        if d.kind == "workflow":
            files[d.file or f"workflows/{d.key}.bpmn"] = d.body["xml"].encode("utf-8")
        elif d.kind == "script":
            files[d.file or f"scripts/{d.key}.py"] = d.body["source"].encode("utf-8")
        elif d.kind == "fixture" and (d.file or "").endswith(".csv"):
            records = d.body.get("records") or []
            header = list(dict.fromkeys(k for r in records for k in r))
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            w.writerow(header)
            for r in records:
                w.writerow(["" if r.get(h) is None else r.get(h) for h in header])
            files[d.file] = buf.getvalue().encode("utf-8")
        else:
            files[d.file or f"{_FOLDER_OF[d.kind]}/{d.key}.yaml"] = dump(d.body).encode("utf-8")
    for name, roles in roles_files.items():
        files[name] = dump({"roles": roles}).encode("utf-8")
    return files


def export_bundle(engine: sa.Engine, app: str, target: str | Path) -> list[str]:
    """Write to a folder, or to a .zip when ``target`` ends in .zip. Returns the file names."""
    with engine.connect() as conn:
        files = export_files(conn, app)
    target = Path(target)
    if target.suffix == ".zip":
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in sorted(files.items()):
                zf.writestr(f"{app}/{name}", data)
    else:
        for name, data in files.items():
            p = target / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
    return sorted(files)


def uninstall(engine: sa.Engine, app: str, actor: Actor, purge: bool = False, model=None) -> list[str]:
    """Retire the bundle's definitions. Its tables and data stay unless ``purge`` (then dropped)."""
    done = []
    with engine.begin() as conn:
        row = conn.execute(sa.select(store.apps).where(store.apps.c.key == app)).mappings().first()
        if row is None:
            raise NotFound(f"no installed bundle `{app}`")
        for d in store.current(conn, app=app):
            store.retire(conn, app, d.kind, d.key)
        if purge and model is not None:
            tables = [e.table for ent in model.entities.values() if ent.app == app for e in ent.walk()]
            for t in reversed(sorted(tables, key=lambda t: model.metadata.sorted_tables.index(t))):
                t.drop(conn, checkfirst=True)
                done.append(f"dropped table {t.name}")
            conn.execute(store.apps.delete().where(store.apps.c.key == app))
        else:
            conn.execute(store.apps.update().where(store.apps.c.key == app).values(status="uninstalled"))
        store.bump_revision(conn)
        audit.append(conn, "uninstall", actor_id=actor.user_id, actor=actor.username, app=app,
                     detail={"purge": purge, "dropped": done})
    return done
