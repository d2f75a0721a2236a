"""``qwen3vl-aws logs``: the engine's, the gateway's or the bootstrap's log, over the channel."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from . import App, pass_app

if TYPE_CHECKING:
    from ..instance.status import LogChunk


@click.command(name="logs")
@click.option(
    "--unit",
    type=click.Choice(["engine", "gateway", "bootstrap", "vllm"]),
    default="engine",
    show_default=True,
    help="Which log: the engine unit (vLLM or SGLang; 'vllm' is its old name), the nginx "
    "gateway unit, or the bootstrap log file.",
)
@click.option("--since", metavar="WHEN", help="Only newer lines: 30s, 10m, 2h, 1d or ISO 8601.")
@click.option(
    "--lines", "-n", type=click.IntRange(min=1), default=200, show_default=True, help="Tail length."
)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines (Ctrl-C stops).")
@click.option(
    "--interval",
    type=click.FloatRange(min=1),
    default=5,
    show_default=True,
    help="Seconds between polls with --follow (SSM does not stream).",
)
@pass_app
def command(
    app: App, unit: str, since: str | None, lines: int, follow: bool, interval: float
) -> None:
    """Print the last lines of a log on the instance (the API key never appears in them)."""
    from ..instance.status import follow_log, now_utc, parse_since, read_log

    unit = "engine" if unit == "vllm" else unit
    since_at = parse_since(since, now_utc()) if since else None
    channel = app.deployment().channel
    if not follow:
        _print(app, read_log(channel, unit, lines=lines, since=since_at))
        return
    try:
        for chunk in follow_log(channel, unit, lines=lines, since=since_at, interval=interval):
            _print(app, chunk)
    except KeyboardInterrupt:
        pass


def _print(app: App, chunk: LogChunk) -> None:
    for line in chunk.lines:
        click.echo(line)
    if chunk.truncated:
        app.err.print("[yellow]SSM cut the output short: ask for fewer --lines.[/yellow]")
