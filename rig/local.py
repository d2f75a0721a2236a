"""The rig's ``local`` transport: the "instance" is this machine under a scratch root.

The product knows only SSM and SSH; :func:`register` adds ``local`` to its channel factory for the
node tests and ``make demo``. A ``local`` deployment records ``extra["local_root"]`` (becomes
``QWEN3VL_ROOT``, which every instance script honours) and optionally ``extra["local_path"]`` (put
first on ``PATH``: the rig's ``systemctl``/``nvidia-smi`` stand-ins on a machine without systemd or
a GPU).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from qwen3vl_aws.deployment import Deployment
from qwen3vl_aws.errors import ChannelError, UsageError
from qwen3vl_aws.instance.channel.base import CommandResult
from qwen3vl_aws.instance.channel.factory import register_transport


class LocalChannel:
    """Runs scripts on this machine: the transport for the node rig and ``make demo``."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self._env = env

    def run(self, script: str, *, timeout: float = 120.0) -> CommandResult:
        try:
            proc = subprocess.run(
                ["bash", "-c", script],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=self._env,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ChannelError(f"The command did not finish within {timeout:.0f} s.") from exc
        return CommandResult(proc.returncode, proc.stdout, proc.stderr)


def local_channel(
    deployment: Deployment, clients: Any = None, accept_host_key: str | None = None
) -> LocalChannel:
    """Scripts run on this machine with the deployment's root prefix and optional stand-in tools."""
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


def register() -> None:
    """Let deployments with ``transport == "local"`` open a :class:`LocalChannel`."""
    register_transport("local", local_channel)
