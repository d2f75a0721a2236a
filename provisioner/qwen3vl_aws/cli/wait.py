"""``qwen3vl-aws wait``: follow the deployment's start-up until the endpoint answers."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from . import App, pass_app, ready_timeout_option

if TYPE_CHECKING:
    from ..session import DeploymentSession


@click.command(name="wait")
@ready_timeout_option
@click.option("--json", "as_json", is_flag=True, help="Print the ready endpoint as JSON.")
@pass_app
def command(app: App, timeout: float, as_json: bool) -> None:
    """Show each start-up stage until a one-token chat answers through the endpoint.

    Also fetches the instance's TLS certificate over the command channel and pins it, so every
    later client of this deployment trusts exactly that certificate.
    """
    from ..instance.probe import describe_instance
    from ..instance.readiness import wait_until_ready
    from ..instance.timeline import read_timeline
    from .status import show_timeline

    session = app.deployment()
    deployment = session.record
    if deployment.is_fleet:
        wait_for_fleet(app, session, timeout, as_json=as_json)
        return
    wait_until_ready(deployment, session.clients, session.channel, timeout=timeout, console=app.err)
    instance = describe_instance(session.clients.client("ec2"), deployment.instance_id)
    timeline = read_timeline(session.channel, instance) if instance else None
    if timeline is not None:  # where the start's seconds went
        show_timeline(app.err, deployment.name, timeline)
    if as_json:
        from ..instance.endpoint import pinned_fingerprint

        doc = {
            "name": deployment.name,
            "ready": True,
            "endpoint": deployment.endpoint,
            "cert_path": str(deployment.cert_path),
            "pinned_sha256": pinned_fingerprint(deployment),
        }
        click.echo(json.dumps(doc, indent=2))
        return
    app.out.print(f"Ready: {deployment.endpoint} (certificate pinned at {deployment.cert_path})")


def wait_for_fleet(
    app: App, session: DeploymentSession, timeout: float, *, as_json: bool = False
) -> None:
    """Until max(MIN, 1) replicas are healthy behind the load balancer, with progress; then pin
    the listener's imported certificate (from ACM) where clients trust it."""
    from ..fleet.status import pin_listener_certificate, wait_healthy
    from ..instance.endpoint import fingerprint
    from .fleet_view import read_fleet, show_fleet

    record = session.record
    with app.err.status("Waiting for healthy replicas ...") as spinner:

        def progress(view, needed: int) -> None:
            states = ", ".join(f"{r.instance_id} {r.target_health}" for r in view.replicas)
            spinner.update(
                f"{view.healthy}/{needed} replicas healthy behind the load balancer "
                f"({states or 'none launched yet'})"
            )

        wait_healthy(session.clients, record, timeout=timeout, progress=progress)
    status = read_fleet(session, stages=as_json)
    certificate = "ACM-issued for the domain (publicly trusted)"
    if status.certificate_arn and not record.publicly_trusted:
        pem = pin_listener_certificate(
            session.clients.client("acm"), record, status.certificate_arn
        )
        app.err.print(f"Pinned the listener's certificate (sha256 {fingerprint(pem)}).")
        certificate = f"certificate pinned at {record.cert_path}"
    if as_json:
        show_fleet(app, status, as_json=True)
        return
    app.out.print(
        f"Ready: {record.endpoint} ({status.view.healthy} healthy replicas; {certificate})"
    )
