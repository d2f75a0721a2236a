"""A denied AWS call, from the CLI or from the instance's key sync, names the action and the
resource and says where the permissions come from; nothing is created. moto enforces IAM here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_emulator import MOTO_DLAMI, Emulator, nothing_created
from rig_instance import instance_rig

from rig.emulator import cli_environment
from rig.iam.emulator import EnforcingEmulator, enforcing_emulator
from rig.iam.policy import operator_policy, statements, widened

pytestmark = pytest.mark.slow

KEY = "sk-qwen-access-denied-test-key-" + "d" * 24
TRUST_EC2 = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnforcingEmulator]:
    with enforcing_emulator(tmp_path_factory.mktemp("iam-emulator")) as emulator:
        yield emulator


def without(action: str) -> dict:
    """docs/iam-policy.json (widened, as moto needs) minus one action."""
    policy = widened(operator_policy())
    for statement in statements(policy):
        actions = statement["Action"]
        actions = [actions] if isinstance(actions, str) else actions
        statement["Action"] = [a for a in actions if a != action] or ["sts:GetCallerIdentity"]
    return policy


def test_apply_without_a_permission_names_it_and_the_policy_and_creates_nothing(
    aws: EnforcingEmulator, tmp_path: Path
) -> None:
    user = aws.create_user("short-of-one", without("ec2:DescribeInstanceTypeOfferings"))
    env = {**cli_environment(aws.url, tmp_path, tmp_path / "home"), **user.env()}
    emulator = Emulator(url=aws.url, env=env, home=tmp_path / "home", iam=aws)
    result = emulator.run(
        "apply", "--yes", "--no-wait", "--key", "-", "--ami-id", MOTO_DLAMI,
        "--allow", "203.0.113.7/32", stdin=KEY + "\n",
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert "AWS denied ec2:DescribeInstanceTypeOfferings" in result.stderr
    assert "docs/iam-policy.json" in result.stderr
    assert nothing_created(emulator)


def test_keysync_denied_names_the_action_and_the_secret_not_a_missing_version(
    aws: EnforcingEmulator, tmp_path: Path
) -> None:
    secrets = aws.client("secretsmanager")
    arn = secrets.create_secret(Name="qwen3vl/denied/api-key", SecretString=KEY)["ARN"]
    iam = aws.client("iam")
    role = iam.create_role(
        RoleName="denied-instance", Path="/qwen3vl/", AssumeRolePolicyDocument=json.dumps(TRUST_EC2)
    )["Role"]
    only_get = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}
        ],
    }
    iam.put_role_policy(
        RoleName="denied-instance", PolicyName="read", PolicyDocument=json.dumps(only_get)
    )
    gateway = instance_rig(tmp_path, aws.url, aws.assume_role(role["Arn"]), arn)
    result = gateway.keysync()
    assert result.returncode == 3
    assert f"may not call secretsmanager:DescribeSecret on {arn}" in result.stderr
    assert "no AWSCURRENT" not in result.stderr
