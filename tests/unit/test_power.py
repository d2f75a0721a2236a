"""``stop`` / ``start`` against moto's EC2: waiters, the Elastic IP staying, confirmation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from moto import mock_aws
from qwen3vl_aws.aws.clients import ClientFactory
from qwen3vl_aws.cli import cli
from qwen3vl_aws.deployment import Deployment, load_deployment
from qwen3vl_aws.errors import CheckFailed
from qwen3vl_aws.instance.power import start_instance, stop_instance


@pytest.fixture
def aws() -> Iterator[ClientFactory]:
    """moto's EC2; the commands build their own clients for the deployment's region."""
    with mock_aws():
        yield ClientFactory(region="us-east-1")


@pytest.fixture
def deployed(aws: ClientFactory) -> Deployment:
    """An instance with an Elastic IP, recorded as apply records it."""
    ec2 = aws.client("ec2")
    instance_id = ec2.run_instances(
        ImageId="ami-12345678", MinCount=1, MaxCount=1, InstanceType="g6.xlarge"
    )["Instances"][0]["InstanceId"]
    eip = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(InstanceId=instance_id, AllocationId=eip["AllocationId"])
    deployment = Deployment(
        name="qwen3vl",
        region="us-east-1",
        instance_type="g6.xlarge",
        instance_id=instance_id,
        public_ip=eip["PublicIp"],
        endpoint=f"https://{eip['PublicIp']}/v1",
    )
    deployment.save()
    return deployment


def state(aws: ClientFactory, instance_id: str) -> str:
    reservations = aws.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservations[0]["Instances"][0]["State"]["Name"]


def test_stop_then_start_keeps_the_address(aws, deployed) -> None:
    stopped = stop_instance(deployed, aws, timeout=60)
    assert (stopped.before, stopped.after) == ("running", "stopped")
    assert state(aws, deployed.instance_id) == "stopped"
    again = stop_instance(deployed, aws, timeout=60)
    assert not again.changed

    started = start_instance(deployed, aws, timeout=60)
    assert (started.before, started.after) == ("stopped", "running")
    assert started.public_ip == deployed.public_ip
    assert not start_instance(deployed, aws, timeout=60).changed


def test_start_refuses_when_the_address_moved(aws, deployed) -> None:
    stop_instance(deployed, aws, timeout=60)
    deployed.public_ip = "198.51.100.7"
    with pytest.raises(CheckFailed, match=r"198\.51\.100\.7 is no longer an Elastic IP"):
        start_instance(deployed, aws, timeout=60)


def test_a_terminated_instance_says_reapply(aws, deployed) -> None:
    aws.client("ec2").terminate_instances(InstanceIds=[deployed.instance_id])
    for action in (stop_instance, start_instance):
        with pytest.raises(CheckFailed, match="terminated; re-create it with `qwen3vl-aws apply`"):
            action(deployed, aws, timeout=60)


def test_stop_asks_first_and_no_changes_nothing(aws, deployed) -> None:
    result = CliRunner().invoke(cli, ["stop"], input="n\n")
    assert result.exit_code == 1 and "Aborted" in result.output
    assert state(aws, deployed.instance_id) == "running"

    result = CliRunner().invoke(cli, ["stop"], input="y\n")
    assert result.exit_code == 0, result.output
    assert f"Stopped {deployed.instance_id}." in result.output
    assert state(aws, deployed.instance_id) == "stopped"


def test_start_command_without_wait(aws, deployed) -> None:
    CliRunner().invoke(cli, ["stop", "--yes"])
    result = CliRunner().invoke(cli, ["start", "--no-wait"])
    assert result.exit_code == 0, result.output
    assert result.output == f"Started {deployed.instance_id} on {deployed.public_ip}.\n"
    assert load_deployment("qwen3vl").public_ip == deployed.public_ip
