"""Compare definitions between two places: bundle folders, packages, or databases.

Used to check a move from a test environment to production: export from test, diff against
production, install. Data never moves, only definitions (and fixtures, which are reference data).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from engine.errors import InvalidInput, NotFound, Problem
from engine.meta import store
from engine.meta.bundle import read_bundle
from engine.meta.merge import diff

STORED = ("entity", "form", "role", "script", "workflow", "report", "dashboard", "rule", "fixture")


@dataclass
class DefinitionDiff:
    kind: str
    key: str
    status: str                      # added | removed | changed
    details: list[str] = field(default_factory=list)


def definitions_from_bundle(source: str | Path) -> tuple[str, dict]:
    bundle = read_bundle(source)
    if bundle.problems:
        raise InvalidInput(f"cannot read {source}", problems=bundle.problems)
    return bundle.key, {(d.kind, d.key): d.body for d in bundle.definitions if d.kind in STORED}


def definitions_from_database(url: str, app: str, schema: str = "") -> dict:
    from engine.db import create_engine
    engine = create_engine(url, schema)
    try:
        with engine.connect() as conn:
            if conn.execute(sa.select(store.apps.c.key).where(store.apps.c.key == app)).first() is None:
                raise NotFound(f"bundle `{app}` is not installed in {engine.url.render_as_string(hide_password=True)}")
            return {(d.kind, d.key): d.body for d in store.current(conn, app=app)}
    finally:
        engine.dispose()


def compare(left: dict, right: dict) -> list[DefinitionDiff]:
    out = []
    for k in sorted(set(left) | set(right)):
        if k not in right:
            out.append(DefinitionDiff(*k, "removed"))
        elif k not in left:
            out.append(DefinitionDiff(*k, "added"))
        elif left[k] != right[k]:
            out.append(DefinitionDiff(*k, "changed", diff(left[k], right[k])))
    return out


def resolve(side: str, app: str | None, default_url: str, default_schema: str) -> tuple[str, dict]:
    """A side is a bundle path or package, `db` (this database) or a database URL."""
    if side == "db" or "://" in side:
        if not app:
            raise InvalidInput(problems=[Problem("comparing a database needs --app KEY", code="parameter")])
        url, schema = (default_url, default_schema) if side == "db" else (side, "")
        return app, definitions_from_database(url, app, schema)
    return definitions_from_bundle(side)
