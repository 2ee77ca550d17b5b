"""``loom user``, ``loom token``, ``loom org`` and ``loom audit export``: audited administration
from the command line (the actor is the operating-system user running the command)."""
from __future__ import annotations

import getpass
import json
import os
import sys

import click

from engine.errors import LoomError


def _loom():
    from engine.runtime import cli
    return cli._loom()


def _operator():
    from engine.security import Actor
    return Actor.system(f"cli:{getpass.getuser()}")


def _run(fn):
    """Run ``fn(conn, actor)`` in one transaction; print problems and exit 1 on bad input."""
    from engine.runtime.cli import _fail
    loom = _loom()
    try:
        with loom.db.begin() as conn:
            return fn(conn, _operator())
    except LoomError as exc:
        _fail(exc)


def _uid(conn, username: str) -> int:
    from engine.security.admin import user_row
    return user_row(conn, username)["id"]


@click.group("user")
def user():
    """Users: add, list, set-password, grant, revoke, unlock, deactivate."""


@user.command("add")
@click.argument("username")
@click.option("--role", "roles", multiple=True, help="app.role to grant (repeatable)")
@click.option("--org-unit", help="org unit code (branch or team)")
@click.option("--admin", "is_admin", is_flag=True, help="system administrator: not limited by roles")
@click.option("--display-name")
@click.option("--locale", default="zh-CN", show_default=True)
@click.option("--password", envvar="LOOM_NEW_PASSWORD", help="default: prompt (or $LOOM_NEW_PASSWORD)")
def user_add(username, roles, org_unit, is_admin, display_name, locale, password):
    """Create a user."""
    from engine.security.admin import add_user
    if password is None:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    uid = _run(lambda c, a: add_user(c, a, username, password, roles=list(roles), is_admin=is_admin,
                                     org_unit=org_unit, display_name=display_name, locale=locale))
    click.echo(f"created user `{username}` (id {uid})")


@user.command("list")
@click.option("--json", "as_json", is_flag=True)
def user_list(as_json):
    """List users with their roles."""
    from engine.security.admin import list_users
    rows = _run(lambda c, a: list_users(c))
    if as_json:
        click.echo(json.dumps(rows, default=str, ensure_ascii=False, indent=2))
        return
    for r in rows:
        flags = ("admin " if r["is_admin"] else "") + ("" if r["is_active"] else "inactive ") + (
            "locked " if r["locked_until"] else "")
        click.echo(f"{r['id']:>5}  {r['username']:<20} {flags:<16} {', '.join(r['roles'])}")


@user.command("set-password")
@click.argument("username")
@click.option("--password", envvar="LOOM_NEW_PASSWORD")
def user_set_password(username, password):
    """Set a user's password (also clears a lockout)."""
    from engine.security.admin import set_password
    if password is None:
        password = click.prompt("new password", hide_input=True, confirmation_prompt=True)
    _run(lambda c, a: set_password(c, a, _uid(c, username), password))
    click.echo(f"password of `{username}` changed")


@user.command("grant")
@click.argument("username")
@click.argument("role")
def user_grant(username, role):
    """Grant ROLE (app.role) to USERNAME."""
    from engine.security.admin import grant
    changed = _run(lambda c, a: grant(c, a, _uid(c, username), role))
    click.echo(f"granted {role} to {username}" if changed else f"{username} already has {role}")


@user.command("revoke")
@click.argument("username")
@click.argument("role")
def user_revoke(username, role):
    """Take ROLE away from USERNAME."""
    from engine.security.admin import revoke
    changed = _run(lambda c, a: revoke(c, a, _uid(c, username), role))
    click.echo(f"revoked {role} from {username}" if changed else f"{username} did not have {role}")


@user.command("unlock")
@click.argument("username")
def user_unlock(username):
    """Clear a lockout after failed logins."""
    from engine.security.admin import unlock
    _run(lambda c, a: unlock(c, a, _uid(c, username)))
    click.echo(f"unlocked {username}")


