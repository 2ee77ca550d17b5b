"""The ``loom`` command line (click, the Flask CLI's own library)."""
from __future__ import annotations

import json
import os
import sys

import click
import sqlalchemy as sa

from engine.errors import LoomError


def _loom():
    from engine.runtime.loom import Loom
    return Loom()


def _fail(exc: LoomError) -> None:
    click.secho(f"error: {exc.message}", fg="red", err=True)
    for p in exc.problems:
        click.echo(f"  {p}", err=True)
    sys.exit(1)


@click.group()
@click.version_option(package_name="loom")
def main():
    """Loom: a metadata-driven low-code engine."""


@main.command()
@click.option("--admin", default="admin", show_default=True, help="username of the first administrator")
def init(admin):
    """Create or upgrade the engine's own tables; create the admin user once."""
    from engine.security.users import create_user, generate_password, users
    loom = _loom()
    changes = loom.init_db()
    for c in changes:
        click.echo(f"  {c}")
    with loom.db.begin() as conn:
        exists = conn.execute(sa.select(users.c.id).where(users.c.username == admin)).first()
        if exists is None:
            password = os.environ.get("LOOM_ADMIN_PASSWORD") or generate_password()
            create_user(conn, admin, password, display_name="Administrator", is_admin=True)
            click.echo(f"created administrator `{admin}` with password: {password}")
            click.echo("  (shown once: write it down or change it after logging in)")
    click.echo(f"database ready: {loom.settings.database_url}")


@main.group()
def app():
    """Bundles: validate, install, list, export, uninstall."""


@app.command("validate")
@click.argument("path", type=click.Path())
def app_validate(path):
    """Check a bundle and report every problem with file:line:column."""
    loom = _loom()
    bundle, problems = loom.validate_bundle(path)
    if problems:
        for p in problems:
            click.echo(str(p), err=True)
        click.secho(f"{len(problems)} problem(s) in {path}", fg="red", err=True)
        sys.exit(1)
    click.secho(f"{bundle.key} {bundle.version}: {len(bundle.definitions)} definitions, valid", fg="green")


def _progress(file, n):
    if n and n % 1000 == 0:
        click.echo(f"  {file}: {n} rows", err=True)


@app.command("install")
@click.argument("path", type=click.Path())
@click.option("--dry-run", is_flag=True, help="print the plan and change nothing")
@click.option("--confirm-destructive", is_flag=True, help="allow archiving columns of removed fields")
@click.option("--yes", "-y", is_flag=True, help="do not ask before applying")
@click.option("--take", type=click.Choice(["ours", "theirs"]),
              help="resolve every conflict between local changes and the partner's the same way")
@click.option("--resolve", multiple=True, metavar="KIND:KEY[:PATH]=ours|theirs",
              help="resolve one definition's or one property's conflict")
def app_install(path, dry_run, confirm_destructive, yes, take, resolve):
    """Validate, plan and install (or upgrade) a bundle in one all-or-nothing step."""
    from engine.security import Actor
    loom = _loom()
    choices = {"*": take} if take else {}
    for item in resolve:
        target, _, side = item.rpartition("=")
        if side not in {"ours", "theirs"} or not target:
            raise click.BadParameter(f"`{item}`: expected KIND:KEY[:PATH]=ours|theirs", param_hint="--resolve")
        choices[target] = side
    try:
        plan = loom.plan_install(path, choices)
    except LoomError as exc:
        _fail(exc)
    for line in plan.describe():
        click.echo(line)
    if dry_run or plan.is_noop:
        return
    if not yes and sys.stdin.isatty() and not click.confirm("apply this plan?", default=True):
        return
    try:
        loom.install(path, Actor.system("loom-cli"), plan=plan, confirm_destructive=confirm_destructive,
                     progress=_progress)
    except LoomError as exc:
        _fail(exc)
    click.secho(f"installed {plan.app} {plan.version}", fg="green")


@app.command("list")
def app_list():
    """List installed bundles."""
    from engine.forms.labels import label_of
    from engine.meta.store import apps
    loom = _loom()
    with loom.db.connect() as conn:
        rows = conn.execute(sa.select(apps).order_by(apps.c.key)).mappings().all()
    if not rows:
        click.echo("no bundles installed")
    for r in rows:
        click.echo(f"{r['key']:24} {r['version']:10} {r['status']:12} {label_of(r['title'], 'zh-CN')}")


