"""``qwen3vl-aws destroy``: remove everything ``apply`` created, then forget the deployment."""

from __future__ import annotations

import click

from . import App, pass_app


@click.command(name="destroy")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def command(app: App, yes: bool) -> None:
    """Terminate the instance and delete its Elastic IP, security group, IAM role and API key."""
    from ..deployment import load_deployment
    from ..provision import destroy, terraform_for
    from .tfprogress import TerraformProgress

    deployment = load_deployment(app.name)
    if not yes:
        click.confirm(
            f"Destroy deployment {deployment.name!r} in {deployment.region}: instance "
            f"{deployment.instance_id or '(none yet)'} and its disk, the Elastic IP "
            f"{deployment.public_ip or '(none yet)'}, the security group, the IAM role, and the "
            "API-key secret (deleted at once, without a recovery window: the key stops working "
            "and cannot be restored)?",
            abort=True,
            err=True,
        )
    with TerraformProgress(app.err, "Destroying") as sink:
        destroy(deployment.name, terraform_for(deployment.name), sink)
    app.out.print(f"Destroyed {deployment.name!r} in {deployment.region}; nothing of it is left.")
