"""Root-module variants checked by planning against the emulator (no apply needed).

The AMI lookups (apply's tests pass --ami-id because moto has no DLAMI SSM parameter) resolve
against images and parameters that exist in the emulator; the SSH option opens port 22 only to
the CIDRs given and sets the key pair.
"""

from __future__ import annotations

import pytest
from aws_emulator import MOTO_DLAMI, MOTO_DLAMI_NAME, MOTO_DLAMI_OWNER, Emulator
from qwen3vl_aws.aws.terraform import Terraform, managed_resources

pytestmark = pytest.mark.slow

BASE = {"name": "amitest", "region": "us-east-1", "allowed_cidrs": ["203.0.113.7/32"]}


def _planned(tmp_path, variables: dict) -> dict[str, dict]:
    tf = Terraform(tmp_path / "deployment")
    tf.prepare({**BASE, **variables})
    plan_file = tmp_path / "variant.tfplan"
    tf.plan(out=plan_file)
    return managed_resources(tf.show(plan_file)["planned_values"])


def _planned_ami(tmp_path, variables: dict) -> str:
    return _planned(tmp_path, variables)["aws_instance.this[0]"]["ami"]


def test_owner_filtered_lookup_finds_the_newest_matching_image(
    in_emulator: Emulator, tmp_path
) -> None:
    variables = {
        "ami_lookup": "filter",
        "ami_owners": [MOTO_DLAMI_OWNER],
        "ami_name_filter": MOTO_DLAMI_NAME.rsplit(" - ", 1)[0] + " *",
    }
    assert _planned_ami(tmp_path, variables) == MOTO_DLAMI


def test_ssm_parameter_lookup_reads_the_ami_id(in_emulator: Emulator, tmp_path) -> None:
    # The real parameter lives under /aws/service/, which nobody but AWS may write; the module
    # reads whatever parameter ami_ssm_parameter names, so a stand-in exercises the same path.
    parameter = "/qwen3vl-test/dlami/ami-id"
    in_emulator.client("ssm").put_parameter(Name=parameter, Value=MOTO_DLAMI, Type="String")
    assert _planned_ami(tmp_path, {"ami_ssm_parameter": parameter}) == MOTO_DLAMI


def test_ssh_option_opens_port_22_to_the_given_cidrs_only(in_emulator: Emulator, tmp_path) -> None:
    variables = {
        "ami_id": MOTO_DLAMI,
        "ssh_key_name": "operator",
        "ssh_allowed_cidrs": ["198.51.100.0/24"],
    }
    planned = _planned(tmp_path, variables)
    assert planned["aws_instance.this[0]"]["key_name"] == "operator"
    ssh_rules = {
        k: v for k, v in planned.items() if k.startswith("aws_vpc_security_group_ingress_rule.ssh")
    }
    assert [(r["from_port"], r["to_port"], r["cidr_ipv4"]) for r in ssh_rules.values()] == [
        (22, 22, "198.51.100.0/24")
    ]


def test_no_ssh_ingress_by_default(in_emulator: Emulator, tmp_path) -> None:
    planned = _planned(tmp_path, {"ami_id": MOTO_DLAMI})
    assert planned["aws_instance.this[0]"].get("key_name") in (None, "")
    ports = {
        r["from_port"]
        for k, r in planned.items()
        if k.startswith("aws_vpc_security_group_ingress_rule.")
    }
    assert ports == {443}


def _longest_name() -> str:
    """The longest deployment name the instance contract accepts (grown until it is refused)."""
    from qwen3vl_aws.contract import instance_contract

    pattern = instance_contract().name_pattern
    name = "q3"
    while pattern.fullmatch(name + "x"):
        name += "x"
    return name


@pytest.mark.parametrize(
    "variables",
    [
        {"model_cache_bucket": "qwen3vl-models-123456789012-us-east-1", "model_revision": "a" * 40},
        {
            "replicas": "0:2",
            "certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-0000",
        },
    ],
    ids=["single-with-s3-cache", "fleet-at-zero"],
)
def test_the_longest_accepted_name_plans_every_role(
    in_emulator: Emulator, tmp_path, variables: dict
) -> None:
    """IAM names take at most 64 characters, so a name_prefix at most 38 (the provider adds 26):
    every role, profile and prefix of the deployment must fit a name the toolkit accepts."""
    name = _longest_name()
    planned = _planned(tmp_path, {"name": name, "ami_id": MOTO_DLAMI, **variables})
    prefixes = [
        v["name_prefix"]
        for k, v in planned.items()
        if k.startswith(("aws_iam_role.", "aws_iam_instance_profile."))
    ]
    assert len(prefixes) >= 2 and all(p.startswith(name[:8]) for p in prefixes), prefixes
