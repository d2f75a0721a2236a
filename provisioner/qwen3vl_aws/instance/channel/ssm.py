"""SSM Run Command transport: send a script, wait with the ``command_executed`` waiter, collect.

Three ways a command can go wrong are told apart, because each needs a different fix:

* the instance is not a managed node (``InvalidInstanceId`` / absent from
  ``DescribeInstanceInformation``): agent, instance profile or network path to SSM;
* the command was never picked up (``Pending`` / ``Delayed`` until ``DeliveryTimedOut``): the
  agent lost its connection or the instance is overloaded;
* the script ran and failed (``Failed`` with its exit code): returned as a non-zero
  :class:`CommandResult`, like every other transport does, for the caller to ``check()``.

GetCommandInvocation returns at most 24,000 characters of stdout and 8,000 of stderr; a result
that reaches either cap is flagged ``truncated``.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import botocore.exceptions

from ...errors import ChannelError
from .base import CommandResult

STDOUT_CAP = 24_000
STDERR_CAP = 8_000
DOCUMENT = "AWS-RunShellScript"

NOT_REGISTERED_HINT = (
    "Check that the SSM agent runs on the instance, that its role keeps the ssm-agent policy "
    "(ssm:UpdateInstanceInformation, ec2messages:*, ssmmessages:*), and that it can reach the ssm, "
    "ssmmessages and ec2messages "
    "endpoints (public internet or VPC endpoints). A freshly launched instance needs a minute or "
    "two to register."
)
DELIVERY_HINT = (
    "The SSM agent never picked the command up. Check that the instance is running, that the "
    "agent is online (`aws ssm describe-instance-information`), and that the instance is not "
    "overloaded; then try again."
)


def wrap_in_bash(script: str) -> str:
    """AWS-RunShellScript runs ``sh``; hand the script to bash through a quoted here-document."""
    delimiter = "QWEN3VL_SCRIPT_END"
    while delimiter in script:
        delimiter += "_"
    return f"bash <<'{delimiter}'\n{script.rstrip()}\n{delimiter}\n"


class SsmChannel:
    """Runs scripts as root on one instance through SSM Run Command."""

    def __init__(
        self,
        ssm: Any,
        instance_id: str,
        *,
        poll_delay: float = 2.0,
        delivery_timeout: int = 120,
    ) -> None:
        self._ssm = ssm
        self._instance_id = instance_id
        self._poll_delay = poll_delay
        # SendCommand's TimeoutSeconds: how long the command may wait to be delivered (>= 30).
        self._delivery_timeout = max(30, delivery_timeout)

    def run(self, script: str, *, timeout: float = 120.0) -> CommandResult:
        command_id = self._send(script, timeout)
        response = self._wait(command_id, timeout)
        return _result(response)

    def _send(self, script: str, timeout: float) -> str:
        try:
            response = self._ssm.send_command(
                InstanceIds=[self._instance_id],
                DocumentName=DOCUMENT,
                TimeoutSeconds=self._delivery_timeout,
                Parameters={
                    "commands": [wrap_in_bash(script)],
                    "executionTimeout": [str(max(1, math.ceil(timeout)))],
                },
                Comment="qwen3vl-aws",
            )
        except botocore.exceptions.ClientError as exc:
            if _error_code(exc) == "InvalidInstanceId":
                raise ChannelError(self._not_registered_message()) from exc
            raise ChannelError(f"SSM refused the command: {_error_text(exc)}") from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise ChannelError(f"Cannot reach SSM to send the command: {exc}") from exc
        return response["Command"]["CommandId"]

    def _wait(self, command_id: str, timeout: float) -> dict[str, Any]:
        """Wait with the ``command_executed`` waiter; map every way it stops to a clear outcome."""
        budget = self._delivery_timeout + timeout + 30  # SSM's own bookkeeping lags a little
        delay = self._poll_delay
        attempts = max(2, math.ceil(budget / max(delay, 1.0)))
        waiter = self._ssm.get_waiter("command_executed")
        try:
            waiter.wait(
                CommandId=command_id,
                InstanceId=self._instance_id,
                WaiterConfig={"Delay": delay, "MaxAttempts": attempts},
            )
        except botocore.exceptions.WaiterError as exc:
            last = exc.last_response or {}
            if "Error" in last and "Status" not in last:
                raise ChannelError(
                    f"SSM could not report on command {command_id}: "
                    f"{last['Error'].get('Code')}: {last['Error'].get('Message')}"
                ) from exc
            if last.get("Status") == "Failed" and last.get("StatusDetails") == "Failed":
                return last  # the script ran and exited non-zero: a result, not a channel error
            self._cancel(command_id, last)
            raise ChannelError(self._stopped_message(command_id, last, timeout)) from exc
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise ChannelError(f"Lost contact with SSM waiting for {command_id}: {exc}") from exc
        try:
            return self._ssm.get_command_invocation(
                CommandId=command_id, InstanceId=self._instance_id
            )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise ChannelError(f"Cannot read the output of {command_id} from SSM: {exc}") from exc

    def _cancel(self, command_id: str, last: dict[str, Any]) -> None:
        """Stop a command the waiter gave up on, so it cannot run later by surprise."""
        if last.get("Status") not in ("Pending", "InProgress", "Delayed"):
            return
        # Best effort: the error raised next already says what happened.
        with contextlib.suppress(botocore.exceptions.ClientError):
            self._ssm.cancel_command(CommandId=command_id, InstanceIds=[self._instance_id])

    def _stopped_message(self, command_id: str, last: dict[str, Any], timeout: float) -> str:
        status, details = last.get("Status"), last.get("StatusDetails")
        where = f"command {command_id} on {self._instance_id}"
        if status in ("Pending", "Delayed") or details == "DeliveryTimedOut":
            return f"Delivery time-out: {where} was not picked up (status {details}). " + (
                DELIVERY_HINT + " " + self._registration_detail()
            )
        if status == "InProgress" or details == "ExecutionTimedOut":
            return (
                f"Execution time-out: {where} started but did not finish within {timeout:.0f} s; "
                "it was cancelled. Raise --timeout or look at the instance's logs." + _tail(last)
            )
        if details in ("Undeliverable", "Terminated"):
            return (
                f"{where} is {details.lower()}: the instance is stopped, terminated or not "
                "reachable by SSM. " + NOT_REGISTERED_HINT
            )
        if details == "AccessDenied":
            return f"{where}: access denied. Your IAM identity needs ssm:SendCommand on it."
        return f"{where} ended with status {status} ({details})." + _tail(last)

    def _not_registered_message(self) -> str:
        return (
            f"Instance {self._instance_id} is not registered with SSM. "
            + NOT_REGISTERED_HINT
            + " "
            + self._registration_detail()
        ).strip()

    def _registration_detail(self) -> str:
        """What DescribeInstanceInformation says about the instance, as one sentence."""
        try:
            info = self._ssm.describe_instance_information(
                Filters=[{"Key": "InstanceIds", "Values": [self._instance_id]}]
            ).get("InstanceInformationList", [])
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
            return ""
        if not info:
            return "SSM has no record of this instance (DescribeInstanceInformation is empty)."
        ping = info[0].get("PingStatus", "unknown")
        seen = info[0].get("LastPingDateTime")
        return f"SSM reports its agent as {ping}" + (f" (last seen {seen})." if seen else ".")


def _result(response: dict[str, Any]) -> CommandResult:
    stdout = response.get("StandardOutputContent", "") or ""
    stderr = response.get("StandardErrorContent", "") or ""
    return CommandResult(
        exit_code=int(response.get("ResponseCode", -1)),
        stdout=stdout,
        stderr=stderr,
        truncated=len(stdout) >= STDOUT_CAP or len(stderr) >= STDERR_CAP,
    )


def _tail(response: dict[str, Any]) -> str:
    text = response.get("StandardErrorContent") or response.get("StandardOutputContent") or ""
    lines = text.strip().splitlines()[-5:]
    return (" Last output: " + " | ".join(lines)) if lines else ""


def _error_code(exc: botocore.exceptions.ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _error_text(exc: botocore.exceptions.ClientError) -> str:
    err = exc.response.get("Error", {})
    return f"{err.get('Code', 'Error')}: {err.get('Message', exc)}"
