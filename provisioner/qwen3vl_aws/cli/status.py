"""``qwen3vl-aws status``: what is deployed, whether it runs, and what it costs."""

from __future__ import annotations

import json
from typing import Any

import click

from . import App, pass_app


@click.command(name="status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (for scripts).")
@click.option(
    "--timeline",
    is_flag=True,
    help="Where the start's seconds went (launch, boot, packages, weights, engine, first answer), "
    "last start next to the first; reads the instance's (each replica's) status over the command "
    "channel.",
)
@pass_app
def command(app: App, as_json: bool, timeline: bool) -> None:
    """Show the deployment: state, instance type, endpoint, hourly price, uptime and cost so far,
    and (while it runs) the engine's real KV-cache capacity beside the plan's prediction."""
    from ..instance.probe import describe_instance
    from ..instance.summary import deployment_status, kv_cache_report

    session = app.deployment()
    record = session.record
    if record.is_fleet:
        from .fleet_view import read_fleet, show_fleet

        if timeline:
            _fleet_timelines(app, session, as_json)
        else:
            show_fleet(app, read_fleet(session), as_json)
        return
    instance = describe_instance(session.clients.client("ec2"), record.instance_id)
    if timeline:
        _timeline(app, session, instance, as_json)
        return
    doc = deployment_status(record, instance, session.price())
    doc["kv_cache"] = (
        kv_cache_report(record, lambda: session.channel) if doc["state"] == "running" else None
    )
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    from rich.table import Table

    table = Table(show_header=False, box=None, padding=(0, 2))
    kv = doc.pop("kv_cache")
    for key, value in doc.items():
        table.add_row(key.replace("_", " "), "-" if value is None else str(value))
    if kv is not None:
        table.add_row("kv cache", _describe_kv(kv))
    app.out.print(table)


def _describe_kv(kv: dict) -> str:
    if "error" in kv:
        return f"[yellow]unknown: {kv['error']}"
    text = (
        f"engine {kv['engine_tokens']:,} tokens, plan {kv['planned_tokens']:,} "
        f"({kv['drift']:+.0%}, {kv['plan_source']})"
    )
    return (
        f"{text}\n[yellow]warning: {kv['warning']}[/]\n{kv['next_step']}" if kv["warning"] else text
    )


def _timeline(app: App, session: Any, instance: Any, as_json: bool) -> None:
    from ..errors import UsageError
    from ..instance.timeline import read_timeline

    if instance is None:
        raise UsageError("The instance is gone: there is no start to show.")
    result = read_timeline(session.channel, instance)
    if result is None:
        raise UsageError("The bootstrap has not written its status yet: try `qwen3vl-aws wait`.")
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    show_timeline(app.out, session.record.name, result)


def _fleet_timelines(app: App, session: Any, as_json: bool) -> None:
    from ..fleet.timeline import replica_timelines

    replicas = replica_timelines(session.clients, session.record, session.replica_channel)
    if as_json:
        doc = {"name": session.record.name, "replicas": [r.to_json() for r in replicas]}
        click.echo(json.dumps(doc, indent=2))
        return
    if not replicas:
        app.out.print("No replica is starting or in service: there is no start to show.")
    for r in replicas:
        title = f"{session.record.name} {r.instance_id} ({r.zone})"
        if r.timeline is None:
            app.out.print(f"{title}: no timeline: {r.problem}", highlight=False)
        else:
            show_timeline(app.out, title, r.timeline)


def show_timeline(console: Any, name: str, timeline: Any) -> None:
    """The timeline as a table: each step's seconds, first start next to the last."""
    from rich.table import Table

    table = Table(title=f"{name}: start timeline (seconds)")
    for column in ("step", "first start", "last start", "detail"):
        table.add_column(column)
    for row in timeline.rows():
        table.add_row(*row)
    console.print(table)
