"""``qwen3vl-aws stop`` / ``start``: stop paying for the GPU, and bring the endpoint back."""

from __future__ import annotations

import click

from . import App, pass_app

_TIMEOUT = click.option(
    "--timeout",
    type=click.FloatRange(min=10),
    default=900,
    show_default=True,
    help="Seconds to wait for the instance.",
)


@click.command(name="stop")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@_TIMEOUT
@pass_app
def stop(app: App, yes: bool, timeout: float) -> None:
    """Stop the instance: the endpoint goes offline, GPU hours stop being billed.

    The EBS volume and the Elastic IP remain (and are still billed), and with them the model
    weights, unless the deployment chose to cache them on the instance store (wiped by a stop).
    """
    from ..instance.power import stop_instance

    session = app.deployment()
    deployment = session.record
    if deployment.is_fleet:
        _stop_fleet(app, session, yes)
        return
    if not yes:
        click.confirm(
            f"Stop {deployment.instance_id} ({deployment.instance_type}); the endpoint "
            f"{deployment.endpoint} stops answering until `qwen3vl-aws start`?",
            abort=True,
            err=True,
        )
    change = stop_instance(deployment, session.clients, timeout=timeout)
    if change.changed:
        app.out.print(f"Stopped {change.instance_id}. Start it again with `qwen3vl-aws start`.")
    else:
        app.out.print(f"{change.instance_id} was already stopped.")


@click.command(name="start")
@_TIMEOUT
@click.option("--no-wait", is_flag=True, help="Return once the instance runs; skip `wait`.")
@pass_app
def start(app: App, timeout: float, no_wait: bool) -> None:
    """Start the stopped instance; the endpoint comes back on the same address.

    The bootstrap runs again at boot (downloading the weights again only if the deployment
    cached them on the instance store); without --no-wait this waits, like `qwen3vl-aws wait`,
    until a one-token chat answers.
    """
    from ..instance.power import start_instance
    from ..instance.readiness import wait_until_ready

    session = app.deployment()
    deployment = session.record
    if deployment.is_fleet:
        _start_fleet(app, session, timeout, no_wait)
        return
    change = start_instance(deployment, session.clients, timeout=timeout)
    verb = "Started" if change.changed else "Already running:"
    app.out.print(f"{verb} {change.instance_id} on {change.public_ip}.")
    if not no_wait:
        wait_until_ready(
            deployment, session.clients, session.channel, timeout=timeout, console=app.err
        )
        app.out.print(f"Ready: {deployment.endpoint}")


def _stop_fleet(app: App, session, yes: bool) -> None:
    from ..fleet.control import stop as stop_fleet

    record = session.record
    if not yes:
        click.confirm(
            f"Stop fleet {record.name!r}: its group goes to 0 replicas (MIN, MAX and desired), "
            f"every replica is terminated (draining first), and {record.endpoint} answers 503 "
            "until `qwen3vl-aws start`? The load balancer stays (and is billed).",
            abort=True,
            err=True,
        )
    before = stop_fleet(session.clients.client("autoscaling"), record)
    if before is None:
        app.out.print(f"Fleet {record.name!r} was already stopped.")
        return
    app.out.print(
        f"Stopped fleet {record.name!r} (was {before.replicas}, {before.desired} desired). "
        "`qwen3vl-aws start` restores those bounds."
    )


def _start_fleet(app: App, session, timeout: float, no_wait: bool) -> None:
    from ..fleet.control import start as start_fleet
    from .wait import wait_for_fleet

    record = session.record
    restored = start_fleet(session.clients.client("autoscaling"), record)
    if restored is None:
        app.out.print(f"Fleet {record.name!r} is not stopped.")
    else:
        app.out.print(
            f"Started fleet {record.name!r}: bounds {restored.replicas}, "
            f"{restored.desired} desired."
        )
    if not no_wait:
        wait_for_fleet(app, session, timeout)