@app.command("export")
@click.argument("key")
@click.option("-o", "--output", required=True, type=click.Path(), help="a folder, or a file ending in .zip")
def app_export(key, output):
    """Write an installed bundle (with designer changes) back to files."""
    from engine.install import export_bundle
    loom = _loom()
    try:
        names = export_bundle(loom.db, key, output)
    except LoomError as exc:
        _fail(exc)
    click.echo(f"wrote {len(names)} files to {output}")


@app.command("uninstall")
@click.argument("key")
@click.option("--purge", is_flag=True, help="also drop the bundle's tables and data")
@click.option("--yes", "-y", is_flag=True)
def app_uninstall(key, purge, yes):
    """Take a bundle out of service; its data is kept unless --purge is confirmed."""
    from engine.install import uninstall
    from engine.security import Actor
    loom = _loom()
    if purge and not yes:
        click.confirm(f"drop every table of `{key}` and all its data?", abort=True)
    try:
        done = uninstall(loom.db, key, Actor.system("loom-cli"), purge=purge, model=loom.model)
    except LoomError as exc:
        _fail(exc)
    for d in done:
        click.echo(f"  {d}")
    click.echo(f"uninstalled {key}" + (" (data purged)" if purge else " (data kept)"))


@app.command("pack")
@click.argument("path", type=click.Path(exists=True))
@click.option("-o", "--output", required=True, type=click.Path(), help="the package file to write (.zip)")
@click.option("--sign", "signing_key", type=click.Path(exists=True), help="Ed25519 private key (PEM) to sign with")
def app_pack(path, output, signing_key):
    """Build a single-file package: every definition, checksums, optional signature."""
    from engine.install.package import pack
    from engine.meta.bundle import read_bundle
    from engine.meta.validate import validate_bundle
    problems = validate_bundle(read_bundle(path))
    if problems:
        for p in problems:
            click.echo(str(p), err=True)
        click.secho(f"{len(problems)} problem(s): not packed", fg="red", err=True)
        sys.exit(1)
    manifest = pack(path, output, signing_key)
    click.echo(f"packed {manifest['app']} {manifest['version']}: {len(manifest['files'])} files"
               + (", signed" if signing_key else ", unsigned") + f" -> {output}")


@app.command("keygen")
@click.argument("name")
@click.option("-o", "--output", default=".", type=click.Path(), help="folder for NAME.key and NAME.pub")
def app_keygen(name, output):
    """Create an Ed25519 key pair for signing packages (keep NAME.key secret, give out NAME.pub)."""
    from pathlib import Path
    from engine.install.package import generate_keypair
    key, pub = generate_keypair(name, Path(output))
    click.echo(f"private key: {key}\npublic key:  {pub}")


@app.command("trust")
@click.argument("public_key", type=click.Path(exists=True))
def app_trust(public_key):
    """Add a partner's public key to this installation's trust store."""
    import shutil
    from engine.install.package import key_id, load_trust_store
    from engine.settings import Settings
    store_dir = Settings.from_env().trust_store
    store_dir.mkdir(parents=True, exist_ok=True)
    target = store_dir / os.path.basename(public_key)
    shutil.copyfile(public_key, target)
    keys = load_trust_store(store_dir)
    if not any(name == target.name for name, _ in keys.values()):
        target.unlink()
        raise click.BadParameter("not an Ed25519 public key (PEM)", param_hint="PUBLIC_KEY")
    kid = next(k for k, (name, _) in keys.items() if name == target.name)
    click.echo(f"trusted {target.name} (key id {kid})")


