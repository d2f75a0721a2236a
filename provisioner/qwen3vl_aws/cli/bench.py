"""``qwen3vl-aws bench``: parse the options, run :func:`qwen3vl_aws.bench.run_bench`, print."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from . import App, pass_app

if TYPE_CHECKING:
    from ..bench.runner import BenchReport, LevelReport, RequestResult

KEY_ENV = ("QWEN3VL_API_KEY", "OPENAI_API_KEY")


def _levels(text: str) -> tuple[int, ...]:
    try:
        levels = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        levels = ()
    if not levels or min(levels) < 1:
        raise click.BadParameter("use positive integers separated by commas, e.g. 1,4,16")
    return levels


def _pair(text: str, sep: str, what: str) -> tuple[int, int]:
    low, found, high = text.partition(sep)
    if not found and sep == "-":
        high = low  # one number: a fixed length
    if not (low.strip().isdigit() and high.strip().isdigit()):
        raise click.BadParameter(f"use {what}")
    return int(low), int(high)


@click.command(name="bench")
@click.option(
    "--concurrency",
    default="10",
    show_default=True,
    help="Concurrent clients; a comma-separated list sweeps, e.g. 1,4,16.",
)
@click.option("--requests", type=int, help="Requests per level [default: 100].")
@click.option("--duration", type=float, help="Seconds per level, instead of --requests.")
@click.option("--prompt-tokens", default="700-900", show_default=True, help="MIN-MAX per request.")
@click.option("--output-tokens", default=40, show_default=True, help="Tokens each answer streams.")
@click.option("--images", default=0, show_default=True, help="Images per request.")
@click.option("--image-size", default="1920x1080", show_default=True, help="WIDTHxHEIGHT.")
@click.option("--warmup", type=int, help="Warm-up requests [default: the largest concurrency].")
@click.option(
    "--base-url",
    help="Any OpenAI base URL (https://host/v1) instead of the deployment; the key comes from "
    "QWEN3VL_API_KEY or OPENAI_API_KEY, or --key-stdin.",
)
@click.option("--model", help="Model to ask for [default: the deployment's, or the first listed].")
@click.option("--key-stdin", is_flag=True, help="Read the API key from stdin.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--chart",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a PNG of latency and throughput against concurrency (needs matplotlib).",
)
@pass_app
def command(app: App, **opts) -> None:
    """Measure the endpoint: TTFT p50/p95, inter-token latency, tokens/s, req/s and errors.

    By default the old deployment's shape: 10 concurrent clients, prompts of 700-900 tokens,
    40 output tokens, after a warm-up pass that is reported apart.
    """
    from dataclasses import replace

    from ..bench.runner import BenchConfig, run_bench

    config = BenchConfig(  # checked before anything is read or sent
        model=opts["model"] or "",
        concurrency=_levels(opts["concurrency"]),
        requests=opts["requests"],
        duration_s=opts["duration"],
        prompt_tokens=_pair(opts["prompt_tokens"], "-", "MIN-MAX, e.g. 700-900"),
        output_tokens=opts["output_tokens"],
        images=opts["images"],
        image_size=_pair(opts["image_size"], "x", "WIDTHxHEIGHT, e.g. 1920x1080"),
        warmup=opts["warmup"],
    )
    http, model = _client(app, opts)
    config = replace(config, model=model)
    try:
        with _RichProgress(app) as progress:
            report = run_bench(http, config, progress=progress)
    finally:
        http.close()
    if opts["chart"]:
        from ..bench.chart import write_chart

        write_chart(report, opts["chart"])
    if opts["as_json"]:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        app.out.print(_table(report))
        if opts["chart"]:
            app.out.print(f"Chart: {opts['chart']}")
    _fail_if_nothing_answered(report)


def _client(app: App, opts: dict):
    """The HTTP client and model: the deployment (pinned TLS, key from Secrets Manager unless
    --key-stdin) or --base-url (key from the environment or stdin, never from argv)."""
    from ..bench.runner import deployment_client, openai_client
    from ..keys.keygen import validate_key

    width = max(_levels(opts["concurrency"]))
    stdin_key = sys.stdin.read().strip() if opts["key_stdin"] else None
    if opts["base_url"]:
        key = stdin_key or next((os.environ[n] for n in KEY_ENV if os.environ.get(n)), None)
        http = openai_client(opts["base_url"], key, width)
        return http, opts["model"] or _first_model(http)
    from ..instance.endpoint import require_pinned

    session = app.deployment()
    deployment = session.record
    require_pinned(deployment)
    key = validate_key(stdin_key) if stdin_key else session.secret().current_value()
    return deployment_client(deployment, key, width), opts["model"] or deployment.served_model_name


def _first_model(http) -> str:
    import httpx

    from ..errors import CheckFailed

    try:
        response = http.get("models")
        response.raise_for_status()
        return response.json()["data"][0]["id"]
    except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
        raise CheckFailed(
            f"Could not list the models at {http.base_url}models ({exc}); pass --model."
        ) from exc


class _RichProgress:
    """A rich progress bar on stderr (stdout stays clean for --json)."""

    def __init__(self, app: App) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[errors]} errors"),
            TimeElapsedColumn(),
            console=app.err,
            transient=True,
        )
        self._task = None

    def __enter__(self) -> _RichProgress:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def start(self, label: str, total: int | None) -> None:
        self._task = self._bar.add_task(label, total=total, errors=0)

    def advance(self, result: RequestResult) -> None:
        task = self._bar.tasks[-1]
        errors = task.fields["errors"] + (0 if result.ok else 1)
        self._bar.update(self._task, advance=1, errors=errors)


def _table(report: BenchReport):
    from rich.table import Table

    c = report.config
    title = (
        f"qwen3vl-aws bench: {c.model}, {c.prompt_tokens[0]}-{c.prompt_tokens[1]} prompt / "
        f"{c.output_tokens} output tokens, {c.images} image(s) per request"
    )
    table = Table(title=title, title_justify="left")
    columns = ("pass", "clients", "requests", "errors", "TTFT p50", "TTFT p95", "inter-token")
    for column in (*columns, "output tok/s", "req/s"):
        table.add_column(column, justify="left" if column == "pass" else "right")
    rows = [("warm-up", report.warmup)] if report.warmup else []
    rows += [("measured", level) for level in report.levels]
    for name, level in rows:
        table.add_row(name, *_cells(level), style="dim" if name == "warm-up" else None)
    totals = report.totals()
    table.caption = (
        f"{totals['requests']} requests, {totals['prompt_tokens']:,} prompt and "
        f"{totals['completion_tokens']:,} completion tokens in all (warm-up included)"
    )
    return table


def _cells(level: LevelReport) -> list[str]:
    def ms(value: float | None) -> str:
        return f"{value * 1000:.0f} ms" if value is not None else "-"

    errors = str(level.errors)
    if level.error_samples:
        errors += f" ({level.error_samples[0][:60]})"
    return [
        str(level.concurrency),
        str(level.requests),
        errors,
        ms(level.ttft_p50_s),
        ms(level.ttft_p95_s),
        ms(level.itl_mean_s),
        f"{level.output_tokens_per_s:.1f}",
        f"{level.requests_per_s:.2f}",
    ]


def _fail_if_nothing_answered(report: BenchReport) -> None:
    from ..errors import CheckFailed

    measured = sum(level.requests for level in report.levels)
    failed = sum(level.errors for level in report.levels)
    if measured and failed == measured:
        sample = next((s for lv in report.levels for s in lv.error_samples), "no answer")
        raise CheckFailed(f"All {measured} measured requests failed: {sample}")
