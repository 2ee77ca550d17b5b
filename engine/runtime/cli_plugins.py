"""``loom plugin ...`` and ``loom script run``: install and try sandboxed scripts from the console.

At the console the operator acts as the engine (``cli:<os user>``, a system actor) for plugin
administration, which is audited under that name. ``loom script run FILE --as USER`` runs a script
with exactly that user's rights, so IT can see what a script would do for someone before wiring
it into a hook.
"""
from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path

import click

from engine.errors import LoomError


def _loom():
    from engine.runtime import cli
    return cli._loom()


def _operator():
    from engine.security import Actor
    return Actor.system(f"cli:{getpass.getuser()}")


def _fail(exc: LoomError):
    from engine.runtime.cli import _fail as fail
    fail(exc)


def _dump(value) -> str:
    from engine.db import dumps
    try:
        return json.dumps(json.loads(dumps(value)), ensure_ascii=False, indent=2, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def _change(fn):
    loom = _loom()
    try:
        with loom.db.begin() as conn:
            result = fn(conn, _operator())
    except LoomError as exc:
        _fail(exc)
    return result


@click.group("plugin")
def plugin():
    """Sandboxed plugins: list, install, enable, disable, show, configure, set-script."""


@plugin.command("list")
def plugin_list():
    """Installed plugins and whether each is enabled."""
    from plugins import store
    loom = _loom()
    with loom.db.connect() as conn:
        rows = store.list_plugins(conn)
    if not rows:
        click.echo("no plugins installed")
    for r in rows:
        state = click.style("enabled", fg="green") if r["enabled"] else click.style("disabled", fg="yellow")
        label = r["label"].get("en") if isinstance(r["label"], dict) else r["label"]
        click.echo(f"{r['name']:<24} {r['version']:<10} {state:<10}  {label}")


@plugin.command("install")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@click.option("--enable", is_flag=True, help="enable it right away (a new plugin starts disabled)")
def plugin_install(path, enable):
    """Check and install (or upgrade) the plugin in folder PATH; every changed script becomes a new version."""
    from plugins import read_plugin, store
    try:
        manifest = read_plugin(path)
    except LoomError as exc:
        _fail(exc)
    r = _change(lambda c, a: store.install(c, manifest, a, enable=enable or None))
    verb = "installed" if r["new"] else "upgraded"
    click.secho(f"{verb} {r['name']} {r['version']} ({'enabled' if r['enabled'] else 'disabled'})", fg="green")
    for p in r["changed"]:
        click.echo(f"  {p}: version {r['scripts'][p]}")


@plugin.command("enable")
@click.argument("name")
def plugin_enable(name):
    """Enable NAME: its hooks run from the next request on, in every process."""
    from plugins import store
    changed = _change(lambda c, a: store.set_enabled(c, name, True, a))
    click.echo(f"{name} enabled" if changed else f"{name} was already enabled")


@plugin.command("disable")
@click.argument("name")
def plugin_disable(name):
    """Disable NAME: its hooks stop running; its scripts and history stay."""
    from plugins import store
    changed = _change(lambda c, a: store.set_enabled(c, name, False, a))
    click.echo(f"{name} disabled" if changed else f"{name} was already disabled")


@plugin.command("show")
@click.argument("name")
@click.option("--source", "source_path", help="print the current source of this script")
@click.option("--version", "version", type=int, help="with --source: that version instead of the current one")
def plugin_show(name, source_path, version):
    """Manifest, configuration, hooks and the version history of each script."""
    from plugins import store
    loom = _loom()
    try:
        with loom.db.connect() as conn:
            r = store.row(conn, name)
            if source_path:
                ver = version or r["scripts"].get(source_path)
                click.echo(store.script_source(conn, name, source_path, ver or 0), nl=False)
                return
            history = store.script_history(conn, name)
    except LoomError as exc:
        _fail(exc)
    click.echo(f"{r['name']} {r['version']}  {'enabled' if r['enabled'] else 'disabled'}  "
               f"(revision {r['revision']}, changed {r['updated_at']:%Y-%m-%d %H:%M} by {r['updated_by']})")
    click.echo("configuration: " + _dump(r["config"]))
    click.echo("permissions: " + _dump(r["manifest"].get("permissions") or {}))
    click.echo("hooks:")
    for h in r["manifest"].get("hooks") or []:
        extra = " ".join(f"{k}={h[k]}" for k in ("target", "name", "cron", "channel") if h.get(k))
        click.echo(f"  {h['point']:<14} {h['script']}:{h['function']} {extra}")
    click.echo("scripts:")
    for h in history:
        current = " (current)" if r["scripts"].get(h["path"]) == h["version"] else ""
        click.echo(f"  {h['path']} v{h['version']} {h['sha256'][:12]} {h['created_at']:%Y-%m-%d %H:%M} "
                   f"{h['created_by']}{current}")


@plugin.command("configure")
@click.argument("name")
@click.argument("values", nargs=-1, required=True, metavar="KEY=VALUE...")
def plugin_configure(name, values):
    """Set configuration values (VALUE is JSON, or text), checked against the plugin's schema."""
    from plugins import store
    parsed = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep:
            click.secho(f"error: `{item}` is not KEY=VALUE", fg="red", err=True)
            sys.exit(2)
        try:
            parsed[key] = json.loads(raw)
        except ValueError:
            parsed[key] = raw
    config = _change(lambda c, a: store.configure(c, name, parsed, a))
    click.echo(_dump(config))


@plugin.command("set-script")
@click.argument("name")
@click.argument("script")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def plugin_set_script(name, script, file):
    """Replace SCRIPT of plugin NAME with FILE (checked, stored as a new version, audited)."""
    from plugins import store
    source = Path(file).read_text(encoding="utf-8")
    version = _change(lambda c, a: store.update_script(c, name, script, source, a))
    click.echo(f"{name}/{script} is now version {version}")


@click.group("script")
def script():
    """Try restricted Python scripts in the sandbox."""


@script.command("run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--as", "as_user", help="run with this user's rights (default: the engine itself)")
@click.option("--data", default="{}", help="JSON object: the variables the script starts with")
@click.option("--seconds", type=float, help="time budget (default: the sandbox default)")
def script_run(file, as_user, data, seconds):
    """Run FILE in the sandbox; print the variables it leaves and what it logged."""
    from engine.sandbox import Budget, SandboxError
    try:
        variables = json.loads(data)
    except ValueError as exc:
        click.secho(f"error: --data is not JSON: {exc}", fg="red", err=True)
        sys.exit(2)
    if not isinstance(variables, dict):
        click.secho("error: --data must be a JSON object", fg="red", err=True)
        sys.exit(2)
    loom = _loom()
    try:
        actor = _actor(loom, as_user) if as_user else _operator()
        out, messages = loom.extensions["plugins"].run_script(
            Path(file).read_text(encoding="utf-8"), actor, variables, name=str(file),
            budget=Budget(seconds=seconds) if seconds else None)
    except SandboxError as exc:
        for m in exc.messages:
            click.echo(f"log: {m}")
        _fail(exc)
    except LoomError as exc:
        _fail(exc)
    for m in messages:
        click.echo(f"log: {m}")
    click.echo(_dump(out))


def _actor(loom, username: str):
    from engine.runtime.web.auth import actor_for_user
    from engine.security.admin import user_row
    with loom.db.connect() as conn:
        return actor_for_user(conn, user_row(conn, username)["id"], loom=loom)


def register(main: click.Group) -> None:
    main.add_command(plugin)
    main.add_command(script)


__all__ = ["register"]
