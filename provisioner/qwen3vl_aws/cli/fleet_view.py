"""How `status`, `health` and `wait` print a fleet: one table, or the fleet document as JSON."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ..fleet.status import FleetStatus
    from ..session import DeploymentSession
    from . import App


def read_fleet(session: DeploymentSession, *, stages: bool = True) -> FleetStatus:
    """The fleet now; with ``stages``, each replica's bootstrap stage over its channel."""
    from ..fleet.status import channel_stages, fleet_status
    from ..fleet.wake import wake_report

    return fleet_status(
        session.clients,
        session.record,
        session.price().usd_per_hour,
        channel_stages(session.replica_channel) if stages else None,
        wake=wake_report(session.clients, session.record),
    )


def show_fleet(app: App, status: FleetStatus, as_json: bool) -> None:
    doc = status.to_json()
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    from rich.table import Table

    summary = Table(show_header=False, box=None, padding=(0, 2))
    summary.add_row("fleet", f"{doc['name']} in {doc['region']} ({doc['instance_type']})")
    summary.add_row("endpoint", str(doc["endpoint"]))
    summary.add_row("load balancer", doc["load_balancer_dns_name"])
    cert = doc["certificate"]
    summary.add_row(
        "certificate",
        f"{cert['arn'] or '-'} (pinned sha256 {cert['pinned_sha256'] or 'none yet'})",
    )
    bounds = f"{doc['min_size']}..{doc['max_size']}, desired {doc['desired_capacity']}"
    summary.add_row("replicas", bounds + (" (stopped)" if doc["stopped"] else ""))
    healthy = f"{doc['healthy_replicas']} healthy"
    summary.add_row("health", f"[green]{healthy}" if doc["ok"] else f"[red]{healthy}")
    summary.add_row("cost now", f"${doc['hourly_usd_on_demand']:.3f}/hour on demand")
    app.out.print(summary)
    if status.wake is not None:
        for line in status.wake.lines():
            app.out.print(line, highlight=False)
    table = Table(title="replicas", title_justify="left")
    for column in ("instance", "zone", "lifecycle", "target", "reason", "bootstrap"):
        table.add_column(column)
    for r in doc["replicas"]:
        table.add_row(
            r["instance_id"],
            r["zone"],
            r["lifecycle_state"],
            r["target_health"],
            r["target_reason"],
            r["bootstrap_stage"],
        )
    app.out.print(table)
