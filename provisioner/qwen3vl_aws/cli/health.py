"""``qwen3vl-aws health``: every check as a table (or ``--json``); exit 0 only when all pass."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from . import App, pass_app

if TYPE_CHECKING:
    from ..instance.check_result import CheckResult


@click.command(name="health")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option(
    "--key-stdin",
    is_flag=True,
    help="Read the API key from stdin instead of Secrets Manager (AWSCURRENT).",
)
@click.option(
    "--deep",
    is_flag=True,
    help="Also hold the engine's memory accounting and whole-process GPU use against the plan.",
)
@pass_app
def command(app: App, as_json: bool, key_stdin: bool, deep: bool) -> None:
    """Check the instance, its bootstrap, units, GPUs and KV cache, and the endpoint end to end.

    A warning (the engine's KV cache drifted from the plan, or uses more than its budget) is
    shown with a next step; only failed checks make the exit code non-zero.
    """
    from ..errors import CheckFailed
    from ..instance.health import run_checks
    from ..keys.keygen import validate_key

    api_key = validate_key(sys.stdin.read()) if key_stdin else None
    session = app.deployment()
    deployment = session.record
    if deployment.is_fleet:
        from .fleet_view import read_fleet, show_fleet

        status = read_fleet(session)
        show_fleet(app, status, as_json)
        problem = status.problem()
        if problem:
            raise CheckFailed(problem)
        return
    results = run_checks(deployment, session.clients, session.channel, api_key=api_key, deep=deep)
    failed = [r.name for r in results if not r.ok]
    if as_json:
        doc = {
            "deployment": deployment.name,
            "ok": not failed,
            "checks": [r.to_dict() for r in results],
        }
        click.echo(json.dumps(doc, indent=2))
    else:
        app.out.print(_table(results))
    if failed:
        raise CheckFailed(f"{len(failed)} of {len(results)} checks failed: {', '.join(failed)}.")


def _table(results: list[CheckResult]):
    from rich.table import Table

    table = Table(title="qwen3vl-aws health", title_justify="left")
    for column in ("check", "result", "latency", "detail", "next step"):
        table.add_column(column, overflow="fold")
    for r in results:
        result = "[green]pass" if r.ok else ("[red]FAIL" if r.attempted else "[yellow]skipped")
        if r.ok and r.warning:
            result = "[yellow]warn"
        latency = f"{r.latency_s * 1000:.0f} ms" if r.latency_s is not None else ""
        table.add_row(r.name, result, latency, r.detail, r.hint or "")
    return table
