"""``qwen3vl-aws status``: what is deployed, whether it runs, and what it costs."""

from __future__ import annotations

import json

import click

from . import App, pass_app


@click.command(name="status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (for scripts).")
@pass_app
def command(app: App, as_json: bool) -> None:
    """Show the deployment: state, instance type, endpoint, hourly price, uptime and cost so far,
    and (while it runs) the engine's real KV-cache capacity beside the plan's prediction."""
    from ..instance.probe import describe_instance
    from ..instance.summary import deployment_status, kv_cache_report

    session = app.deployment()
    record = session.record
    instance = describe_instance(session.clients.client("ec2"), record.instance_id)
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
