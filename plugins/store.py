"""Installed plugins in the database: install, enable/disable, configure, change a script.

Every change needs :func:`plugins.permissions.require_administer`, bumps the plugin's revision,
adds (never replaces) script versions, and writes an audit entry in the same transaction, so
"who changed this script, when, from what to what" is always answerable.
"""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa

from engine import audit
from engine.errors import InvalidInput, NotFound, Problem
from plugins.manifest import Manifest, check_config, check_manifest, sha256
from plugins.permissions import require_administer
from plugins.tables import plugin_scripts, plugins


def _now():
    return datetime.now(timezone.utc)


def _audit(conn, actor, action: str, name: str, *, before=None, after=None, detail=None) -> None:
    audit.append(conn, action, actor_id=actor.user_id, actor=actor.username, address=actor.address,
                 entity="loom_plugin", record_id=name, before=before, after=after, detail=detail)


def row(conn, name: str):
    r = conn.execute(sa.select(plugins).where(plugins.c.name == name)).mappings().first()
    if r is None:
        raise NotFound(f"no plugin `{name}` is installed", problems=[Problem(f"no plugin `{name}`", code="not_found")])
    return r


def _latest_versions(conn, name: str) -> dict[str, tuple[int, str]]:
    t = plugin_scripts
    out = {}
    for r in conn.execute(sa.select(t.c.path, t.c.version, t.c.sha256).where(t.c.plugin == name)
                          .order_by(t.c.path, t.c.version)):
        out[r.path] = (r.version, r.sha256)
    return out


def _store_scripts(conn, manifest: Manifest, actor) -> tuple[dict, dict]:
    """Add a version for each new or changed script; (path -> current version, path -> change)."""
    latest = _latest_versions(conn, manifest.name)
    versions, changes = {}, {}
    for path, source in sorted(manifest.scripts.items()):
        digest = sha256(source)
        ver, old_digest = latest.get(path, (0, None))
        if old_digest == digest:
            versions[path] = ver            # unchanged: no new version
            continue
        versions[path] = ver + 1
        conn.execute(plugin_scripts.insert().values(
            plugin=manifest.name, path=path, version=ver + 1, plugin_version=manifest.version, source=source,
            sha256=digest, created_at=_now(), created_by=actor.username))
        changes[path] = {"version": ver + 1, "sha256": digest, "previous_sha256": old_digest}
    return versions, changes


def install(conn, manifest: Manifest, actor, *, enable: bool | None = None) -> dict:
    """Install or upgrade a checked plugin. A new plugin starts disabled unless ``enable``."""
    require_administer(actor, "install plugins")
    existing = conn.execute(sa.select(plugins).where(plugins.c.name == manifest.name)).mappings().first()
    now = _now()
    versions, changes = _store_scripts(conn, manifest, actor)
    config = {**manifest.config_defaults, **(dict(existing["config"]) if existing else {})}
    try:
        check_config(manifest.data, config)
    except InvalidInput:
        config = manifest.config_defaults        # the new schema refuses old values: start from the defaults
    if existing is None:
        enabled = bool(enable)
        conn.execute(plugins.insert().values(name=manifest.name, version=manifest.version, manifest=manifest.data,
                                             scripts=versions, config=config, enabled=enabled, revision=1,
                                             installed_at=now, updated_at=now, updated_by=actor.username))
    else:
        enabled = existing["enabled"] if enable is None else bool(enable)
        conn.execute(plugins.update().where(plugins.c.name == manifest.name).values(
            version=manifest.version, manifest=manifest.data, scripts=versions, config=config, enabled=enabled,
            revision=existing["revision"] + 1, updated_at=now, updated_by=actor.username))
    _audit(conn, actor, "plugin.install" if existing is None else "plugin.upgrade", manifest.name,
           before={"version": existing["version"], "scripts": existing["scripts"]} if existing else None,
           after={"version": manifest.version, "scripts": versions, "enabled": enabled}, detail={"changed": changes})
    return {"name": manifest.name, "version": manifest.version, "enabled": enabled, "scripts": versions,
            "changed": sorted(changes), "new": existing is None}


