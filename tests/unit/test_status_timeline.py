"""`status --timeline`: the instance's record read over the channel, joined with EC2's launch."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws
from qwen3vl_aws.aws.pricing import Price
from qwen3vl_aws.cli import cli
from qwen3vl_aws.deployment import Deployment
from qwen3vl_aws.instance.channel.base import CommandResult
from test_json_schemas import validate_output

from rig.cli import app_with_channel

MOTO_AMI = "ami-dca37ea5"


class StatusChannel:
    def __init__(self, text: str | None) -> None:
        self.text = text

    def run(self, script: str, timeout: float = 60.0) -> CommandResult:
        assert "status.json" in script
        if self.text is None:
            return CommandResult(3, "", "")
        return CommandResult(0, self.text, "")


def record(launched: datetime) -> str:
    def at(s: float) -> str:
        return (launched + timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%SZ")

    spans = {"packages": (30, 90), "model": (35, 80), "configure": (90, 95)}
    spans |= {"engine": (95, 96), "ready": (96, 150)}
    stages = [
        {"name": n, "state": "done", "started_at": at(a), "finished_at": at(b)}
        for n, (a, b) in spans.items()
    ]
    weights = {"source": "s3", "bytes": 17_000_000_000, "seconds": 17.0}
    return json.dumps({"stages": stages, "weights": weights, "booted_at": at(20)})


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("qwen3vl_aws.aws.pricing.hourly_price", lambda *a, **k: Price(1.0, "test"))
    with mock_aws():
        ec2 = boto3.client("ec2", region_name="us-east-1")
        instance = ec2.run_instances(ImageId=MOTO_AMI, MinCount=1, MaxCount=1)["Instances"][0]
        Deployment(
            name="demo",
            region="us-east-1",
            instance_type="g5.xlarge",
            instance_id=instance["InstanceId"],
            public_ip="198.51.100.9",
            endpoint="https://198.51.100.9/v1",
        ).save()
        yield instance


def timeline(monkeypatch: pytest.MonkeyPatch, text: str | None, *args: str):
    app = app_with_channel(StatusChannel(text))
    return CliRunner().invoke(cli, ["--name", "demo", "status", "--timeline", *args], obj=app)


def test_timeline_json_times_the_start_from_ec2s_launch(deployed, monkeypatch) -> None:
    launched = deployed["LaunchTime"].astimezone(UTC)
    result = timeline(monkeypatch, record(launched), "--json")
    assert result.exit_code == 0, result.output
    steps = {s["name"]: s for s in validate_output("status-timeline", result.stdout)["last_start"]}
    assert steps["boot"]["seconds"] == 30 and steps["boot"]["detail"] == "OS up 20s"
    assert steps["weights"]["seconds"] == 45
    assert steps["weights"]["detail"] == "s3, 17.0 GB at 1000 MB/s"
    assert steps["total"]["seconds"] == 150


def test_timeline_table_names_the_steps(deployed, monkeypatch) -> None:
    result = timeline(monkeypatch, record(deployed["LaunchTime"].astimezone(UTC)))
    assert result.exit_code == 0, result.output
    for step in ("boot", "packages", "weights", "engine load", "compile", "CUDA graphs"):
        assert step in result.stdout
    assert "first answer" in result.stdout


def test_before_the_bootstrap_wrote_its_status_says_to_wait(deployed, monkeypatch) -> None:
    result = timeline(monkeypatch, None)
    assert result.exit_code == 2
    assert "has not written its status yet" in result.output
