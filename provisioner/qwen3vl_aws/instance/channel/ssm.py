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


class SsmCommands:
    """Sends Run Command scripts to managed instances and waits for each instance's outcome.

    The parts every SSM caller shares: :class:`SsmChannel` runs a script on one instance, the
    fleet's key sync (``fleet.keysync``) runs one command over many instances at once.
    """

    def __init__(self, ssm: Any, *, poll_delay: float = 2.0, delivery_timeout: int = 120) -> None:
        self.ssm = ssm
        self.poll_delay = poll_delay
        # SendCommand's TimeoutSeconds: how long the command may wait to be delivered (>= 30).
        self.delivery_timeout = max(30, delivery_timeout)

    def send(self, instance_ids: list[str], script: str, timeout: float, **spread: Any) -> str:
        """Send ``script`` to ``instance_ids``; ``spread`` adds SendCommand's MaxConcurrency,
        MaxErrors or a longer TimeoutSeconds. Returns the command id."""
        request = {
            "InstanceIds": instance_ids,
            "DocumentName": DOCUMENT,
            "TimeoutSeconds": self.delivery_timeout,
            "Parameters": {
                "commands": [wrap_in_bash(script)],
                "executionTimeout": [str(max(1, math.ceil(timeout)))],
            },
            "Comment": "qwen3vl-aws",
            **spread,
        }
        try:
            response = self.ssm.send_command(**request)
        except botocore.exceptions.ClientError as exc:
            if _error_code(exc) == "InvalidInstanceId":
                raise ChannelError(self.not_registered_message(instance_ids)) from exc
            raise ChannelError(f"SSM refused the command: {_error_text(exc)}") from exc
        except botocore.exceptions.BotoCoreError as exc:
            raise ChannelError(f"Cannot reach SSM to send the command: {exc}") from exc
        return response["Command"]["CommandId"]

    def wait(
        self, command_id: str, instance_id: str, timeout: float, budget: float
    ) -> CommandResult:
        """Wait up to ``budget`` seconds for the invocation on ``instance_id`` with the
        ``command_executed`` waiter; map every way it stops to a result or a clear error
        (``timeout`` is the script's execution time-out, for the message)."""
        delay = self.poll_delay
        attempts = max(2, math.ceil(budget / max(delay, 1.0)))
        waiter = self.ssm.get_waiter("command_executed")
        try:
            waiter.wait(
                CommandId=command_id,
                InstanceId=instance_id,
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
                return _result(last)  # the script ran and exited non-zero: a result
            self._cancel(command_id, instance_id, last)
            raise ChannelError(
                self._stopped_message(command_id, instance_id, last, timeout)
            ) from exc
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise ChannelError(f"Lost contact with SSM waiting for {command_id}: {exc}") from exc
        try:
            return _result(
                self.ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
            )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise ChannelError(f"Cannot read the output of {command_id} from SSM: {exc}") from exc

    def _cancel(self, command_id: str, instance_id: str, last: dict[str, Any]) -> None:
        """Stop a command the waiter gave up on, so it cannot run later by surprise."""
        if last.get("Status") not in ("Pending", "InProgress", "Delayed"):
            return
        # Best effort: the error raised next already says what happened.
        with contextlib.suppress(botocore.exceptions.ClientError):
            self.ssm.cancel_command(CommandId=command_id, InstanceIds=[instance_id])

    def _stopped_message(
        self, command_id: str, instance_id: str, last: dict[str, Any], timeout: float
    ) -> str:
        status, details = last.get("Status"), last.get("StatusDetails")
        where = f"command {command_id} on {instance_id}"
        if status in ("Pending", "Delayed") or details == "DeliveryTimedOut":
            return f"Delivery time-out: {where} was not picked up (status {details}). " + (
                DELIVERY_HINT + " " + self._registration_detail(instance_id)
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

    def not_registered_message(self, instance_ids: list[str]) -> str:
        which = ", ".join(instance_ids)
        subject = f"Instance {which} is" if len(instance_ids) == 1 else f"One of {which} is"
        details = " ".join(self._registration_detail(i, named=len(instance_ids) > 1)
                           for i in instance_ids)  # fmt: skip
        return f"{subject} not registered with SSM. {NOT_REGISTERED_HINT} {details}".strip()

    def _registration_detail(self, instance_id: str, *, named: bool = False) -> str:
        """What DescribeInstanceInformation says about the instance, as one sentence."""
        try:
            info = self.ssm.describe_instance_information(
                Filters=[{"Key": "InstanceIds", "Values": [instance_id]}]
            ).get("InstanceInformationList", [])
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
            return ""
        prefix = f"{instance_id}: " if named else ""
        if not info:
            return prefix + (
                "SSM has no record of this instance (DescribeInstanceInformation is empty)."
            )
        ping = info[0].get("PingStatus", "unknown")
        seen = info[0].get("LastPingDateTime")
        return (
            prefix + f"SSM reports its agent as {ping}" + (f" (last seen {seen})." if seen else ".")
        )


class SsmChannel(SsmCommands):
    """Runs scripts as root on one instance through SSM Run Command."""

    def __init__(
        self,
        ssm: Any,
        instance_id: str,
        *,
        poll_delay: float = 2.0,
        delivery_timeout: int = 120,
    ) -> None:
        super().__init__(ssm, poll_delay=poll_delay, delivery_timeout=delivery_timeout)
        self._instance_id = instance_id

    def run(self, script: str, *, timeout: float = 120.0) -> CommandResult:
        command_id = self.send([self._instance_id], script, timeout)
        budget = self.delivery_timeout + timeout + 30  # SSM's own bookkeeping lags a little
        return self.wait(command_id, self._instance_id, timeout, budget)


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
