"""Test doubles for the command channel (the SSM or SSH transport a deployment is reached by)."""

from __future__ import annotations

from typing import Any

from botocore.stub import ANY, Stubber
from qwen3vl_aws.instance.channel.base import CommandResult
from qwen3vl_aws.instance.channel.ssm import SsmChannel


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


def expect_send_command(stubber: Stubber, parameters: Any = ANY) -> None:
    """SSM accepts one shell command for INSTANCE (its parameters checked when given)."""
    stubber.add_response(
        "send_command",
        {"Command": {"CommandId": COMMAND_ID}},
        {
            "InstanceIds": [INSTANCE],
            "DocumentName": "AWS-RunShellScript",
            "TimeoutSeconds": 30,
            "Parameters": parameters,
            "Comment": ANY,
        },
    )


def expect_poll(stubber: Stubber, status: str, details: str | None = None, **extra: Any) -> None:
    """One GetCommandInvocation answer for the command: its status, details and ``extra`` fields."""
    stubber.add_response(
        "get_command_invocation",
        {
            "CommandId": COMMAND_ID,
            "InstanceId": INSTANCE,
            "Status": status,
            "StatusDetails": details or status,
            **extra,
        },
        {"CommandId": COMMAND_ID, "InstanceId": INSTANCE},
    )
