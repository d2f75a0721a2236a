"""``qwen3vl-aws key``: print the current API key, for pasting into a client."""

from __future__ import annotations

import click

from . import App, pass_app


@click.command(name="key")
@pass_app
def command(app: App) -> None:
    """Print the endpoint's current API key (it is a secret: mind where the output goes)."""
    click.echo(app.deployment().secret().current_value())
