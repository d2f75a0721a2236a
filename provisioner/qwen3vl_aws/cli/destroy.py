"""``qwen3vl-aws destroy``: remove everything ``apply`` created, then forget the deployment."""

from __future__ import annotations

import click

from . import App, pass_app


@click.command(name="destroy")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def command(app: App, yes: bool) -> None:
    """Terminate the instance (or the fleet's replicas, load balancer and imported certificate)
    and delete its Elastic IP, security groups, IAM role and API key."""
    from ..deployment import load_deployment
    from ..provision import destroy, terraform_for
    from .tfprogress import TerraformProgress

    deployment = load_deployment(app.name)
    if deployment.is_fleet:
        what = (
            "its Auto Scaling group and every replica with its disk, the load balancer, its "
            "listener and certificate, the launch template, alarms, the security groups"
        )
    else:
        what = (
            f"instance {deployment.instance_id or '(none yet)'} and its disk, the Elastic IP "
            f"{deployment.public_ip or '(none yet)'}, the security group"
        )
    if not yes:
        click.confirm(
            f"Destroy deployment {deployment.name!r} in {deployment.region}: {what}, the IAM "
            "role, and the API-key secret (deleted at once, without a recovery window: the key "
            "stops working and cannot be restored)?",
            abort=True,
            err=True,
        )
    # A fleet's imported listener certificate is deleted from ACM after Terraform's destroy.
    acm = app.deployment().clients.client("acm") if deployment.is_fleet else None
    with TerraformProgress(app.err, "Destroying") as sink:
        destroy(deployment.name, terraform_for(deployment.name), sink, acm_client=acm)
    app.out.print(f"Destroyed {deployment.name!r} in {deployment.region}; nothing of it is left.")
