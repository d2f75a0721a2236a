"""The status and log readers over the real SSM transport, with SSM's answers scripted by Stubber
(moto's SSM never runs a script): success, a script's non-zero exit, SSM's output cap, and a
command that is never delivered — and what health makes of that."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber
from channel_doubles import INSTANCE, expect_poll, expect_send_command, ssm_channel
from qwen3vl_aws.deployment import Deployment
from qwen3vl_aws.errors import ChannelError
from qwen3vl_aws.instance.channel.ssm import STDOUT_CAP
from qwen3vl_aws.instance.health import run_checks
from qwen3vl_aws.instance.status import read_log, read_snapshot, read_status

STATUS = {
    "stages": [{"name": "packages", "state": "running", "started_at": "2026-11-24T10:00:00Z"}],
    "model_bytes": 5,
    "model_bytes_total": 10,
    "updated_at": "2026-11-24T10:00:05Z",
}


def expect_run(stubber: Stubber, status: str, code: int, stdout: str = "", stderr: str = ""):
    """One command: sent, then polled by the waiter (and fetched once more when it succeeded)."""
    expect_send_command(stubber)
    answer = {"ResponseCode": code, "StandardOutputContent": stdout, "StandardErrorContent": stderr}
    expect_poll(stubber, status, **answer)
    if status == "Success":
        expect_poll(stubber, status, **answer)


def test_read_status_over_ssm(ssm) -> None:
    client, stubber = ssm
    expect_run(stubber, "Success", 0, json.dumps(STATUS))
    status = read_status(ssm_channel(client))
    assert status is not None and status.reached == "packages" and status.model_bytes == 5


def test_no_status_file_yet_is_none_not_an_error(ssm) -> None:
    client, stubber = ssm
    expect_run(stubber, "Failed", 3)
    assert read_status(ssm_channel(client)) is None


def test_a_log_cut_by_the_ssm_cap_is_flagged(ssm) -> None:
    client, stubber = ssm
    body = "x" * 99 + "\n"
    stdout = body * (STDOUT_CAP // len(body)) + "\n@@qwen3vl-section-offset 99999\n"
    expect_run(stubber, "Success", 0, stdout)
    chunk = read_log(ssm_channel(client), "bootstrap", lines=10_000)
    assert chunk.truncated and chunk.cursor == "99999"


def test_a_failing_log_read_says_why(ssm) -> None:
    client, stubber = ssm
    expect_run(stubber, "Failed", 1, stderr="Failed to open journal: Permission denied")
    with pytest.raises(ChannelError, match=r"Reading the engine log failed.*Permission denied"):
        read_log(ssm_channel(client), "engine")


def test_snapshot_over_ssm(ssm) -> None:
    client, stubber = ssm
    stdout = (
        "@@qwen3vl-section status\n" + json.dumps(STATUS) + "\n\n@@qwen3vl-section-end 0\n"
        "@@qwen3vl-section units\n\n@@qwen3vl-section-end 0\n"
        "@@qwen3vl-section gpu\nNVIDIA L4, 3, 22491, 0\n\n@@qwen3vl-section-end 0\n"
    )
    expect_run(stubber, "Success", 0, stdout)
    snapshot = read_snapshot(ssm_channel(client))
    assert json.loads(snapshot["status"].output) == STATUS
    assert snapshot["gpu"].output == "NVIDIA L4, 3, 22491, 0\n"


class Clients:
    """EC2 says running, SSM says Online; the command itself is never delivered."""

    def __init__(self, ssm) -> None:
        self.ssm = ssm
        self.ec2 = boto3.client(
            "ec2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )

    def client(self, service: str):
        return {"ssm": self.ssm, "ec2": self.ec2}[service]


def test_health_reports_an_undelivered_snapshot_on_the_instance_checks(ssm, tmp_path) -> None:
    client, stubber = ssm
    clients = Clients(client)
    with Stubber(clients.ec2) as ec2_stub:
        ec2_stub.add_response(
            "describe_instances",
            {"Reservations": [{"Instances": [{"State": {"Name": "running", "Code": 16}}]}]},
        )
        filters = {"Filters": [{"Key": "InstanceIds", "Values": [INSTANCE]}]}
        stubber.add_response(
            "describe_instance_information",
            {"InstanceInformationList": [{"InstanceId": INSTANCE, "PingStatus": "Online"}]},
            filters,
        )
        stubber.add_client_error("send_command", "InvalidInstanceId", "not registered")
        stubber.add_response(
            "describe_instance_information", {"InstanceInformationList": []}, filters
        )
        deployment = Deployment(
            name="qwen3vl", region="us-east-1", instance_type="g6.xlarge", instance_id=INSTANCE
        )  # no certificate pinned: the endpoint checks stop at tls
        results = run_checks(deployment, clients, ssm_channel(client), api_key=None)
    by_name = {r.name: r for r in results}
    assert by_name["ssm"].ok
    for name in ("bootstrap", "units", "gpu"):
        assert not by_name[name].ok
        assert "SSM has no record of this instance" in by_name[name].detail
    assert by_name["tls"].detail.startswith("no pinned certificate")
