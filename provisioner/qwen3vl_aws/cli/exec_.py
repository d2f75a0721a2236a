"""``qwen3vl-aws exec -- CMD``: run a command on the instance through the command channel."""

from __future__ import annotations

import shlex
import sys

import click

from . import App, pass_app


@click.command(name="exec", context_settings={"ignore_unknown_options": True})
@click.option(
    "--timeout", type=click.FloatRange(min=1), default=120, show_default=True, help="Seconds."
)
@click.option(
    "--accept-host-key",
    metavar="SHA256:...",
    help="SSH only: trust this host key fingerprint on first connection (after checking it).",
)
@click.argument("cmd", nargs=-1, required=True, type=click.UNPROCESSED)
@pass_app
def command(app: App, timeout: float, accept_host_key: str | None, cmd: tuple[str, ...]) -> None:
    """Run CMD as root on the instance (SSM by default, SSH for key-pair deployments).

    Prints the command's stdout and stderr and exits with its exit code.
    """
    session = app.deployment(accept_host_key=accept_host_key)
    result = session.channel.run(shlex.join(cmd), timeout=timeout)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    if result.truncated:
        app.err.print(
            "[yellow]Output truncated by SSM (24,000 characters of stdout, 8,000 of stderr); "
            "redirect it to a file on the instance to see all of it.[/yellow]",
            soft_wrap=True,
        )
    sys.exit(result.exit_code)