@app.command("diff")
@click.argument("left")
@click.argument("right")
@click.option("--app", "app_key", help="bundle key, needed when a side is a database")
def app_diff(left, right, app_key):
    """Compare definitions: each side a bundle folder/package, `db` (this database) or a database URL."""
    from engine.install.diff import compare, resolve
    from engine.settings import Settings
    s = Settings.from_env()
    try:
        lkey, lhs = resolve(left, app_key, s.database_url, s.db_schema)
        rkey, rhs = resolve(right, app_key or lkey, s.database_url, s.db_schema)
    except LoomError as exc:
        _fail(exc)
    diffs = compare(lhs, rhs)
    if not diffs:
        click.echo("no differences")
        return
    for d in diffs:
        click.echo(f"{d.status:8} {d.kind} {d.key}")
        for line in d.details[:50]:
            click.echo(f"    {line}")
    sys.exit(2)


@app.command("import-frappe")
@click.argument("doctypes", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--output", required=True, type=click.Path(), help="bundle folder to write entities/ and forms/ into")
def app_import_frappe(doctypes, output):
    """Convert Frappe DocType JSON files into Loom entity and form definitions."""
    from pathlib import Path
    from engine.install.frappe import convert
    from engine.meta.yamlpos import dump
    try:
        entities, forms, notes = convert(list(doctypes))
    except LoomError as exc:
        _fail(exc)
    out = Path(output)
    for folder, items in (("entities", entities), ("forms", forms)):
        (out / folder).mkdir(parents=True, exist_ok=True)
        for item in items:
            (out / folder / f"{item['key']}.yaml").write_text(dump(item), encoding="utf-8")
    click.echo(f"wrote {len(entities)} entities and {len(forms)} forms to {output}")
    for n in notes:
        click.echo(f"note: {n}")


@main.command()
@click.argument("kind", required=False)
def schema(kind):
    """Print the JSON meta-schema of a definition kind (or list the kinds)."""
    from engine.meta.schema import SCHEMA_KINDS, meta_schema
    if not kind:
        click.echo("kinds: " + ", ".join(SCHEMA_KINDS))
        click.echo("usage: loom schema KIND")
        return
    try:
        click.echo(json.dumps(meta_schema(kind), indent=2, ensure_ascii=False))
    except KeyError as exc:
        raise click.BadParameter(str(exc.args[0]), param_hint="KIND") from None


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--prod", is_flag=True, help="serve with gunicorn")
@click.option("--workers", default=2, show_default=True, type=int)
def serve(host, port, prod, workers):
    """Serve the web application (development server, or gunicorn with --prod)."""
    if prod:
        os.execvp(sys.executable, [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"{host}:{port}",
                                   "--access-logfile", "-", "engine.runtime.wsgi:app"])
    from engine.runtime.app import create_app
    flask_app = create_app()
    flask_app.run(host=host, port=port, debug=False, threaded=True, use_reloader=False)


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def worker(args):
    """Run a Celery worker (needs LOOM_BROKER_URL)."""
    os.execvp(sys.executable, [sys.executable, "-m", "celery", "-A", "engine.runtime.celery_app:celery", "worker",
                               "--loglevel=INFO", *args])


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def beat(args):
    """Run Celery beat, the scheduler of timers and periodic jobs (needs LOOM_BROKER_URL)."""
    os.execvp(sys.executable, [sys.executable, "-m", "celery", "-A", "engine.runtime.celery_app:celery", "beat",
                               "--loglevel=INFO", *args])


@main.group()
def audit():
    """The tamper-evident audit log."""


@audit.command("verify")
def audit_verify():
    """Check the whole hash chain; name the first entry altered, removed or inserted."""
    from engine.audit import verify
    loom = _loom()
    with loom.db.connect() as conn:
        result = verify(conn)
    if result.ok:
        click.secho(str(result), fg="green")
    else:
        click.secho(str(result), fg="red", err=True)
        sys.exit(1)


from engine.runtime.cli_demo import demo as _demo; main.add_command(_demo)  # noqa: E402,E702
from engine.runtime.cli_security import register as _register_security; _register_security(main)  # noqa: E402,E702
from engine.runtime.cli_reports import register as _register_reports; _register_reports(main)  # noqa: E402,E702
from engine.runtime.cli_rules import register as _register_rules; _register_rules(main)  # noqa: E402,E702

import engine.runtime.cli_workflow  # noqa: E402,F401  (registers `loom process ...` and `loom tick`)

from engine.runtime.cli_plugins import register as _register_plugins; _register_plugins(main)  # noqa: E402,E702

if __name__ == "__main__":
    main()
