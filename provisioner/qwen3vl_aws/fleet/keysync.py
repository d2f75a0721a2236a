"""A fleet's key sync over SSM by instance ids: one Run Command over every InService replica.

One ``SendCommand`` names the replicas by id and lets SSM roll it: ``MaxConcurrency`` replicas
at a time (1 by default, so the others keep serving while a gateway reloads) and ``MaxErrors``
"0", so the first replica that fails stops SSM from sending it to the rest. Then every
invocation is waited for (the ``command_executed`` waiter per instance, as the single
instance's channel does) and each replica's outcome is reported; a failure names every replica
that failed, with its output, and those that never ran.

Only version ids travel in the command, never a key: SSM keeps a command's parameters in its
history, and the instance fetches the values itself with its role. The replica list is read
again at every sync, so the sync after promotion reaches a replica that joined meanwhile; a
replica that boots mid-rotation runs qwen3vl-keysync without arguments, which reads AWSCURRENT
and AWSPENDING itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from ..aws.clients import aws_errors
from ..errors import ChannelError, CheckFailed
from ..instance.channel.ssm import SsmCommands
from ..instance.keysync import keysync_script

#: How long one replica's qwen3vl-keysync may run (fetch two versions, write, reload nginx).
EXECUTION_TIMEOUT = 120
#: SendCommand's hard upper bound for TimeoutSeconds.
MAX_DELIVERY_TIMEOUT = 2_592_000


@dataclass(frozen=True)
class ReplicaOutcome:
    """What one replica's invocation ended with (``detail``: why it failed, "" when it did not)."""

    instance_id: str
    ok: bool
    detail: str = ""


def in_service_instances(autoscaling: Any, group_name: str) -> list[str]:
    """The ids of the group's InService instances, sorted (the replicas serving or about to)."""
    with aws_errors(f"Listing the replicas of Auto Scaling group {group_name}"):
        groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])[
            "AutoScalingGroups"
        ]
    if not groups:
        raise CheckFailed(
            f"Auto Scaling group {group_name} does not exist: run `qwen3vl-aws apply` again."
        )
    return sorted(
        i["InstanceId"] for i in groups[0]["Instances"] if i["LifecycleState"] == "InService"
    )


@dataclass
class FleetKeySync:
    """An ``InstanceSync`` over every InService replica of a group, rolled by SSM itself.

    ``replicas`` lists the instance ids at each sync; ``report`` hears each replica's outcome.
    """

    commands: SsmCommands
    replicas: Callable[[], list[str]]
    report: Callable[[str], None]
    max_concurrency: str = "1"
    timeout: float = EXECUTION_TIMEOUT

    def sync(self, current: str, pending: str | None) -> None:
        ids = self.replicas()
        if not ids:
            raise CheckFailed(
                "No replica is InService, so none can take the key and the load balancer "
                "cannot confirm it: run `qwen3vl-aws start` (or wait for a replica with "
                "`qwen3vl-aws wait`), then rotate again."
            )
        # Queued replicas wait for those before them: delivery may take that long.
        delivery = self.commands.delivery_timeout + len(ids) * self.timeout
        command_id = self.commands.send(
            ids,
            keysync_script(current, pending),
            self.timeout,
            MaxConcurrency=self.max_concurrency,
            MaxErrors="0",
            TimeoutSeconds=min(int(delivery), MAX_DELIVERY_TIMEOUT),
        )
        self.report(
            f"Key sync sent to {len(ids)} replica(s), {self.max_concurrency} at a time "
            f"(SSM command {command_id})"
        )
        outcomes = self._collect(command_id, ids, deadline=time.monotonic() + delivery + 30)
        failed = [o for o in outcomes if not o.ok]
        if failed:
            raise ChannelError(
                f"The key sync (qwen3vl-keysync) failed on {len(failed)} of {len(ids)} "
                f"replicas (SSM command {command_id}): "
                + "; ".join(f"{o.instance_id}: {o.detail}" for o in failed)
            )

    def _collect(self, command_id: str, ids: list[str], deadline: float) -> list[ReplicaOutcome]:
        """Each replica's outcome, in order; after the first failure SSM sends no more (MaxErrors
        0), so a replica whose invocation has not started is reported as not run."""
        outcomes: list[ReplicaOutcome] = []
        for n, instance_id in enumerate(ids, 1):
            if any(not o.ok for o in outcomes) and not self._started(command_id, instance_id):
                outcome = ReplicaOutcome(
                    instance_id, False, "not run: SSM stopped at the first failure (MaxErrors 0)"
                )
            else:
                outcome = self._wait(command_id, instance_id, deadline)
            verdict = "key synced" if outcome.ok else f"FAILED: {outcome.detail}"
            self.report(f"  replica {instance_id} ({n}/{len(ids)}): {verdict}")
            outcomes.append(outcome)
        return outcomes

    def _wait(self, command_id: str, instance_id: str, deadline: float) -> ReplicaOutcome:
        budget = max(1.0, deadline - time.monotonic())
        try:
            result = self.commands.wait(command_id, instance_id, self.timeout, budget)
        except ChannelError as exc:
            return ReplicaOutcome(instance_id, False, str(exc))
        if result.ok:
            return ReplicaOutcome(instance_id, True)
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        return ReplicaOutcome(instance_id, False, f"exit {result.exit_code}: " + " | ".join(tail))

    def _started(self, command_id: str, instance_id: str) -> bool:
        """Whether the invocation on ``instance_id`` ran or is running (not merely queued)."""
        try:
            status = self.commands.ssm.get_command_invocation(
                CommandId=command_id, InstanceId=instance_id
            )["Status"]
        except botocore.exceptions.ClientError:
            return False  # InvocationDoesNotExist: never sent
        return status not in ("Pending", "Delayed")
