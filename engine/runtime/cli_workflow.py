"""``loom process list|start|instances|retry`` and ``loom tick``: the workflow engine from a shell."""
from __future__ import annotations

import json

import click

from engine.errors import LoomError
from engine.runtime.cli import _fail, _loom, main
from engine.security import Actor


@main.group()
def process():
    """BPMN processes: list, start, instances, retry."""


@process.command("list")
def process_list():
    """Deployed processes (newest version of each)."""
    for p in _loom().workflow.processes():
        click.echo(f"{p['key']:40} v{p['version']:<4} {p['name'] or ''}")


@process.command("start")
@click.argument("key")
@click.option("--data", default="{}", help="start data as JSON (record ids, not records)")
def process_start(key, data):
    """Start the newest version of process KEY."""
    try:
        result = _loom().workflow.start(key, Actor.system("cli"), json.loads(data))
    except LoomError as exc:
        _fail(exc)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--data") from None
    click.echo(json.dumps(result, ensure_ascii=False, indent=2))


@process.command("instances")
@click.option("--status", default=None, help="waiting | error | completed | cancelled")
def process_instances(status):
    """Recent instances (failed ones with --status error)."""
    for i in _loom().workflow.instances(status=status):
        err = f"  {i['error']['bpmn_id']}: {i['error']['message']}" if i["error"] else ""
        click.echo(f"{i['id']:>8} {i['process']:30} v{i['version']:<3} {i['status']:10}{err}")


@process.command("retry")
@click.argument("instance_id", type=int)
def process_retry(instance_id):
    """Retry the failed tasks of an instance (side effects already done are not repeated)."""
    try:
        click.echo(json.dumps(_loom().workflow.retry(instance_id, Actor.system("cli")), ensure_ascii=False))
    except LoomError as exc:
        _fail(exc)


@main.command()
def tick():
    """Fire due timers and timer-start schedules once (what the scheduler does every few seconds)."""
    click.echo(json.dumps(_loom().workflow.tick()))
