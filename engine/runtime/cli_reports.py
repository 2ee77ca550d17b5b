"""``loom report ...``: report tooling on the command line (registered by engine/runtime/cli.py)."""
from __future__ import annotations

import click


def _loom_and_reports():
    from engine.runtime.loom import Loom
    loom = Loom()
    return loom, loom.extensions["reports"]


def register(main: click.Group) -> None:
    @main.group()
    def report():
        """Reports: proposed indexes, rollups, SQL."""

    @report.command("indexes")
    @click.option("--app", default=None, help="only this app's reports")
    @click.option("--create", is_flag=True, help="create the proposed indexes (IF NOT EXISTS)")
    def indexes(app, create):
        """Print the CREATE INDEX statements proposed from report definitions."""
        from engine.meta import store
        from engine.reports.indexes import create_indexes, propose_indexes
        loom, ext = _loom_and_reports()
        with loom.db.connect() as conn:
            defs = store.current(conn, app, "report")
        proposals = propose_indexes(loom.model, [ext.reports.definition(d.app, d.key) for d in defs])
        for p in proposals:
            click.echo(f"-- {p['report']}: filters, groups, measures")
            click.echo(p["sql"].strip() + ";")
        if not proposals:
            click.echo("-- no report needs an index")
        if create and proposals:
            made = create_indexes(loom, proposals)
            click.echo(f"-- created {len(made)} index(es): {', '.join(made) or '(all existed)'}")

    @report.group()
    def rollup():
        """Rollup (summary) tables of reports with `rollup: true`."""

    @rollup.command("rebuild")
    @click.argument("key")
    @click.option("--app", default=None, help="the report's app (needed when KEY is not app.key)")
    def rebuild(key, app):
        """Recompute the rollup table of report KEY (app.key) from its source records."""
        from engine.errors import LoomError
        if "." in key and app is None:
            app, key = key.split(".", 1)
        if app is None:
            raise click.UsageError("give the report as APP.KEY or pass --app")
        loom, ext = _loom_and_reports()
        try:
            n = ext.rollups.rebuild(ext.reports.definition(app, key))
        except LoomError as exc:
            for p in exc.problems or []:
                click.echo(f"error: {p.message}", err=True)
            raise click.ClickException(str(exc)) from None
        click.echo(f"rollup of {app}.{key} rebuilt: {n} rows")
