"""Integration fixtures: the moto server prepared for Terraform, and the CLI run as a user runs it.

The session ``moto_server`` (tests/conftest.py) is shared with other layers; these fixtures reset
it once per module, so one applied deployment can serve a whole module of assertions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import requests
from aws_emulator import Emulator

from rig.emulator import cli_environment
from rig.iam.emulator import enforcing_emulator
from rig.iam.policy import operator_policy, widened
from rig.moto_fidelity import keep_gp3_performance


@pytest.fixture(scope="module")
def emulator(moto_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """The shared moto, freshly reset (IAM not enforced: see ``operator_emulator`` for that)."""
    home = tmp_path_factory.mktemp("qwen3vl-home")
    scratch = tmp_path_factory.mktemp("aws-config")
    with keep_gp3_performance():
        requests.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
        env = cli_environment(moto_server, scratch, home)
        env.update(
            COLUMNS="200",
        )
        yield Emulator(url=moto_server, env=env, home=home)


@pytest.fixture
def in_emulator(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """The emulator's environment in this process too (for Terraform and boto3 called directly)."""
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in emulator.env.items():
        monkeypatch.setenv(name, value)
    return emulator


@pytest.fixture(scope="module")
def operator_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """moto with IAM enforced; the CLI, and Terraform under it, run as an IAM user holding
    docs/iam-policy.json. moto matches every request against Resource "*", so the user gets the
    policy's actions with resources widened; the tests check resources by evaluating the
    recorded requests against the real policy (rig.iam.policy)."""
    home = tmp_path_factory.mktemp("qwen3vl-home")
    scratch = tmp_path_factory.mktemp("iam-emulator")
    with enforcing_emulator(scratch) as aws:
        operator = aws.create_user("qwen3vl-operator", widened(operator_policy()))
        env = cli_environment(aws.url, scratch, home)
        env.update(operator.env(), COLUMNS="200")
        yield Emulator(url=aws.url, env=env, home=home, iam=aws)
