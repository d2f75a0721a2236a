"""The ``qwen3vl-aws`` command: Click parses, calls a plain function, prints. Nothing else.

Subcommands live one per module (``cli/<command>.py``, each exposing ``command``) and are
imported only when invoked, so ``--help`` stays fast and boto3 is not loaded needlessly.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click
from rich.console import Console

from ..deployment import DEFAULT_NAME, validate_name
from ..errors import Qwen3vlError
from ..session import ClientMaker, DeploymentSession, make_clients

if TYPE_CHECKING:
    from ..aws.clients import ClientFactory

# command name -> module under qwen3vl_aws.cli that defines `command`
COMMANDS: dict[str, str] = {
    "apply": "apply",
    "bench": "bench",
    "destroy": "destroy",
    "status": "status",
    "plan-serving": "plan_serving",
    "wait": "wait",
    "health": "health",
    "logs": "logs",
    "stop": "power",
    "start": "power",
    "key": "key",
    "rotate-key": "rotate_key",
    "scale": "scale",
    "renew-cert": "renew_cert",
    "exec": "exec_",
    "bake": "bake",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (Click's documented lazy pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = COMMANDS.get(cmd_name)
        if module_name is None:
            return None
        module = importlib.import_module(f"{__name__}.{module_name}")
        attr = "command" if hasattr(module, "command") else cmd_name.replace("-", "_")
        return getattr(module, attr)

    def invoke(self, ctx: click.Context):
        """The one place toolkit errors become a message and an exit code (also under CliRunner)."""
        try:
            return super().invoke(ctx)
        except Qwen3vlError as exc:
            raise ToolkitError(exc) from exc


class ToolkitError(click.ClickException):
    """A :class:`Qwen3vlError` as Click shows it: ``Error: <message>`` and the error's exit code."""

    def __init__(self, error: Qwen3vlError) -> None:
        super().__init__(str(error))
        self.exit_code = error.exit_code


@dataclass
class App:
    """Passed to every command with ``@click.pass_obj``: global options and the ways to AWS.

    ``clients()`` is for commands that create a deployment (``--region`` or the shell's region).
    ``deployment()`` is for every command on a recorded one: its clients are always in the region
    it was created in. Tests pass their own ``App`` (``CliRunner().invoke(cli, args, obj=app)``)
    with a ``client_maker`` or a ``session_type`` of their own; nothing else builds clients or
    channels.
    """

    name: str = DEFAULT_NAME
    region: str | None = None
    profile: str | None = None
    out: Console = field(default_factory=lambda: Console(highlight=False, soft_wrap=True))
    err: Console = field(default_factory=lambda: Console(stderr=True, highlight=False))
    client_maker: ClientMaker = make_clients
    session_type: type[DeploymentSession] = DeploymentSession

    def clients(self) -> ClientFactory:
        """Clients in the region given on the command line or by the environment."""
        return self.client_maker(self.region, self.profile)

    def deployment(self, *, accept_host_key: str | None = None) -> DeploymentSession:
        """The recorded deployment ``--name``, with clients in its own region."""
        from ..deployment import load_deployment

        record = load_deployment(self.name)
        return self.session_type(
            record,
            self.client_maker(record.region, self.profile),
            accept_host_key=accept_host_key,
        )


pass_app = click.make_pass_decorator(App)

#: How long `apply` and `wait` follow the start-up before naming the stage that stalled.
ready_timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=1800,
    show_default=True,
    help="Seconds to wait for a chat to answer before naming the start-up stage that stalled.",
)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--name",
    "-n",
    default=DEFAULT_NAME,
    show_default=True,
    envvar="QWEN3VL_NAME",
    help="Deployment name (several can live side by side).",
)
@click.option(
    "--region",
    envvar=["AWS_REGION", "AWS_DEFAULT_REGION"],
    help="AWS region (default: AWS_REGION, then your profile's).",
)
@click.option("--profile", envvar="AWS_PROFILE", help="AWS credentials profile.")
@click.version_option(package_name="qwen3vl-aws")
@click.pass_context
def cli(ctx: click.Context, name: str, region: str | None, profile: str | None) -> None:
    """Run Qwen3-VL-8B-Instruct on your own AWS GPU instance behind a secure OpenAI endpoint."""
    try:
        validate_name(name)
    except Qwen3vlError as exc:
        raise click.BadParameter(str(exc), param_hint="--name") from None
    app = ctx.ensure_object(App)  # a test's own App, or a new one
    app.name, app.region, app.profile = name, region, profile


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``qwen3vl-aws`` script."""
    cli.main(args=argv, prog_name="qwen3vl-aws")
