"""``qwen3vl-aws plan-serving``: an instance type's engine flags, and the arithmetic behind."""

from __future__ import annotations

import json
import shlex
from typing import TYPE_CHECKING

import click

from ..aws.catalog import DEFAULT_INSTANCE_TYPE
from . import App, pass_app
from .serving_opts import engine_option, serving_options

if TYPE_CHECKING:
    from rich.table import Table

    from ..serving.overrides import ServingOverrides
    from ..serving.planner import ServingPlan


@click.command(name="plan-serving")
@click.option(
    "--instance-type",
    "-t",
    default=DEFAULT_INSTANCE_TYPE,
    show_default=True,
    help="EC2 instance type (g5, g6 or g6e family).",
)
@engine_option
@serving_options
@click.option("--offline", is_flag=True, help="Use the built-in GPU table; do not ask EC2.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@pass_app
def command(
    app: App,
    instance_type: str,
    engine: str,
    serving: ServingOverrides,
    offline: bool,
    as_json: bool,
) -> None:
    """Show the engine flags apply will use on an instance type, and why."""
    from ..serving.engine_flags import ENGINE_NAMES, engine_args, translation_note

    plan = serving.plan_for(instance_type, None if offline else app.clients())
    args = engine_args(plan, engine)
    if as_json:
        click.echo(json.dumps({**plan.to_json(), "engine": engine, "engine_args": args}, indent=2))
        return
    app.out.print(_summary(plan))
    app.out.print("\nHow it is worked out:")
    note = translation_note(plan, engine)
    lines = [*plan.explanation, note] if note else plan.explanation
    for number, line in enumerate(lines, start=1):
        app.out.print(f"  {number:>2}. {line}", markup=False)
    app.out.print(f"\n{ENGINE_NAMES[engine]} flags:")
    app.out.print(f"  {shlex.join(args)}", markup=False)


def _summary(plan: ServingPlan) -> Table:
    from rich.table import Table

    gpu = plan.gpu
    table = Table(
        title=f"Serving plan for {plan.instance_type} ({gpu.count} x {gpu.name})",
        title_justify="left",
    )
    table.add_column("quantity")
    table.add_column("value", overflow="fold")
    side = int(plan.largest_image_pixels**0.5)
    rows = (
        ("model", f"{plan.model_id} ({plan.precision.upper()})"),
        ("tensor parallel size", str(plan.tensor_parallel_size)),
        ("max model length", f"{plan.max_model_len:,} tokens"),
        ("KV cache", f"{plan.kv_tokens:,} tokens x {plan.kv_bytes_per_token:,} bytes"),
        ("full-length requests at once", str(plan.concurrency)),
        ("largest image", f"{plan.largest_image_pixels:,} pixels (about {side}x{side})"),
        ("video", "on" if plan.video else "off"),
    )
    for name, value in rows:
        table.add_row(name, value)
    return table
