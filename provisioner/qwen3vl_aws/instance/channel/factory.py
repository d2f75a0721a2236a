"""Pick the command channel a deployment was made for."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ...deployment import Deployment
from ...errors import UsageError
from .base import CommandChannel, LocalChannel
from .ssh import SshChannel, ec2_console_trust
from .ssm import SsmChannel


def known_hosts_path(deployment: Deployment) -> Path:
    """The deployment's own known_hosts file (never the user's ~/.ssh/known_hosts)."""
    return deployment.directory / "known_hosts"


def channel_for(
    deployment: Deployment, clients: Any, *, accept_host_key: str | None = None
) -> CommandChannel:
    """SSM Run Command (default), SSH or local, as ``deployment.transport`` says.

    ``local`` is the transport of the node rig and ``make demo``: the "instance" is this machine
    under a scratch root (see :func:`local_channel`). It never reaches AWS.

    ``clients`` is a :class:`~qwen3vl_aws.aws.ClientFactory` (or anything with ``client(name)``).
    ``accept_host_key`` is a SHA256 fingerprint the user checked and vouches for (SSH only).
    """
    if not deployment.instance_id:
        raise UsageError(
            f"Deployment {deployment.name!r} has no instance recorded: run `qwen3vl-aws apply`."
        )
    if deployment.transport == "ssm":
        return SsmChannel(clients.client("ssm"), deployment.instance_id)
    if deployment.transport == "ssh":
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
    if deployment.transport == "local":
        return local_channel(deployment)
    raise UsageError(
        f"Unknown transport {deployment.transport!r} for deployment {deployment.name!r}: "
        "expected 'ssm', 'ssh' or 'local'."
    )


def local_channel(deployment: Deployment) -> LocalChannel:
    """Scripts run on this machine with the instance's root prefix and optional stand-in tools.

    ``deployment.extra["local_root"]`` becomes ``QWEN3VL_ROOT`` (every instance script honours
    it); ``deployment.extra["local_path"]``, if set, is put first on ``PATH`` (the rig's
    ``systemctl``/``nvidia-smi`` stand-ins on a machine without systemd or a GPU).
    """
    root = str(deployment.extra.get("local_root") or "")
    if not root or not Path(root).is_dir():
        raise UsageError(
            f"Deployment {deployment.name!r} uses the local transport but its root "
            f"{root or '(none)'} is not a directory: set extra.local_root to the rig's scratch "
            "root (`make demo` does)."
        )
    env = dict(os.environ, QWEN3VL_ROOT=root)
    if deployment.extra.get("local_path"):
        env["PATH"] = f"{deployment.extra['local_path']}{os.pathsep}{env.get('PATH', '')}"
    return LocalChannel(env=env)
