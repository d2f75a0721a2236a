"""``qwen3vl-aws status``: what is deployed, whether it runs, and what it costs."""

from __future__ import annotations

import json

import click

from . import App, pass_app


@click.command(name="status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (for scripts).")
@pass_app
def command(app: App, as_json: bool) -> None:
    """Show the deployment: state, instance type, endpoint, hourly price, uptime and cost so far."""
    from ..instance.probe import describe_instance
    from ..instance.summary import deployment_status

    session = app.deployment()
    record = session.record
    instance = describe_instance(session.clients.client("ec2"), record.instance_id)
    doc = deployment_status(record, instance, session.price())
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    from rich.table import Table

    table = Table(show_header=False, box=None, padding=(0, 2))
    for key, value in doc.items():
        table.add_row(key.replace("_", " "), "-" if value is None else str(value))
    app.out.print(table)
