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
    "last start next to the first; reads the instance's status over the command channel.",
)
@pass_app
def command(app: App, as_json: bool, timeline: bool) -> None:
    """Show the deployment: state, instance type, endpoint, hourly price, uptime and cost so far."""
    from ..aws import ClientFactory
    from ..deployment import load_deployment
    from ..deployment_status import deployment_status, describe_instance
    from ..pricing import hourly_price

    deployment = load_deployment(app.name)
    clients = ClientFactory(region=deployment.region, profile=app.profile)
    instance = describe_instance(clients.client("ec2"), deployment.instance_id)
    price = hourly_price(deployment.instance_type, deployment.region, profile=app.profile)
    doc = deployment_status(deployment, instance, price)
    if timeline:
        _timeline(app, deployment, clients, instance, as_json)
        return
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    from rich.table import Table

    table = Table(show_header=False, box=None, padding=(0, 2))
    for key, value in doc.items():
        table.add_row(key.replace("_", " "), "-" if value is None else str(value))
    app.out.print(table)


def _timeline(app: App, deployment: Any, clients: Any, instance: Any, as_json: bool) -> None:
    from ..channel.factory import channel_for
    from ..errors import UsageError
    from ..timeline import read_timeline

    if instance is None:
        raise UsageError("The instance is gone: there is no start to show.")
    result = read_timeline(channel_for(deployment, clients), instance)
    if result is None:
        raise UsageError("The bootstrap has not written its status yet: try `qwen3vl-aws wait`.")
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    show_timeline(app.out, deployment.name, result)


def show_timeline(console: Any, name: str, timeline: Any) -> None:
    """The timeline as a table: each step's seconds, first start next to the last."""
    from rich.table import Table

    table = Table(title=f"{name}: start timeline (seconds)")
    for column in ("step", "first start", "last start", "detail"):
        table.add_column(column)
    for row in timeline.rows():
        table.add_row(*row)
    console.print(table)
