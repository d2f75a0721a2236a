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
    from ..aws.clients import ClientFactory
    from ..aws.pricing import hourly_price
    from ..deployment import load_deployment
    from ..instance.summary import deployment_status, describe_instance

    deployment = load_deployment(app.name)
    clients = ClientFactory(region=deployment.region, profile=app.profile)
    instance = describe_instance(clients.client("ec2"), deployment.instance_id)
    price = hourly_price(deployment.instance_type, deployment.region, profile=app.profile)
    doc = deployment_status(deployment, instance, price)
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    from rich.table import Table

    table = Table(show_header=False, box=None, padding=(0, 2))
    for key, value in doc.items():
        table.add_row(key.replace("_", " "), "-" if value is None else str(value))
    app.out.print(table)
