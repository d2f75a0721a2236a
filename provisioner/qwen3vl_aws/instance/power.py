"""Stop the instance to stop paying for the GPU; start it again later.

What survives a stop: the Elastic IP stays associated with the instance, so the endpoint address
and the pinned certificate do not change; the EBS root keeps the installed engine, the keys and the
units. The bootstrap unit runs again at every boot and skips what is already in place.

The model cache: by default (``model_cache = "ebs"``) the weights live on the EBS root, so a start
brings the model back without a download. With ``model_cache = "instance-store"`` they live on the
instance-store NVMe, which a stop wipes: the first boot after a start downloads them again (the
``model`` stage of ``wait`` shows the bytes).

While stopped, only the EBS volume and the Elastic IP are billed, not the instance hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from ..aws.clients import ClientFactory, aws_errors
from ..deployment import Deployment
from ..errors import CheckFailed
from .probe import describe_instance, require_instance

WAIT_DELAY_S = 5


@dataclass(frozen=True)
class PowerChange:
    """What a stop or start did."""

    instance_id: str
    before: str
    after: str
    public_ip: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _wait(ec2: Any, waiter_name: str, instance_id: str, timeout: float) -> None:
    attempts = max(1, int(timeout // WAIT_DELAY_S))
    with aws_errors(f"Waiting for the instance ({waiter_name})"):
        ec2.get_waiter(waiter_name).wait(
            InstanceIds=[instance_id],
            WaiterConfig={"Delay": WAIT_DELAY_S, "MaxAttempts": attempts},
        )


def stop_instance(deployment: Deployment, clients: ClientFactory, *, timeout: float) -> PowerChange:
    """Stop the instance and wait until it is stopped (a no-op when it already is)."""
    ec2 = clients.client("ec2")
    instance_id = deployment.instance_id
    before = require_instance(ec2, deployment)["State"]["Name"]
    if before in ("terminated", "shutting-down"):
        raise CheckFailed(f"The instance is {before}; re-create it with `qwen3vl-aws apply`.")
    if before != "stopped":
        with aws_errors("Stopping the instance"):
            ec2.stop_instances(InstanceIds=[instance_id])
        _wait_or_explain(ec2, "instance_stopped", instance_id, timeout)
    after = require_instance(ec2, deployment)
    return PowerChange(instance_id, before, after["State"]["Name"], after.get("PublicIpAddress"))


def start_instance(
    deployment: Deployment, clients: ClientFactory, *, timeout: float
) -> PowerChange:
    """Start the instance, wait until running, and check the endpoint address did not move."""
    ec2 = clients.client("ec2")
    instance_id = deployment.instance_id
    before = require_instance(ec2, deployment)["State"]["Name"]
    if before in ("terminated", "shutting-down"):
        raise CheckFailed(f"The instance is {before}; re-create it with `qwen3vl-aws apply`.")
    if before == "stopping":
        _wait_or_explain(ec2, "instance_stopped", instance_id, timeout)
    if before != "running":
        with aws_errors("Starting the instance"):
            ec2.start_instances(InstanceIds=[instance_id])
        _wait_or_explain(ec2, "instance_running", instance_id, timeout)
    after = require_instance(ec2, deployment)
    ip = _elastic_ip(ec2, deployment) if deployment.public_ip else after.get("PublicIpAddress")
    return PowerChange(instance_id, before, after["State"]["Name"], ip)


def _elastic_ip(ec2: Any, deployment: Deployment) -> str:
    """The recorded endpoint address, checked to still be this instance's Elastic IP."""
    with aws_errors("Looking up the Elastic IP"):
        addresses = ec2.describe_addresses(
            Filters=[{"Name": "public-ip", "Values": [deployment.public_ip]}]
        )["Addresses"]
    if not addresses or addresses[0].get("InstanceId") != deployment.instance_id:
        raise CheckFailed(
            f"The recorded endpoint address {deployment.public_ip} is no longer an Elastic IP "
            f"of {deployment.instance_id}: run `qwen3vl-aws apply` to re-associate it."
        )
    return addresses[0]["PublicIp"]


def _wait_or_explain(ec2: Any, waiter_name: str, instance_id: str, timeout: float) -> None:
    try:
        _wait(ec2, waiter_name, instance_id, timeout)
    except botocore.exceptions.WaiterError as exc:
        state = describe_instance(ec2, instance_id)["State"]["Name"]
        raise CheckFailed(
            f"The instance is still {state} after {timeout:.0f} s ({waiter_name}: {exc}). "
            "Check it in the EC2 console, then run the command again."
        ) from None
