"""The AWS emulator (moto) as the integration tests and the demo use it.

An environment that points the CLI, boto3 and Terraform's provider at the emulator with fake
credentials and no trace of the user's own AWS configuration, and an inventory of what an apply
could have left behind.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REGION = "us-east-1"
# An Ubuntu Deep Learning AMI from moto's built-in catalog (owner 898082745236, Amazon's DLAMI
# publisher account); moto has no DLAMI SSM parameter, so apply gets it via --ami-id.
MOTO_DLAMI = "ami-dca37ea5"
MOTO_DLAMI_OWNER = "898082745236"
MOTO_DLAMI_NAME = "Deep Learning AMI Ubuntu Linux - 2.4_Oct2017"


def cli_environment(url: str, scratch: Path, home: Path, region: str = REGION) -> dict[str, str]:
    """This process's environment minus any AWS or deployment settings, pointed at ``url``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") and k not in ("QWEN3VL_AWS_HOME", "QWEN3VL_NAME")
    }
    env.update(
        AWS_ENDPOINT_URL=url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION=region,
        AWS_DEFAULT_REGION=region,
        AWS_CONFIG_FILE=str(scratch / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(scratch / "no-aws-credentials"),
        QWEN3VL_AWS_HOME=str(home),
    )
    return env


def leftover_resources(client: Callable[[str], Any]) -> dict[str, list[str]]:
    """Everything an apply could have left behind, by kind (empty lists = nothing).

    ``client(service)`` returns a boto3 client for the emulator in the region of interest.
    """
    ec2, iam = client("ec2"), client("iam")
    instances = [
        i["InstanceId"]
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] != "terminated"
    ]
    groups = [
        g["GroupId"]
        for g in ec2.describe_security_groups()["SecurityGroups"]
        if g["GroupName"] != "default"
    ]
    return {
        "instances": instances,
        "addresses": [a["AllocationId"] for a in ec2.describe_addresses()["Addresses"]],
        "security_groups": groups,
        "roles": [r["RoleName"] for r in iam.list_roles()["Roles"]],
        "instance_profiles": [
            p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"]
        ],
        "secrets": [s["ARN"] for s in client("secretsmanager").list_secrets()["SecretList"]],
        "buckets": [b["Name"] for b in client("s3").list_buckets()["Buckets"]],
    }


@contextmanager
def running_moto() -> Iterator[str]:
    """A real moto server (HTTP, loopback) for as long as the block runs; yields its URL."""
    from moto.server import ThreadedMotoServer

    from .net import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def moto_client(service: str, endpoint: str, region: str = REGION) -> Any:
    """A boto3 client for the emulator at ``endpoint`` with its fake credentials."""
    import boto3

    return boto3.client(
        service,
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
