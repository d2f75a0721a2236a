"""Every command on a recorded deployment goes to the deployment's region, never the shell's.

The deployment lives in eu-west-1 (its instance, Elastic IP and key secret exist only there, in
moto); the shell says ``AWS_REGION=us-east-1``. A command that asked the shell's region would find
nothing, so each test shows the command reached the deployment's resources.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from channel_doubles import RecordingChannel
from click.testing import CliRunner
from fake_gateway import self_signed
from moto import mock_aws
from qwen3vl_aws.aws.clients import ClientFactory
from qwen3vl_aws.cli import cli
from qwen3vl_aws.deployment import Deployment
from qwen3vl_aws.instance.channel.base import CommandResult

from rig.cli import app_with_channel
from rig.net import free_port

HOME = "eu-west-1"  # where the deployment was created
SHELL = "us-east-1"  # what the shell says now
KEY = "sk-qwen-" + "r" * 43


@dataclass
class World:
    deployment: Deployment

    def ssm_commands(self, region: str) -> list[dict]:
        return boto3.client("ssm", region_name=region).list_commands()["Commands"]

    def state(self) -> str:
        ec2 = boto3.client("ec2", region_name=HOME)
        described = ec2.describe_instances(InstanceIds=[self.deployment.instance_id])
        return described["Reservations"][0]["Instances"][0]["State"]["Name"]


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[World]:
    for var, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": SHELL,
        "AWS_DEFAULT_REGION": SHELL,
    }.items():
        monkeypatch.setenv(var, value)
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=HOME)
        instance_id = ec2.run_instances(
            ImageId="ami-12345678", MinCount=1, MaxCount=1, InstanceType="g6.xlarge"
        )["Instances"][0]["InstanceId"]
        eip = ec2.allocate_address(Domain="vpc")
        ec2.associate_address(InstanceId=instance_id, AllocationId=eip["AllocationId"])
        sm = boto3.client("secretsmanager", region_name=HOME)
        arn = sm.create_secret(Name="qwen3vl/api-key")["ARN"]
        sm.put_secret_value(SecretId=arn, SecretString=KEY)
        deployment = Deployment(
            name="qwen3vl",
            region=HOME,
            instance_type="g6.xlarge",
            instance_id=instance_id,
            public_ip=eip["PublicIp"],
            endpoint=f"https://{eip['PublicIp']}/v1",
            secret_arn=arn,
        )
        deployment.save()
        cert, _key = self_signed(tmp_path)
        deployment.cert_path.write_text(cert.read_text())
        yield World(deployment)


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_key_reads_the_secret_in_the_deployments_region(world: World) -> None:
    result = run("key")
    assert result.exit_code == 0, result.output
    assert result.output == KEY + "\n"


def test_rotate_key_reads_the_labels_in_the_deployments_region(world: World) -> None:
    result = run("rotate-key", "--abort")
    assert result.exit_code == 0, result.output
    assert "No rotation is in progress" in result.output


def test_exec_sends_the_command_in_the_deployments_region(world: World) -> None:
    result = run("exec", "--", "true")
    assert result.exit_code == 0, result.output
    assert len(world.ssm_commands(HOME)) == 1
    assert world.ssm_commands(SHELL) == []


def test_logs_reads_over_ssm_in_the_deployments_region(world: World) -> None:
    result = run("logs", "--lines", "5")
    assert result.exit_code == 0, result.output
    assert len(world.ssm_commands(HOME)) == 1
    assert world.ssm_commands(SHELL) == []


def test_status_describes_the_instance_in_the_deployments_region(world: World) -> None:
    result = run("status", "--json")
    assert result.exit_code == 0, result.output
    assert '"state": "running"' in result.output
    assert f'"region": "{HOME}"' in result.output


def test_stop_and_start_act_in_the_deployments_region(world: World) -> None:
    result = run("stop", "--yes", "--timeout", "30")
    assert result.exit_code == 0, result.output
    assert world.state() == "stopped"
    result = run("start", "--no-wait", "--timeout", "30")
    assert result.exit_code == 0, result.output
    assert world.state() == "running"


def test_key_needs_no_region_in_the_shell(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    result = run("key")
    assert result.exit_code == 0, result.output
    assert result.output == KEY + "\n"


class RegionsAsked:
    """The App's client maker: a real ClientFactory, noting the region each was made for."""

    def __init__(self) -> None:
        self.regions: list[str | None] = []

    def __call__(self, region: str | None, profile: str | None) -> ClientFactory:
        self.regions.append(region)
        return ClientFactory(region=region, profile=profile)


COMMANDS = {
    "key": ["key"],
    "rotate-key": ["rotate-key", "--abort"],
    "exec": ["exec", "--", "true"],
    "logs": ["logs"],
    "status": ["status", "--json"],
    "health": ["health", "--json"],
    "wait": ["wait", "--timeout", "1"],
    "stop": ["stop", "--yes", "--timeout", "30"],
    "start": ["start", "--no-wait", "--timeout", "30"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_gets_its_clients_in_the_deployments_region(
    world: World, command: str
) -> None:
    # SSH, so that health and wait poll the channel (moto has no DescribeInstanceInformation);
    # the endpoint is a closed local port, so the endpoint checks fail at once.
    record = world.deployment
    record.transport, record.ssh_user = "ssh", "ubuntu"
    record.endpoint = f"https://127.0.0.1:{free_port()}/v1"
    record.save()
    asked = RegionsAsked()
    app = app_with_channel(RecordingChannel(CommandResult(0, "", "")), client_maker=asked)

    result = CliRunner().invoke(cli, COMMANDS[command], obj=app)

    assert asked.regions == [HOME], result.output
    if command == "health":  # no real instance answers: 7, but EC2 found it running
        assert result.exit_code == 7
        instance_check = json.loads(result.stdout)["checks"][0]
        assert instance_check["ok"] and f"{record.instance_id} running" in instance_check["detail"]
    elif command == "wait":  # past the instance stage: stalled on the (empty) bootstrap status
        assert result.exit_code == 7 and "no longer exists" not in result.output
        assert "status file" in result.output
    else:
        assert result.exit_code == 0, result.output
