"""``qwen3vl-aws bake``: an AMI of the ready instance, so new instances skip the packages stage."""

from __future__ import annotations

import json

import click

from . import App, pass_app


@click.command(name="bake")
@click.option("--list", "list_", is_flag=True, help="List the baked images of this region.")
@click.option(
    "--delete",
    "delete",
    metavar="AMI_ID",
    help="Deregister a baked image and delete its snapshots.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts).")
@pass_app
def command(app: App, list_: bool, delete: str | None, yes: bool, as_json: bool) -> None:
    """Make an AMI of the deployment's ready instance (engine, venvs and weights on its disk),
    tagged with the pinned versions and the bootstrap's sha256; `apply` then launches it
    whenever those match. The images' EBS snapshots are billed per GB-month until deleted."""
    from ..instance.bake import bake_instance, delete_image, list_baked

    session = app.deployment()
    deployment = session.record
    ec2 = session.clients.client("ec2")
    if list_:
        images = list_baked(ec2)
        if as_json:
            rows = [{**img.__dict__, "matches": img.matches_current_pins} for img in images]
            click.echo(json.dumps(rows, indent=2, default=list))
            return
        from rich.table import Table

        table = Table(title=f"baked images in {deployment.region}")
        for column in ("image", "created", "state", "engine", "matches pins", "snapshots"):
            table.add_column(column)
        for img in images:
            table.add_row(
                img.image_id,
                img.created,
                img.state,
                img.tags.get("qwen3vl:engine", "?"),
                "yes" if img.matches_current_pins else "no",
                " ".join(img.snapshots),
            )
        app.out.print(table)
        return
    if delete:
        if not yes:
            click.confirm(f"Deregister {delete} and delete its snapshots?", abort=True, err=True)
        gone = delete_image(ec2, delete)
        app.out.print(f"Deleted {gone.image_id} and snapshots {', '.join(gone.snapshots) or '-'}.")
        return
    if not yes:
        click.confirm(
            f"Make an AMI of {deployment.instance_id}? Its snapshots (the root volume, weights "
            "included) are billed until `qwen3vl-aws bake --delete`.",
            abort=True,
            err=True,
        )
    app.out.print("Baking (secrets are moved off the disk for the moment of the snapshot) ...")
    image_id = bake_instance(
        ec2,
        session.channel,
        deployment.instance_id,
        deployment.engine,
        deployment.name,
    )
    app.out.print(f"Baked {image_id}. `apply` launches it while the pins and bootstrap match.")
