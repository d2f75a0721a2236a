"""The command channel interface every transport implements."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Protocol

from ...errors import ChannelError


@dataclass(frozen=True)
class CommandResult:
    """What came back from one script run on the instance."""

    exit_code: int
    stdout: str
    stderr: str
    truncated: bool = False  # the transport cut the output (SSM keeps 24,000 characters)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def check(self, what: str) -> CommandResult:
        """Return self, or raise :class:`ChannelError` naming ``what`` and the output's tail."""
        if not self.ok:
            tail = (self.stderr or self.stdout).strip().splitlines()[-5:]
            raise ChannelError(
                f"{what} failed on the instance (exit {self.exit_code}): " + " | ".join(tail)
            )
        return self


class CommandChannel(Protocol):
    """Runs a bash script as root on the instance. Scripts never carry secrets."""

    def run(self, script: str, *, timeout: float = 120.0) -> CommandResult:
        """Run ``script`` with bash; return its exit code and output, or raise ChannelError."""
        ...


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