@user.command("deactivate")
@click.argument("username")
def user_deactivate(username):
    """Stop a user from logging in (sessions and tokens stop working at once)."""
    from engine.security.admin import set_active
    _run(lambda c, a: set_active(c, a, _uid(c, username), False))
    click.echo(f"deactivated {username}")


@click.group("token")
def token():
    """API tokens: issue, list, revoke."""


@token.command("issue")
@click.argument("username")
@click.option("--name", required=True, help="what the token is for")
@click.option("--role", "roles", multiple=True, help="limit the token to these of the user's roles")
@click.option("--days", default=90, show_default=True, type=int)
def token_issue(username, name, roles, days):
    """Issue a token; the secret is printed once."""
    from engine.security.admin import issue_token
    tid, secret = _run(lambda c, a: issue_token(c, a, _uid(c, username), name, roles=list(roles) or None, days=days))
    click.echo(f"token {tid} for {username}, expires in {days} days:")
    click.echo(secret)


@token.command("list")
@click.option("--user", "username")
def token_list(username):
    """List tokens (never their secrets)."""
    from engine.security.admin import list_tokens
    rows = _run(lambda c, a: list_tokens(c, _uid(c, username) if username else None))
    for r in rows:
        click.echo(f"{r['id']:>5}  {r['username']:<16} {r['name']:<20} {r['prefix']}…  {r['status']:<8} "
                   f"expires {r['expires_at']:%Y-%m-%d}  last used {r['last_used_at'] or '-'}"
                   f"  roles {','.join(r['roles']) if r['roles'] is not None else 'all'}")


@token.command("revoke")
@click.argument("token_id", type=int)
def token_revoke(token_id):
    """Revoke a token at once."""
    from engine.security.admin import revoke_token
    _run(lambda c, a: revoke_token(c, a, token_id))
    click.echo(f"token {token_id} revoked")


@click.group("org")
def org():
    """The org hierarchy (HQ > branch > team) that team/branch scopes refer to."""


@org.command("add")
@click.argument("code")
@click.argument("name")
@click.option("--kind", type=click.Choice(["hq", "branch", "team"]), required=True)
@click.option("--parent", help="code of the parent unit")
def org_add(code, name, kind, parent):
    from engine.security.admin import add_org_unit
    uid = _run(lambda c, a: add_org_unit(c, a, code, {"zh-CN": name, "en": name}, kind, parent))
    click.echo(f"created org unit {code} (id {uid})")


@click.command("export")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="file (default: stdout)")
@click.option("--actor")
@click.option("--action")
@click.option("--entity", help="app.entity")
@click.option("--record")
@click.option("--since", help="YYYY-MM-DD or ISO time")
@click.option("--until", help="YYYY-MM-DD or ISO time")
def audit_export(fmt, output, **filters):
    """Export the audit log for a regulator, with each entry's hash and previous hash."""
    from engine.audit import AuditFilter, iter_entries, to_csv, to_jsonl
    from engine.runtime.cli import _fail
    try:
        flt = AuditFilter.from_params({k: v for k, v in filters.items() if v})
    except LoomError as exc:
        _fail(exc)
    loom = _loom()
    out = open(output, "w", encoding="utf-8", newline="") if output else sys.stdout
    n = 0
    try:
        with loom.db.connect() as conn:
            entries = iter_entries(conn, flt)
            for chunk in (to_csv(entries) if fmt == "csv" else to_jsonl(entries)):
                out.write(chunk)
                n += 1
    finally:
        if output:
            out.close()
    if output:
        click.echo(f"wrote {n - (1 if fmt == 'csv' else 0)} entries to {os.path.abspath(output)}", err=True)


def register(main: click.Group) -> None:
    """Add the commands to the ``loom`` group (called at the bottom of engine/runtime/cli.py)."""
    main.add_command(user)
    main.add_command(token)
    main.add_command(org)
    audit_group = main.commands.get("audit")
    if audit_group is not None:
        audit_group.add_command(audit_export)
