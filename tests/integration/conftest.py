"""Integration fixtures: moto with IAM enforced, and the CLI run as an operator runs it.

Each module gets its own enforcing, recording moto process (rig.iam), so one applied deployment
can serve a whole module of assertions, and the shared session ``moto_server`` of the other layers
stays untouched.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from aws_emulator import Emulator

from rig.emulator import cli_environment
from rig.iam.emulator import enforcing_emulator
from rig.iam.policy import operator_policy, widened


@pytest.fixture
def in_emulator(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """The emulator's environment in this process too (for Terraform and boto3 called directly)."""
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in emulator.env.items():
        monkeypatch.setenv(name, value)
    return emulator


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """moto with IAM enforced, its own process per module; the CLI, and Terraform under it, run
    as an IAM user holding docs/iam-policy.json. moto matches every request against Resource
    "*", so the user gets the policy's actions with resources widened; the tests check resources
    by evaluating the recorded requests against the real policy (rig.iam.check)."""
    home = tmp_path_factory.mktemp("qwen3vl-home")
    scratch = tmp_path_factory.mktemp("iam-emulator")
    with enforcing_emulator(scratch) as aws:
        operator = aws.create_user("qwen3vl-operator", widened(operator_policy()))
        env = cli_environment(aws.url, scratch, home)
        env.update(operator.env(), COLUMNS="200")
        yield Emulator(url=aws.url, env=env, home=home, iam=aws)