def set_enabled(conn, name: str, enabled: bool, actor) -> bool:
    """Enable or disable; returns whether anything changed."""
    require_administer(actor, "enable or disable plugins")
    r = row(conn, name)
    if r["enabled"] == enabled:
        return False
    conn.execute(plugins.update().where(plugins.c.name == name).values(
        enabled=enabled, revision=r["revision"] + 1, updated_at=_now(), updated_by=actor.username))
    _audit(conn, actor, "plugin.enable" if enabled else "plugin.disable", name,
           before={"enabled": r["enabled"]}, after={"enabled": enabled})
    return True


def configure(conn, name: str, values: dict, actor) -> dict:
    """Change configuration values (merged over the current ones), checked against the plugin's schema."""
    require_administer(actor, "configure plugins")
    r = row(conn, name)
    config = {**dict(r["config"]), **values}
    check_config(r["manifest"], config)
    conn.execute(plugins.update().where(plugins.c.name == name).values(
        config=config, revision=r["revision"] + 1, updated_at=_now(), updated_by=actor.username))
    _audit(conn, actor, "plugin.configure", name, before={k: r["config"].get(k) for k in values},
           after={k: config[k] for k in values})
    return config


def update_script(conn, name: str, path: str, source: str, actor) -> int:
    """Replace one script of an installed plugin (a new version); checked like an install. Returns the version."""
    require_administer(actor, "change plugin scripts")
    r = row(conn, name)
    scripts = current_sources(conn, name, r["scripts"])
    if path not in scripts:
        raise InvalidInput(f"plugin `{name}` has no script `{path}`",
                           problems=[Problem(f"no script `{path}`", field="path", code="not_found")])
    scripts[path] = source
    manifest = check_manifest(dict(r["manifest"]), scripts)
    versions, changes = _store_scripts(conn, manifest, actor)
    if not changes:
        return versions[path]
    conn.execute(plugins.update().where(plugins.c.name == name).values(
        scripts=versions, revision=r["revision"] + 1, updated_at=_now(), updated_by=actor.username))
    _audit(conn, actor, "plugin.script", name, before={"path": path, "version": r["scripts"].get(path)},
           after={"path": path, "version": versions[path]}, detail=changes)
    return versions[path]


def current_sources(conn, name: str, versions: dict) -> dict[str, str]:
    t = plugin_scripts
    out = {}
    for path, ver in versions.items():
        src = conn.execute(sa.select(t.c.source).where(t.c.plugin == name, t.c.path == path, t.c.version == ver)).scalar()
        if src is not None:
            out[path] = src
    return out


def script_history(conn, name: str, path: str | None = None) -> list[dict]:
    t = plugin_scripts
    q = sa.select(t.c.path, t.c.version, t.c.plugin_version, t.c.sha256, t.c.created_at, t.c.created_by) \
        .where(t.c.plugin == name).order_by(t.c.path, t.c.version)
    if path:
        q = q.where(t.c.path == path)
    return [dict(r) for r in conn.execute(q).mappings()]


def script_source(conn, name: str, path: str, version: int) -> str:
    t = plugin_scripts
    src = conn.execute(sa.select(t.c.source).where(t.c.plugin == name, t.c.path == path, t.c.version == version)).scalar()
    if src is None:
        raise NotFound(f"plugin `{name}` has no version {version} of `{path}`")
    return src


def list_plugins(conn) -> list[dict]:
    return [{"name": r.name, "version": r.version, "enabled": r.enabled, "label": r.manifest.get("label"),
             "revision": r.revision, "updated_at": r.updated_at, "updated_by": r.updated_by}
            for r in conn.execute(sa.select(plugins).order_by(plugins.c.name))]


def load_all(conn) -> list[tuple[dict, dict[str, str]]]:
    """Every installed plugin with the source of its current scripts (the runtime keeps the enabled ones)."""
    out = []
    for r in conn.execute(sa.select(plugins).order_by(plugins.c.name)).mappings():
        out.append((dict(r), current_sources(conn, r["name"], r["scripts"])))
    return out


def revision(conn) -> tuple:
    """Changes anywhere (install, enable, config, scripts) change this pair."""
    r = conn.execute(sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(plugins.c.revision), 0))).first()
    return (int(r[0]), int(r[1]))
