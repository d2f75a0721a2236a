"""The AWS emulator as the integration tests see it: constants, an SDK/CLI handle, inventory."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLI = str(Path(sys.executable).parent / "qwen3vl-aws")
REGION = "us-east-1"
# An Ubuntu Deep Learning AMI from moto's built-in catalog (owner 898082745236, Amazon's DLAMI
# publisher account); moto has no DLAMI SSM parameter, so apply gets it via --ami-id.
MOTO_DLAMI = "ami-dca37ea5"
MOTO_DLAMI_OWNER = "898082745236"
MOTO_DLAMI_NAME = "Deep Learning AMI Ubuntu Linux - 2.4_Oct2017"


@dataclass
class Emulator:
    """The AWS emulator and an environment pointing every SDK (and Terraform) at it."""

    url: str
    env: dict[str, str]
    home: Path

    def client(self, service: str, region: str = REGION) -> Any:
        import boto3

        return boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
        ).client(service, endpoint_url=self.url)

    def run(self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None):
        """Run the installed ``qwen3vl-aws`` like a user would; returns the CompletedProcess."""
        return subprocess.run(
            [CLI, *args],
            input=stdin if stdin is not None else "",
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )


def created_resources(emulator: Emulator, region: str = REGION) -> dict[str, list[str]]:
    """Everything an apply could have left behind, by kind (empty lists = nothing created)."""
    ec2 = emulator.client("ec2", region)
    iam = emulator.client("iam", region)
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
        "secrets": [
            s["ARN"] for s in emulator.client("secretsmanager", region).list_secrets()["SecretList"]
        ],
    }


def nothing_created(emulator: Emulator, region: str = REGION) -> bool:
    return not any(created_resources(emulator, region).values())
