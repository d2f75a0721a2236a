"""Terraform failing midway: the state stays consistent with AWS, and a re-run converges."""

from __future__ import annotations

import json

import pytest
from aws_emulator import MOTO_DLAMI, Emulator, created_resources
from qwen3vl_aws.aws.terraform import Terraform

pytestmark = pytest.mark.slow

NAME = "recover"
MISSING_AMI = "ami-0123456789abcdef0"


def _apply(emulator: Emulator, ami: str):
    return emulator.run(
        "--name", NAME, "apply", "--yes", "--no-wait", "--allow", "198.51.100.0/24", "--ami-id", ami
    )


def test_failed_apply_leaves_consistent_state_and_rerun_converges(in_emulator: Emulator) -> None:
    # An AMI that does not exist passes every check but fails the instance, after the security
    # group, IAM role, Elastic IP and secret were created.
    failed = _apply(in_emulator, MISSING_AMI)
    assert failed.returncode == 4, failed.stderr
    assert "terraform apply failed" in failed.stderr
    assert "✗ aws_instance.this" in failed.stderr

    tf = Terraform(in_emulator.home / NAME)
    in_state = tf.resources()
    assert "aws_instance.this[0]" not in in_state
    emulated = created_resources(in_emulator)
    assert emulated["instances"] == []
    assert emulated["security_groups"] == [in_state["aws_security_group.this"]["id"]]
    assert emulated["addresses"] == [in_state["aws_eip.this[0]"]["allocation_id"]]
    assert emulated["roles"] == [in_state["aws_iam_role.this"]["name"]]
    assert emulated["secrets"] == [in_state["aws_secretsmanager_secret.this"]["arn"]]
    record = json.loads((in_emulator.home / NAME / "deployment.json").read_text())
    assert record["extra"]["complete"] is False  # recorded, so `destroy` can clean up

    rerun = _apply(in_emulator, MOTO_DLAMI)
    assert rerun.returncode == 0, rerun.stderr
    assert "Kept the existing API key." in rerun.stderr
    assert not tf.plan().has_changes
    assert len(created_resources(in_emulator)["instances"]) == 1

    destroyed = in_emulator.run("--name", NAME, "destroy", "--yes")
    assert destroyed.returncode == 0, destroyed.stderr
    assert not any(created_resources(in_emulator).values())
