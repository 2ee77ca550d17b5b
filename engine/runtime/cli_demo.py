"""``loom demo``: fill a database with an app's demo data set.

The engine knows nothing about any app's data: it loads ``apps/<app>/demo/generator.py`` by path
and calls its ``run(loom, seed=, size=, as_of=, echo=, out_dir=)``. The generator writes through
the record service and ``engine.security.users`` like any other caller, so demo rows are validated
and audited. ``--if-empty`` makes the command safe to call on every ``make run``: it does nothing
when the generator's ``has_data(loom)`` says the data is already there.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[2]


def _generator_path(app: str) -> Path:
    for base in (Path.cwd() / "apps", ROOT / "apps"):
        path = base / app / "demo" / "generator.py"
        if path.is_file():
            return path
    raise click.BadParameter(f"no demo generator at apps/{app}/demo/generator.py", param_hint="--app")


def load_generator(app: str):
    """Import an app's generator module from its file (apps/ is not a Python package)."""
    path = _generator_path(app)
    spec = importlib.util.spec_from_file_location(f"loom_demo_{app}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module      # dataclasses look their module up while the file runs
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(spec.name, None)
        raise
    return module


@click.command("demo")
@click.option("--seed", default=42, show_default=True, type=int, help="random seed: the same seed gives the same data")
@click.option("--size", type=click.Choice(["small", "large"]), default="small", show_default=True,
              help="small: a few thousand trades; large: 200,000+ trades")
@click.option("--if-empty", is_flag=True, help="do nothing when the app already has data")
@click.option("--app", "app_key", default="securities_crm", show_default=True, help="the app whose generator runs")
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="last day of the generated year (default: today)")
def demo(seed, size, if_empty, app_key, as_of):
    """Generate deterministic demo data (customers, accounts, a year of trades, labelled AML episodes)."""
    from engine.errors import LoomError
    from engine.runtime.loom import Loom
    module = load_generator(app_key)
    loom = Loom()
    try:
        if app_key not in {e.split(".", 1)[0] for e in loom.model.entities}:
            click.secho(f"error: app `{app_key}` is not installed (run `loom app install apps/{app_key}`)", fg="red", err=True)
            sys.exit(1)
        if if_empty and getattr(module, "has_data", None) and module.has_data(loom):
            click.echo(f"{app_key}: demo data already present, nothing to do")
            _print_logins(_existing_logins(loom, app_key), getattr(module, "DEMO_PASSWORD", None))
            return
        out_dir = Path(loom.settings.instance_path) / "demo" / app_key
        try:
            summary = module.run(loom, seed=seed, size=size, as_of=as_of.date() if as_of else None,
                                 echo=lambda m: click.echo(m, err=False), out_dir=out_dir)
        except LoomError as exc:
            click.secho(f"error: {exc.message}", fg="red", err=True)
            for p in exc.problems[:50]:
                click.echo(f"  {p}", err=True)
            sys.exit(1)
        except RuntimeError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(1)
    finally:
        loom.dispose()
    counts = summary.get("counts", {})
    click.secho("demo data written: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()), fg="green")
    if summary.get("episodes_file"):
        click.echo(f"labelled episodes ({len(summary.get('episodes', []))}): {summary['episodes_file']}")
    _print_logins(summary.get("logins") or [], summary.get("password"))


def _existing_logins(loom, app_key: str) -> list[tuple[str, str, str]]:
    """The demo's staff accounts already in the database: (username, role, name)."""
    import sqlalchemy as sa
    from engine.security.users import user_roles, users
    with loom.db.connect() as conn:
        rows = conn.execute(sa.select(users.c.username, user_roles.c.role, users.c.display_name)
                            .join(user_roles, user_roles.c.user_id == users.c.id)
                            .where(user_roles.c.role.like(f"{app_key}.%")).order_by(users.c.id)).all()
    return [(u, r.split(".", 1)[1], n) for u, r, n in rows]


def _print_logins(logins, password) -> None:
    if not logins:
        return
    click.echo("")
    click.secho(f"Demo logins -- FOR THE DEMO ONLY, every password is `{password}`:", bold=True)
    shown: dict = {}
    for username, role, _name in logins:
        shown.setdefault(role, []).append(username)
    for role, names in shown.items():
        more = f" (+{len(names) - 3} more)" if len(names) > 3 else ""
        click.echo(f"  {role:16} {', '.join(names[:3])}{more}")
