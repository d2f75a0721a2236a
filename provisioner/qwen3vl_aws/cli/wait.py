"""``qwen3vl-aws wait``: follow the deployment's start-up until the endpoint answers."""

from __future__ import annotations

import click

from . import App, pass_app, ready_timeout_option


@click.command(name="wait")
@ready_timeout_option
@pass_app
def command(app: App, timeout: float) -> None:
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
    wait_until_ready(deployment, session.clients, session.channel, timeout=timeout, console=app.err)
    instance = describe_instance(session.clients.client("ec2"), deployment.instance_id)
    timeline = read_timeline(session.channel, instance) if instance else None
    if timeline is not None:  # where the start's seconds went
        show_timeline(app.err, deployment.name, timeline)
    app.out.print(f"Ready: {deployment.endpoint} (certificate pinned at {deployment.cert_path})")
