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
    from ..aws import ClientFactory
    from ..channel.factory import channel_for
    from ..deployment import load_deployment
    from ..deployment_status import describe_instance
    from ..readiness import wait_until_ready
    from ..timeline import read_timeline
    from .status import show_timeline

    deployment = load_deployment(app.name)
    clients = ClientFactory(region=deployment.region, profile=app.profile)
    channel = channel_for(deployment, clients)
    wait_until_ready(deployment, clients, channel, timeout=timeout, console=app.err)
    instance = describe_instance(clients.client("ec2"), deployment.instance_id)
    timeline = read_timeline(channel, instance) if instance else None
    if timeline is not None:  # where the start's seconds went
        show_timeline(app.err, deployment.name, timeline)
    app.out.print(f"Ready: {deployment.endpoint} (certificate pinned at {deployment.cert_path})")
