"""``loom events ...`` and ``loom rules ...``: bulk event files, processing, versions, backtests, reports."""
from __future__ import annotations

import csv

import json
import sys
from pathlib import Path

import click

from engine.errors import LoomError


def _loom():
    from engine.runtime.loom import Loom
    return Loom()


def _fail(exc: LoomError) -> None:
    click.secho(f"error: {exc.message}", fg="red", err=True)
    for p in exc.problems[:50]:
        click.echo(f"  {p}", err=True)
    if len(exc.problems) > 50:
        click.echo(f"  ... and {len(exc.problems) - 50} more", err=True)
    sys.exit(1)


def _read_events(path: Path, batch: int):
    """Yield lists of ``(line, event)`` from a JSON array, JSON lines or CSV file."""
    from engine.rules import parse_body
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as fh:
            chunk = []
            for i, row in enumerate(csv.DictReader(fh), 2):
                ev = {k: _csv_value(v) for k, v in row.items() if v not in (None, "")}
                chunk.append((i, ev))
                if len(chunk) >= batch:
                    yield chunk
                    chunk = []
            if chunk:
                yield chunk
        return
    with path.open("rb") as fh:
        head = fh.read(64).lstrip()
    if head.startswith(b"["):
        items = parse_body(path.read_bytes())
        for i in range(0, len(items), batch):
            yield [(j + 1, e) for j, e in enumerate(items[i:i + batch], i)]
        return
    with path.open("r", encoding="utf-8-sig") as fh:
        chunk, lines = [], []
        for i, line in enumerate(fh, 1):
            if line.strip():
                lines.append((i, line))
            if len(lines) >= batch:
                yield _parse_lines(lines)
                lines = []
        if lines:
            yield _parse_lines(lines)


def _parse_lines(lines):
    from engine.errors import InvalidInput, Problem
    out, problems = [], []
    for i, line in lines:
        try:
            out.append((i, json.loads(line)))
        except json.JSONDecodeError as exc:
            problems.append(Problem(f"JSON syntax error: {exc.msg}", line=i, column=exc.colno, code="json"))
    if problems:
        raise InvalidInput("some lines are not valid JSON", problems=problems)
    return out


def _csv_value(v: str):
    try:
        return int(v) if v.lstrip("-").isdigit() and not (len(v) > 1 and v.lstrip("-").startswith("0")) else float(v)
    except ValueError:
        return v


def register(main: click.Group) -> None:
    @main.group()
    def events():
        """Monitoring events (trades, orders, cancels, transfers)."""

    @events.command("load")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--batch", default=10_000, show_default=True, help="events per transaction")
    @click.option("--no-flush", is_flag=True, help="keep the out-of-order tolerance (do not evaluate the tail)")
    def events_load(file, batch, no_flush):
        """Load a JSON array, JSON lines or CSV file of events; safe to repeat (ids are unique)."""
        from engine.rules import normalize, service
        loom = _loom()
        svc = service(loom)
        total = {"accepted": 0, "duplicates": 0, "late": 0}
        try:
            for chunk in _read_events(file, batch):
                r = svc.ingest_rows(normalize(chunk, file=str(file)), process=False)
                for k in total:
                    total[k] += r[k]
                click.echo(f"  {total['accepted']} stored, {total['duplicates']} duplicates", err=True)
            processed = svc.process(final=not no_flush)
        except LoomError as exc:
            _fail(exc)
        click.echo(json.dumps({**total, "processed": processed}, ensure_ascii=False))

    @main.group()
    def rules():
        """Monitoring rules: processing, versions (shadow/active), backtests, precision, reports."""

    @rules.command("process")
    @click.option("--flush", is_flag=True, help="ignore the out-of-order tolerance")
    def rules_process(flush):
        """Evaluate pending events of every rule set."""
        from engine.rules import service
        click.echo(json.dumps(service(_loom()).process(final=flush), ensure_ascii=False))

    @rules.command("versions")
    @click.argument("app")
    def rules_versions(app):
        """List rule and typology versions with their status (shadow / active / retired)."""
        from engine.rules import service
        for v in service(_loom()).versions(app):
            click.echo(f"{v['kind']:9} {v['key']:30} v{v['version']:<4} {v['status']:8} "
                       f"author={v['author'] or '-'} activated_by={v['activated_by'] or '-'}")

    @rules.command("activate")
    @click.argument("app")
    @click.argument("key")
    @click.option("--version", type=int, help="default: the newest version")
    @click.option("--user", "username", required=True, help="the person activating (not the version's author)")
    def rules_activate(app, key, version, username):
        """Make a shadow version live (maker-checker: activator != author; audited)."""
        import sqlalchemy as sa
        from engine.rules import service
        from engine.security import Actor
        from engine.security.users import users
        loom = _loom()
        with loom.db.connect() as conn:
            row = conn.execute(sa.select(users.c.id).where(users.c.username == username)).first()
        if row is None:
            raise click.BadParameter(f"no user `{username}`", param_hint="--user")
        actor = Actor(user_id=row[0], username=username, is_admin=True)
        try:
            click.echo(json.dumps(service(loom).activate(app, key, version, actor), ensure_ascii=False))
        except LoomError as exc:
            _fail(exc)

    @rules.command("backtest")
    @click.argument("ruleset")
    @click.option("--selection", type=click.Choice(["running", "latest", "active"]), default="running",
                  show_default=True, help="latest: run every newest version as if active")
    @click.option("--method", type=click.Choice(["auto", "replay", "vectorised"]), default="auto", show_default=True)
    def rules_backtest(ruleset, selection, method):
        """Replay stored history through RULESET (app.key) and count what it would raise."""
        from engine.rules import backtest, service
        try:
            res = backtest(service(_loom()), ruleset, selection=selection, method=method)
        except LoomError as exc:
            _fail(exc)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--method") from None
        click.echo(f"{res.ruleset}: {res.events} events, {res.method}, {res.seconds:.3f}s, "
                   f"{len(res.alerts)} alerts, {res.suppressed} suppressed")
        for (subject, mode), n in sorted(res.by_subject().items()):
            click.echo(f"  {subject:30} {mode:7} {n}")

    @rules.command("precision")
    def rules_precision():
        """Per rule: alerts, confirmed, false positives, precision."""
        from engine.rules import service
        for r in service(_loom()).precision():
            p = "-" if r["precision"] is None else f"{r['precision']:.2%}"
            click.echo(f"{r['key']:30} {r['mode']:7} alerts={r['alerts']} tp={r['true_positive']} "
                       f"fp={r['false_positive']} precision={p}")

    @rules.command("export")
    @click.argument("report", type=click.Choice(["large_value", "suspicious"]))
    @click.option("--format", "fmt", type=click.Choice(["csv", "xml"]), default="csv", show_default=True)
    @click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="default: standard output")
    def rules_export(report, fmt, out):
        """Export a large-value or suspicious transaction report."""
        from engine.rules import export_report
        content, _ = export_report(_loom(), report, fmt)
        if out:
            out.write_text(content, encoding="utf-8")
        else:
            click.echo(content)


__all__ = ["register"]
