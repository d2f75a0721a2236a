"""``qwen3vl-aws scale --replicas MIN:MAX``: a fleet's bounds, now and for the next apply."""

from __future__ import annotations

import click

from . import App, pass_app


@click.command(name="scale")
@click.option("--replicas", required=True, metavar="MIN:MAX", help="New bounds, e.g. 2:6 or 0:3.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def command(app: App, replicas: str, yes: bool) -> None:
    """Change the fleet's bounds: the Auto Scaling group moves at once (its desired capacity
    kept inside them), and the new bounds are recorded for the next `apply` and `plan`.

    Scaling to or from MIN 0 changes which scale-to-zero pieces exist: run `qwen3vl-aws apply
    --replicas MIN:MAX` for that instead.
    """
    from ..fleet.control import check_scale
    from ..fleet.options import parse_replicas
    from ..provision import scale_fleet, terraform_for

    low, high = parse_replicas(replicas)
    session = app.deployment()
    record = session.record
    check_scale(record, low, high)
    if not yes:
        current = record.fleet or {}
        click.confirm(
            f"Set fleet {record.name!r} to {low}..{high} replicas (now "
            f"{current.get('min_size')}..{current.get('max_size')})?",
            abort=True,
            err=True,
        )
    before, after = scale_fleet(session.clients, record, low, high, terraform_for(record.name))
    app.out.print(
        f"Fleet {record.name!r}: {before.replicas} -> {after.replicas}, desired {before.desired} "
        f"-> {after.desired}."
    )
