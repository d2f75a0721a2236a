"""`status`, `health`, `wait`, `scale`, `stop` and `start` on a fleet record, against moto's
Auto Scaling, Elastic Load Balancing and ACM (a group of two behind a load balancer, built here
as Terraform's `fleet` output describes it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws
from qwen3vl_aws.cli import cli
from qwen3vl_aws.deployment import IMPORTED_CERTIFICATE_KEY as RECORD_KEY
from qwen3vl_aws.deployment import Deployment, load_deployment
from qwen3vl_aws.fleet.certificate import import_certificate, make_certificate
from qwen3vl_aws.instance.endpoint import fingerprint
from test_json_schemas import validate, validate_output

REGION = "us-east-1"
GROUP = "qwen3vl-fleet"


@dataclass
class FakeFleet:
    record: Deployment
    certificate_pem: str

    def client(self, service: str):
        return boto3.client(service, region_name=REGION)

    def group(self) -> dict:
        return self.client("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[GROUP]
        )["AutoScalingGroups"][0]


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeFleet]:
    monkeypatch.setenv("QWEN3VL_AWS_HOME", str(tmp_path / "home"))
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        subnets = {s["AvailabilityZone"]: s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]}
        two = [subnets["us-east-1a"], subnets["us-east-1b"]]
        elbv2 = boto3.client("elbv2", region_name=REGION)
        lb = elbv2.create_load_balancer(Name="qwen3vl", Subnets=two)["LoadBalancers"][0]
        made = make_certificate(lb["DNSName"])
        cert_arn = import_certificate(boto3.client("acm", region_name=REGION), made, "qwen3vl")
        vpc = ec2.describe_subnets(SubnetIds=two)["Subnets"][0]["VpcId"]
        tg = elbv2.create_target_group(
            Name="qwen3vl", Protocol="HTTPS", Port=443, VpcId=vpc, HealthCheckPath="/health"
        )["TargetGroups"][0]["TargetGroupArn"]
        listener = elbv2.create_listener(
            LoadBalancerArn=lb["LoadBalancerArn"],
            Protocol="HTTPS",
            Port=443,
            Certificates=[{"CertificateArn": cert_arn}],
            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}],
        )["Listeners"][0]["ListenerArn"]
        ec2.create_launch_template(
            LaunchTemplateName="qwen3vl",
            LaunchTemplateData={"ImageId": "ami-12345678", "InstanceType": "g5.xlarge"},
        )
        boto3.client("autoscaling", region_name=REGION).create_auto_scaling_group(
            AutoScalingGroupName=GROUP,
            LaunchTemplate={"LaunchTemplateName": "qwen3vl", "Version": "$Latest"},
            MinSize=2,
            MaxSize=4,
            DesiredCapacity=2,
            VPCZoneIdentifier=",".join(two),
            TargetGroupARNs=[tg],
        )
        record = Deployment(
            name="qwen3vl",
            region=REGION,
            instance_type="g5.xlarge",
            endpoint=f"https://{lb['DNSName']}/v1",
            secret_arn=None,
            fleet={
                "min_size": 2,
                "max_size": 4,
                "zones": ["us-east-1a", "us-east-1b"],
                "autoscaling_group_name": GROUP,
                "load_balancer_arn": lb["LoadBalancerArn"],
                "load_balancer_dns_name": lb["DNSName"],
                "listener_arn": listener,
                "certificate_arn": cert_arn,
                "target_group_arn": tg,
            },
            extra={RECORD_KEY: cert_arn},
        )
        record.save()
        yield FakeFleet(record, made.cert_pem.decode())


def _run(*args: str, stdin: str = ""):
    return CliRunner().invoke(cli, list(args), input=stdin)


def test_status_json_lists_each_replica_and_the_listener_certificate(fleet: FakeFleet) -> None:
    result = _run("status", "--json")
    assert result.exit_code == 0, result.output
    doc = validate_output("status", result.stdout)
    group = fleet.group()
    assert sorted(r["instance_id"] for r in doc["replicas"]) == sorted(
        i["InstanceId"] for i in group["Instances"]
    )
    assert {r["zone"] for r in doc["replicas"]} <= {"us-east-1a", "us-east-1b"}
    assert doc["certificate"]["arn"] == fleet.record.fleet["certificate_arn"]
    assert doc["certificate"]["pinned_sha256"] is None  # nothing pinned yet
    assert doc["load_balancer_dns_name"] == fleet.record.fleet["load_balancer_dns_name"]
    assert (doc["min_size"], doc["max_size"]) == (2, 4)
    # moto's SSM has no agent on the replicas: their stage is unknown, not invented.
    assert {r["bootstrap_stage"] for r in doc["replicas"]} <= {"unknown", "not started"}
    # All replicas are healthy targets: a client is served; moto records no scaling activity.
    assert (doc["wake"]["state"], doc["wake"]["desired"]) == ("serving", group["DesiredCapacity"])
    assert doc["wake"]["client_status"] == 200 and doc["wake"]["last_wake"] is None


def test_health_fails_with_fewer_than_min_healthy(fleet: FakeFleet) -> None:
    elbv2 = fleet.client("elbv2")
    tg = fleet.record.fleet["target_group_arn"]
    health = elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    targets = [d["Target"] for d in health]
    assert len(targets) == 2  # moto registers the group's instances as targets
    healthy = _run("health", "--json")
    assert healthy.exit_code == 0, healthy.output
    assert validate_output("health", healthy.stdout)["ok"] is True
    elbv2.deregister_targets(TargetGroupArn=tg, Targets=targets[:1])
    result = _run("health", "--json")
    assert result.exit_code == 7
    doc = validate_output("health", result.stdout)
    assert doc["ok"] is False and doc["healthy_replicas"] < doc["min_size"]
    assert "Only 1 of at least 2 replicas are healthy" in result.stderr


def test_wait_pins_the_listener_certificate(fleet: FakeFleet) -> None:
    result = _run("wait", "--timeout", "5")
    assert result.exit_code == 0, result.output
    assert fleet.record.cert_path.read_text().strip() == fleet.certificate_pem.strip()
    assert f"sha256 {fingerprint(fleet.certificate_pem)}" in result.stderr.replace("\n", "")
    again = _run("wait", "--timeout", "5", "--json")
    assert again.exit_code == 0, again.output
    doc = validate_output("wait", again.stdout)
    assert doc["certificate"]["pinned_sha256"] == fingerprint(fleet.certificate_pem)
    assert doc["healthy_replicas"] >= 2


def test_scale_moves_the_group_and_records_the_bounds(fleet: FakeFleet) -> None:
    tf_vars = fleet.record.directory / "terraform.tfvars.json"
    tf_vars.write_text('{"replicas": "2:4", "name": "qwen3vl"}\n')
    declined = _run("scale", "--replicas", "3:6", stdin="n\n")
    assert declined.exit_code == 1 and fleet.group()["MinSize"] == 2
    result = _run("scale", "--replicas", "3:6", "--yes")
    assert result.exit_code == 0, result.output
    group = fleet.group()
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (3, 6, 3)
    assert '"replicas": "3:6"' in tf_vars.read_text()
    assert '"name": "qwen3vl"' in tf_vars.read_text()
    assert load_deployment("qwen3vl").fleet["min_size"] == 3


@pytest.mark.parametrize(
    ("replicas", "message"),
    [("0:4", "Scaling to or from MIN 0"), ("5:4", "must not exceed MAX"), ("x", "MIN:MAX")],
)
def test_scale_refuses_and_changes_nothing(fleet: FakeFleet, replicas: str, message: str) -> None:
    result = _run("scale", "--replicas", replicas, "--yes")
    assert result.exit_code == 2
    assert message in result.output
    assert (fleet.group()["MinSize"], fleet.group()["MaxSize"]) == (2, 4)


def test_stop_sets_the_group_to_zero_and_start_restores_it(fleet: FakeFleet) -> None:
    declined = _run("stop", stdin="n\n")
    assert declined.exit_code == 1 and fleet.group()["DesiredCapacity"] == 2
    stopped = _run("stop", "--yes")
    assert stopped.exit_code == 0, stopped.output
    group = fleet.group()
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (0, 0, 0)
    assert _run("stop", "--yes").stdout.strip().endswith("was already stopped.")
    assert validate_output("fleet", _run("status", "--json").stdout)["stopped"] is True
    refused = _run("scale", "--replicas", "3:5", "--yes")
    assert refused.exit_code == 2 and "is stopped" in refused.output
    started = _run("start", "--no-wait")
    assert started.exit_code == 0, started.output
    group = fleet.group()
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (2, 4, 2)
    assert validate_output("fleet", _run("status", "--json").stdout)["stopped"] is False


def test_a_single_instance_is_not_scaled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QWEN3VL_AWS_HOME", str(tmp_path))
    Deployment(name="qwen3vl", region=REGION, instance_type="g5.xlarge").save()
    result = _run("scale", "--replicas", "2:4", "--yes")
    assert result.exit_code == 2
    assert "is a single instance, not a fleet" in result.output


def test_status_timeline_shows_each_replicas_start(fleet: FakeFleet) -> None:
    """Per replica: its own status file (over its channel) against its own EC2 launch time."""
    from datetime import UTC

    from test_status_timeline import StatusChannel, record

    from rig.cli import app_with_channel

    ec2 = fleet.client("ec2")
    ids = [i["InstanceId"] for i in fleet.group()["Instances"]]
    launches = {
        i["InstanceId"]: i["LaunchTime"].astimezone(UTC)
        for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]
        for i in r["Instances"]
    }
    # moto launches the group's instances together: one status file serves both replicas.
    (launched,) = set(launches.values())
    app = app_with_channel(StatusChannel(record(launched)))
    result = CliRunner().invoke(cli, ["status", "--timeline", "--json"], obj=app)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert sorted(r["instance_id"] for r in doc["replicas"]) == sorted(ids)
    for replica in doc["replicas"]:
        validate("status-timeline", replica["timeline"])
        steps = {s["name"]: s["seconds"] for s in replica["timeline"]["last_start"]}
        # record(): packages start 30 s after this replica's launch, the model stage takes 35-80.
        assert (steps["boot"], steps["weights"]) == (30, 45)

    table = CliRunner().invoke(cli, ["status", "--timeline"], obj=app)
    assert table.exit_code == 0, table.output
    assert all(f"{i} (" in table.stdout for i in ids)

    unwritten = app_with_channel(StatusChannel(None))
    result = CliRunner().invoke(cli, ["status", "--timeline", "--json"], obj=unwritten)
    assert result.exit_code == 0, result.output
    assert {r["problem"] for r in json.loads(result.stdout)["replicas"]} == {
        "the bootstrap has not written its status yet"
    }
