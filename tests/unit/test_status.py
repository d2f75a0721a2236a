"""`status`: the deployment record joined with EC2's view, the price, uptime and cost so far."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber
from qwen3vl_aws.aws.pricing import Price
from qwen3vl_aws.deployment import Deployment
from qwen3vl_aws.errors import AwsError
from qwen3vl_aws.instance.probe import describe_instance
from qwen3vl_aws.instance.summary import deployment_status

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
PRICE = Price(2.0, "test price")


def _deployment(**extra) -> Deployment:
    return Deployment(
        name="demo",
        region="us-east-1",
        instance_type="g6.xlarge",
        instance_id="i-0abc",
        public_ip="198.51.100.9",
        endpoint="https://198.51.100.9/v1",
        extra=extra,
    )


def _instance(state: str, launched: datetime) -> dict:
    return {"State": {"Name": state}, "InstanceType": "g6.xlarge", "LaunchTime": launched}


def test_running_instance_has_uptime_and_cost() -> None:
    launched = NOW - timedelta(hours=1, minutes=30)
    doc = deployment_status(_deployment(), _instance("running", launched), PRICE, now=NOW)
    assert doc["state"] == "running"
    assert doc["uptime_seconds"] == 5400
    assert doc["cost_since_launch_usd"] == 3.0  # 1.5 h at $2.00
    assert doc["hourly_usd"] == 2.0 and doc["price_source"] == "test price"
    assert doc["launched_at"] == "2026-11-24T10:30:00Z"
    assert doc["endpoint"] == "https://198.51.100.9/v1"


def test_clients_find_the_pinned_certificate_model_name_and_engine() -> None:
    deployment = _deployment()
    deployment.engine = "sglang"
    deployment.served_model_name = "qwen3-vl"
    doc = deployment_status(deployment, None, PRICE, now=NOW)
    assert doc["cert_path"] == str(deployment.directory / "endpoint-cert.pem")
    assert (doc["served_model_name"], doc["engine"]) == ("qwen3-vl", "sglang")


def test_stopped_instance_costs_nothing_more() -> None:
    doc = deployment_status(_deployment(), _instance("stopped", NOW), PRICE, now=NOW)
    assert doc["state"] == "stopped"
    assert doc["uptime_seconds"] is None and doc["cost_since_launch_usd"] is None


def test_missing_instance_and_incomplete_apply() -> None:
    assert deployment_status(_deployment(), None, PRICE, now=NOW)["state"] == "not-found"
    incomplete = deployment_status(_deployment(complete=False), None, PRICE, now=NOW)
    assert incomplete["state"] == "incomplete"
    assert incomplete["instance_type"] == "g6.xlarge"


def test_describe_instance_tolerates_a_vanished_instance() -> None:
    ec2 = boto3.client(
        "ec2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    assert describe_instance(ec2, None) is None
    with Stubber(ec2) as stub:
        stub.add_client_error("describe_instances", "InvalidInstanceID.NotFound")
        assert describe_instance(ec2, "i-0123456789abcdef0") is None
        stub.add_response(
            "describe_instances",
            {"Reservations": [{"Instances": [{"InstanceId": "i-0abc"}]}]},
            {"InstanceIds": ["i-0abc"]},
        )
        assert describe_instance(ec2, "i-0abc") == {"InstanceId": "i-0abc"}
        stub.add_client_error("describe_instances", "UnauthorizedOperation", "not allowed")
        with pytest.raises(AwsError, match="Describing the instance: AWS denied DescribeInstances"):
            describe_instance(ec2, "i-0abc")
