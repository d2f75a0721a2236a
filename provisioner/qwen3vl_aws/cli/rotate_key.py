"""``qwen3vl-aws rotate-key``: replace the API key without dropping a request."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from . import App, pass_app

if TYPE_CHECKING:
    from ..session import DeploymentSession

DEFAULT_GRACE = 180.0


@click.command(name="rotate-key")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=DEFAULT_GRACE,
    show_default=True,
    help="Seconds both keys stay valid after the new one becomes current (0: none).",
)
@click.option(
    "--key",
    "key_source",
    metavar="-",
    help="Read the new key from stdin ('-'); default: generate one. Never pass a key as argument.",
)
@click.option("--show-key", is_flag=True, help="Print the new key when done.")
@click.option(
    "--abort", is_flag=True, help="Roll back an interrupted rotation instead of resuming it."
)
@click.option(
    "--accept-host-key",
    metavar="SHA256:...",
    help="SSH only: trust this host key fingerprint on first connection (after checking it).",
)
@pass_app
def command(
    app: App,
    grace: float,
    key_source: str | None,
    show_key: bool,
    abort: bool,
    accept_host_key: str | None,
) -> None:
    """Rotate the API key: new key pending, both accepted, promote, grace, old key refused.

    Run it again after an interruption to resume, or with --abort to roll back.
    """
    from ..errors import UsageError
    from ..keys.keygen import validate_key
    from ..keys.locks import exclusive

    if key_source is not None and key_source != "-":
        raise UsageError(
            "A key is never passed as an argument (it would show in `ps` and shell history): "
            "use --key - and pipe the key on stdin."
        )
    if abort and key_source is not None:
        raise UsageError("--abort rolls back; it takes no --key.")
    new_key = validate_key(sys.stdin.read()) if key_source else None

    session = app.deployment(accept_host_key=accept_host_key)
    with exclusive(session.record, "rotate-key"):
        _rotate(app, session, new_key, grace, show_key, abort)


def _rotate(
    app: App,
    session: DeploymentSession,
    new_key: str | None,
    grace: float,
    show_key: bool,
    abort: bool,
) -> None:
    """The rotation itself, run while this machine's rotate-key lock is held."""
    # A fleet's key sync reports each replica on an indented line under its step.
    rotation = session.rotation(
        report=lambda msg: app.out.print(msg if msg.startswith(" ") else f"• {msg}")
    )
    try:
        if abort:
            outcome = rotation.abort()
            if outcome is None:
                app.out.print("No rotation is in progress: nothing to roll back.")
            return
        outcome = rotation.rotate(new_key, grace=grace)
    except KeyboardInterrupt:
        app.err.print(
            "\nInterrupted. The key's labels in Secrets Manager record where it stopped: run "
            "`qwen3vl-aws rotate-key` to resume, or `qwen3vl-aws rotate-key --abort` to roll back.",
            soft_wrap=True,
        )
        sys.exit(130)
    app.out.print(f"New key is AWSCURRENT (version {outcome.current}).")
    if show_key:
        click.echo(session.secret().value(outcome.current))
    else:
        app.out.print(f"Read it with: qwen3vl-aws --name {app.name} key")
