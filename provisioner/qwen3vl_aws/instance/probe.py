"""Is the deployment's instance there, and in what state: one question, asked one way.

"Missing" means EC2 does not know the instance: none was recorded, or DescribeInstances answers
``InvalidInstanceID.NotFound`` or lists nothing. A terminated instance is not missing (EC2 still
lists it for a while); its state says what happened. ``status``, ``health``, ``wait`` and
``stop``/``start`` all ask here.
"""

from __future__ import annotations

from typing import Any

import botocore.exceptions

from ..aws.clients import aws_errors
from ..deployment import Deployment
from ..errors import CheckFailed, UsageError


def describe_instance(ec2_client: Any, instance_id: str | None) -> dict[str, Any] | None:
    """EC2's description of the instance; None when it is missing."""
    if not instance_id:
        return None
    with aws_errors("Describing the instance"):
        try:
            reservations = ec2_client.describe_instances(InstanceIds=[instance_id])["Reservations"]
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidInstanceID.NotFound":
                return None
            raise
    instances = [i for r in reservations for i in r["Instances"]]
    return instances[0] if instances else None


def require_instance(ec2_client: Any, deployment: Deployment) -> dict[str, Any]:
    """The instance's description, or an error saying how to get an instance back."""
    if not deployment.instance_id:
        raise UsageError(
            f"Deployment {deployment.name!r} has no instance: run `qwen3vl-aws apply`."
        )
    instance = describe_instance(ec2_client, deployment.instance_id)
    if instance is None:
        raise CheckFailed(
            f"The instance {deployment.instance_id} no longer exists: re-create it with "
            "`qwen3vl-aws apply`."
        )
    return instance
