"""Integration fixtures: the moto server prepared for Terraform, and the CLI run as a user runs it.

The session ``moto_server`` (tests/conftest.py) is shared with other layers; these fixtures reset
it once per module, so one applied deployment can serve a whole module of assertions.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from moto_fidelity import keep_gp3_performance

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


@pytest.fixture(scope="module")
def emulator(moto_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """A freshly reset moto with AWS managed IAM policies (AmazonSSMManagedInstanceCore) loaded.

    ``MOTO_IAM_LOAD_MANAGED_POLICIES`` is read when moto (re)creates its IAM backend, which the
    reset makes happen on the next IAM call; the server runs in this process, so setting the
    variable here reaches it.
    """
    home = tmp_path_factory.mktemp("qwen3vl-home")
    scratch = tmp_path_factory.mktemp("aws-config")
    with pytest.MonkeyPatch.context() as mp, keep_gp3_performance():
        mp.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
        requests.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("AWS_") and k not in ("QWEN3VL_AWS_HOME", "QWEN3VL_NAME")
        }
        env.update(
            AWS_ENDPOINT_URL=moto_server,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_REGION=REGION,
            AWS_DEFAULT_REGION=REGION,
            AWS_CONFIG_FILE=str(scratch / "config"),
            AWS_SHARED_CREDENTIALS_FILE=str(scratch / "credentials"),
            QWEN3VL_AWS_HOME=str(home),
            COLUMNS="200",
        )
        yield Emulator(url=moto_server, env=env, home=home)


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


@pytest.fixture
def in_emulator(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """The emulator's environment in this process too (for Terraform and boto3 called directly)."""
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in emulator.env.items():
        monkeypatch.setenv(name, value)
    return emulator
