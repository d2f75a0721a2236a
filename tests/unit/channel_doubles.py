"""Test doubles for the command channel (the SSM or SSH transport a deployment is reached by)."""

from __future__ import annotations

from qwen3vl_aws.channel.base import CommandResult


class RecordingChannel:
    """A channel that returns one fixed result and records every script it is asked to run."""

    def __init__(self, result: CommandResult) -> None:
        self.result = result
        self.scripts: list[str] = []

    def run(self, script: str, *, timeout: float = 120.0) -> CommandResult:
        self.scripts.append(script)
        return self.result
