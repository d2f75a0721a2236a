"""The CLI as the rig runs it: with the rig's `local` transport, or with a channel of a test's own.

``python -m rig.cli ARGS`` from the repository root behaves exactly like ``qwen3vl-aws ARGS``,
except that a deployment recorded with ``transport: local`` reaches the rig on this machine (what
``make demo`` runs). :func:`app_with_channel` is how tests hand the CLI a channel of their own.
"""

from __future__ import annotations

from functools import cached_property

from qwen3vl_aws.cli import App, main
from qwen3vl_aws.instance.channel.base import CommandChannel
from qwen3vl_aws.session import DeploymentSession

from .local import register


def app_with_channel(channel: CommandChannel, **fields: object) -> App:
    """An ``App`` whose deployments reach their instance (every replica of a fleet) through
    ``channel``, whatever transport."""

    class Session(DeploymentSession):
        @cached_property
        def channel(self) -> CommandChannel:
            return channel

        def replica_channel(self, instance_id: str) -> CommandChannel:
            return channel

    return App(session_type=Session, **fields)


if __name__ == "__main__":
    register()
    main()
