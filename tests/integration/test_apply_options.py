"""`apply`'s engine, media-domain, subnet and model-cache options, end to end: the CLI's flags
through Terraform into the instance EC2 got (its subnet and VPC, its user-data's deploy.env),
the deployment record and `status --json`; bad values fail before anything is created.

Real Terraform and the AWS provider from the local mirror against the moto server.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from aws_emulator import MOTO_DLAMI, Emulator, created_resources, nothing_created
from qwen3vl_aws.aws.terraform import Terraform
from qwen3vl_aws.errors import TerraformError
from qwen3vl_aws.serving.engine_flags import sglang_flags
from qwen3vl_aws.serving.planner import plan_serving

from rig.cloudinit import DEPLOY_ENV, cloud_config, install_write_files, read_env_file

pytestmark = pytest.mark.slow

NAME = "optest"
MEDIA_DOMAINS = ["upload.wikimedia.org", "images.example.com"]
# moto offers g5.xlarge in us-east-1a, b, c, d and f, not in us-east-1e.
ZONE = "us-east-1b"
ZONE_WITHOUT_G5 = "us-east-1e"


@dataclass
class Applied:
    emulator: Emulator
    vpc_id: str
    subnet_id: str
    stderr: str

    @property
    def record(self) -> dict:
        return json.loads((self.emulator.home / NAME / "deployment.json").read_text())

    def instance(self) -> dict:
        ec2 = self.emulator.client("ec2")
        (reservation,) = ec2.describe_instances(InstanceIds=[self.record["instance_id"]])[
            "Reservations"
        ]
        return reservation["Instances"][0]


def _own_subnet(emulator: Emulator, zone: str) -> tuple[str, str]:
    """A subnet of a new (non-default) VPC in ``zone``: (vpc id, subnet id)."""
    ec2 = emulator.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.20.1.0/24", AvailabilityZone=zone)
    return vpc_id, subnet["Subnet"]["SubnetId"]


def _default_subnet(emulator: Emulator, zone: str) -> str:
    subnets = emulator.client("ec2").describe_subnets(
        Filters=[
            {"Name": "default-for-az", "Values": ["true"]},
            {"Name": "availability-zone", "Values": [zone]},
        ]
    )["Subnets"]
    return subnets[0]["SubnetId"]


def _apply_args(*extra: str) -> list[str]:
    return [
        "--name", NAME, "apply", "--yes", "--no-wait", "--ami-id", MOTO_DLAMI,
        "--allow", "203.0.113.7/32", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def applied(emulator: Emulator) -> Applied:
    vpc_id, subnet_id = _own_subnet(emulator, ZONE)
    media = [arg for domain in MEDIA_DOMAINS for arg in ("--allow-media-domain", domain)]
    result = emulator.run(
        *_apply_args(
            "--engine", "sglang", "--model-cache", "instance-store", "--subnet-id", subnet_id,
            *media,
        )
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    return Applied(emulator, vpc_id, subnet_id, result.stderr)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--subnet-id", "subnet-nope"], "is not a subnet id"),
        (["--subnet-id", "subnet-0123456789abcdef0"], "does not exist in this region"),
        (["--allow-media-domain", "https://upload.wikimedia.org/x"], "is not a domain name"),
        (["--engine", "tgi"], "'tgi' is not one of 'vllm', 'sglang'"),
        (["--model-cache", "tmpfs"], "'tmpfs' is not one of 'ebs', 'instance-store'"),
        # The serving plan is checked before anything is created, and says what would fit.
        (["--max-model-len", "200000"], "fits up to --max-model-len"),
    ],
)
def test_bad_values_are_refused_and_create_nothing(
    emulator: Emulator, args: list[str], message: str
) -> None:
    result = emulator.run(*_apply_args(*args))
    assert result.returncode == 2, result.stderr + result.stdout
    assert message in result.stderr + result.stdout
    assert nothing_created(emulator), created_resources(emulator)


def test_a_subnet_in_a_zone_without_the_type_is_refused(emulator: Emulator) -> None:
    subnet_id = _default_subnet(emulator, ZONE_WITHOUT_G5)
    result = emulator.run(*_apply_args("--subnet-id", subnet_id))
    assert result.returncode == 2, result.stderr + result.stdout
    assert f"Subnet {subnet_id} is in {ZONE_WITHOUT_G5}, which does not offer g5.xlarge" in (
        result.stderr
    )
    assert nothing_created(emulator)


def test_terraform_itself_checks_the_subnets_zone(in_emulator: Emulator, tmp_path: Path) -> None:
    """The root module's postcondition, for callers that skip the CLI's check."""
    tf = Terraform(tmp_path / "deployment")
    tf.prepare(
        {
            "name": "zonetest",
            "region": "us-east-1",
            "allowed_cidrs": ["203.0.113.7/32"],
            "ami_id": MOTO_DLAMI,
            "subnet_id": _default_subnet(in_emulator, ZONE_WITHOUT_G5),
        }
    )
    with pytest.raises(TerraformError, match=f"is in {ZONE_WITHOUT_G5}, which does not offer"):
        tf.plan()
    assert nothing_created(in_emulator)


def test_user_data_carries_engine_cache_domains_and_sglang_flags(
    applied: Applied, tmp_path: Path
) -> None:
    attribute = applied.emulator.client("ec2").describe_instance_attribute(
        InstanceId=applied.record["instance_id"], Attribute="userData"
    )
    config = cloud_config(base64.b64decode(attribute["UserData"]["Value"]))
    install_write_files(tmp_path, config)
    settings = read_env_file(tmp_path / DEPLOY_ENV)
    assert settings["ENGINE"] == "sglang"
    assert settings["MODEL_CACHE"] == "instance-store"
    assert settings["ALLOWED_MEDIA_DOMAINS"].split() == MEDIA_DOMAINS
    # The bootstrap word-splits ENGINE_ARGS (the module keeps whitespace out of each argument).
    assert settings["ENGINE_ARGS"].split() == sglang_flags(plan_serving("g5.xlarge"))


def test_instance_and_security_group_are_in_the_given_subnets_vpc(applied: Applied) -> None:
    instance = applied.instance()
    assert instance["SubnetId"] == applied.subnet_id
    assert instance["Placement"]["AvailabilityZone"] == ZONE
    (group,) = instance["SecurityGroups"]
    ec2 = applied.emulator.client("ec2")
    (described,) = ec2.describe_security_groups(GroupIds=[group["GroupId"]])["SecurityGroups"]
    assert described["VpcId"] == applied.vpc_id
    assert f"subnet {applied.subnet_id}, zone {ZONE}" in applied.stderr
    assert "NVMe instance store (wiped at every stop" in applied.stderr
    assert "SGLang (--tp-size 1 --context-length" in applied.stderr


def test_record_and_status_name_the_engine_and_the_pinned_certificate(applied: Applied) -> None:
    assert applied.record["engine"] == "sglang"
    result = applied.emulator.run("--name", NAME, "status", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["engine"] == "sglang"
    assert doc["served_model_name"] == "Qwen/Qwen3-VL-8B-Instruct"
    assert doc["cert_path"] == str(applied.emulator.home / NAME / "endpoint-cert.pem")


def test_destroy_removes_everything(applied: Applied) -> None:
    result = applied.emulator.run("--name", NAME, "destroy", "--yes")
    assert result.returncode == 0, result.stderr + result.stdout
    assert nothing_created(applied.emulator)
