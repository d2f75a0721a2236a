"""The command channel interface every transport implements."""

from __future__ import annotations

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
