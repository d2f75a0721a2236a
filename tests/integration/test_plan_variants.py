"""The AMI lookups of the root module (apply's tests pass --ami-id because moto has no DLAMI SSM
parameter): both paths resolve against images and parameters that exist in the emulator."""

from __future__ import annotations

import pytest
from conftest import MOTO_DLAMI, MOTO_DLAMI_NAME, MOTO_DLAMI_OWNER, Emulator
from qwen3vl_aws.terraform import Terraform, managed_resources

pytestmark = pytest.mark.slow

BASE = {"name": "amitest", "region": "us-east-1", "allowed_cidrs": ["203.0.113.7/32"]}


def _planned_ami(tmp_path, variables: dict) -> str:
    tf = Terraform(tmp_path / "deployment")
    tf.prepare({**BASE, **variables})
    plan_file = tmp_path / "ami.tfplan"
    tf.plan(out=plan_file)
    planned = managed_resources(tf.show(plan_file)["planned_values"])
    return planned["aws_instance.this"]["ami"]


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
