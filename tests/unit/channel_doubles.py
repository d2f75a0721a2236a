"""Test doubles for the command channel (the SSM or SSH transport a deployment is reached by)."""

from __future__ import annotations

from typing import Any

from qwen3vl_aws.channel.base import CommandResult
from qwen3vl_aws.channel.ssm import SsmChannel


class RecordingChannel:
    """A channel that returns one fixed result and records every script it is asked to run."""

    def __init__(self, result: CommandResult) -> None:
        self.result = result
        self.scripts: list[str] = []

    def run(self, script: str, *, timeout: float = 120.0) -> CommandResult:
        self.scripts.append(script)
        return self.result


# SSM with its answers scripted by botocore's Stubber (moto's SSM never runs a script); the
# ``ssm`` fixture in conftest.py yields the client and its stubber.
INSTANCE = "i-0123456789abcdef0"
COMMAND_ID = "11111111-2222-3333-4444-555555555555"


def ssm_channel(client: Any) -> SsmChannel:
    """The SSM transport to INSTANCE over a stubbed client, polling without delay."""
    return SsmChannel(client, INSTANCE, poll_delay=0, delivery_timeout=30)
