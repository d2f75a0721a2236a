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
    from ..serving.planner import ModeOutcome, ServingPlan


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

    clients = None if offline else app.clients()
    plan = serving.plan_for(instance_type, clients)
    modes = serving.modes_for(instance_type, clients)
    args = engine_args(plan, engine)
    if as_json:
        doc = {**plan.to_json(), "engine": engine, "engine_args": args}
        doc["modes"] = [mode.to_json() for mode in modes]
        click.echo(json.dumps(doc, indent=2))
        return
    app.out.print(_summary(plan))
    app.out.print(_modes_table(plan, modes))
    app.out.print("\nHow it is worked out:")
    note = translation_note(plan, engine)
    lines = [*plan.explanation, note] if note else plan.explanation
    for number, line in enumerate(lines, start=1):
        app.out.print(f"  {number:>2}. {line}", markup=False)
    app.out.print(f"\n{ENGINE_NAMES[engine]} flags:")
    app.out.print(f"  {shlex.join(args)}", markup=False)


def _summary(plan: ServingPlan) -> Table:
    from rich.table import Table

    from ..serving.planner import engine_versions

    gpu = plan.gpu
    table = Table(
        title=f"Serving plan for {plan.instance_type} ({gpu.count} x {gpu.name})",
        title_justify="left",
    )
    table.add_column("quantity")
    table.add_column("value", overflow="fold")
    side = int(plan.largest_image_pixels**0.5)
    versions = engine_versions()
    rows = (
        (
            "vLLM",
            f"{versions['vllm_version']} (pinned; memory model calibrated on "
            f"{versions['calibrated_on_vllm_version']})",
        ),
        ("model", f"{plan.model_id} ({plan.precision.upper()})"),
        ("KV-cache dtype", plan.kv_cache_dtype),
        ("tensor parallel size", str(plan.tensor_parallel_size)),
        ("max model length", f"{plan.max_model_len:,} tokens"),
        ("KV cache", f"{plan.kv_tokens:,} tokens x {plan.kv_bytes_per_token:,} bytes"),
        ("full-length requests at once", str(plan.concurrency)),
        (
            "GPU memory, whole process",
            f"{plan.process_bytes_per_gpu / 1024**2:,.0f} of {gpu.memory_mib:,} MiB per GPU",
        ),
        ("largest image", f"{plan.largest_image_pixels:,} pixels (about {side}x{side})"),
        ("video", "on" if plan.video else "off"),
    )
    for name, value in rows:
        table.add_row(name, value)
    return table


def _modes_table(plan: ServingPlan, modes: list[ModeOutcome]) -> Table:
    """Every mode side by side: the same overrides, each precision's context and cache (the
    explanation's last lines say which options select the others)."""
    from rich.table import Table

    table = Table(title=f"Modes on {plan.instance_type}", title_justify="left")
    table.add_column("mode")
    for column in ("max model length", "KV tokens", "largest image"):
        table.add_column(column, justify="right")
    for outcome in modes:
        p = outcome.plan
        if p is None:
            table.add_row(outcome.mode, "does not fit", "", "")
            continue
        chosen = " (this plan)" if p.mode == plan.mode else ""
        table.add_row(
            outcome.mode + chosen,
            f"{p.max_model_len:,}",
            f"{p.kv_tokens:,}",
            f"{p.largest_image_pixels / 1e6:.2f} MP",
        )
    return table
