"""Pick the command channel a deployment was made for, by its ``transport``.

The product knows two transports: ``ssm`` (SSM Run Command, the default) and ``ssh`` (a key-pair
deployment). :func:`register_transport` adds another; the test rig registers ``local`` (scripts run
on this machine under a scratch root) that way, so no test seam lives here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...deployment import Deployment
from ...errors import UsageError
from .base import CommandChannel
from .ssh import SshChannel, ec2_console_trust
from .ssm import SsmChannel

#: (deployment, clients, accept_host_key) -> an open channel.
Transport = Callable[[Deployment, Any, str | None], CommandChannel]


def known_hosts_path(deployment: Deployment) -> Path:
    """The deployment's own known_hosts file (never the user's ~/.ssh/known_hosts)."""
    return deployment.directory / "known_hosts"


def _ssm(deployment: Deployment, clients: Any, accept_host_key: str | None) -> CommandChannel:
    return SsmChannel(clients.client("ssm"), deployment.instance_id)


def _ssh(deployment: Deployment, clients: Any, accept_host_key: str | None) -> CommandChannel:
    if not deployment.public_ip or not deployment.ssh_user:
        raise UsageError(
            f"Deployment {deployment.name!r} uses SSH but has no public address or SSH user "
            "recorded: run `qwen3vl-aws apply` again."
        )
    return SshChannel(
        deployment.public_ip,
        user=deployment.ssh_user,
        key_path=deployment.ssh_key_path,
        port=int(deployment.extra.get("ssh_port", 22)),
        known_hosts=known_hosts_path(deployment),
        trusted=ec2_console_trust(clients.client("ec2"), deployment.instance_id),
        accept_fingerprint=accept_host_key,
    )


TRANSPORTS: dict[str, Transport] = {"ssm": _ssm, "ssh": _ssh}


def register_transport(name: str, transport: Transport) -> None:
    """Make ``deployment.transport == name`` open channels with ``transport``."""
    TRANSPORTS[name] = transport


def channel_for(
    deployment: Deployment, clients: Any, *, accept_host_key: str | None = None
) -> CommandChannel:
    """The channel of ``deployment.transport``.

    ``clients`` is a :class:`~qwen3vl_aws.aws.clients.ClientFactory` in the deployment's region.
    ``accept_host_key`` is a SHA256 fingerprint the user checked and vouches for (SSH only).
    """
    if not deployment.instance_id:
        raise UsageError(
            f"Deployment {deployment.name!r} has no instance recorded: run `qwen3vl-aws apply`."
        )
    transport = TRANSPORTS.get(deployment.transport)
    if transport is None:
        raise UsageError(
            f"Unknown transport {deployment.transport!r} for deployment {deployment.name!r}: "
            f"expected one of {', '.join(sorted(TRANSPORTS))}."
        )
    return transport(deployment, clients, accept_host_key)
