"""GPU data for the planner: the built-in table against moto's instance-type data, EC2 answers
through a real moto server, and the fallback when AWS cannot be used."""

from __future__ import annotations

import gzip
import json
from functools import cache
from importlib import resources

import boto3
import pytest
from botocore.stub import Stubber
from qwen3vl_aws.aws.catalog import instance_types
from qwen3vl_aws.aws.clients import ClientFactory
from qwen3vl_aws.errors import AwsError, UsageError
from qwen3vl_aws.serving.gpu_specs import catalog_gpu, ec2_gpu, gpu_for


@cache
def moto_instance_types() -> dict:
    """moto's own copy of EC2's DescribeInstanceTypes data."""
    blob = resources.files("moto.ec2.resources").joinpath("instance_types.json.gz").read_bytes()
    return json.loads(gzip.decompress(blob))


@pytest.mark.parametrize("name", sorted(instance_types()))
def test_builtin_table_agrees_with_moto_data(name):
    gpu_info = moto_instance_types()[name]["GpuInfo"]
    (gpu,) = gpu_info["Gpus"]
    spec = catalog_gpu(name)
    assert (spec.name, spec.count, spec.memory_mib) == (
        gpu["Name"],
        gpu["Count"],
        gpu["MemoryInfo"]["SizeInMiB"],
    )
    assert spec.count * spec.memory_mib == gpu_info["TotalGpuMemoryInMiB"]


def test_ec2_answer_through_a_real_moto_server(aws_env):
    clients = ClientFactory(region="us-east-1")
    for name in ("g5.xlarge", "g6.48xlarge", "g6e.12xlarge"):
        spec = gpu_for(name, clients)
        assert spec.source == "EC2 DescribeInstanceTypes"
        expected = catalog_gpu(name)
        assert (spec.name, spec.count, spec.memory_mib) == (
            expected.name,
            expected.count,
            expected.memory_mib,
        )


def test_no_credentials_uses_the_catalog(monkeypatch, tmp_path):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    spec = gpu_for("g6.xlarge", ClientFactory(region="us-east-1"))
    assert spec.source == "built-in catalog; no AWS credentials"
    assert spec.memory_mib == catalog_gpu("g6.xlarge").memory_mib


class StubbedClients:
    """A ClientFactory look-alike whose EC2 client answers from a Stubber."""

    def __init__(self, ec2) -> None:
        self.ec2 = ec2

    def credentials_available(self) -> bool:
        return True

    def client(self, service: str):
        assert service == "ec2"
        return self.ec2


def stubbed_ec2():
    return boto3.client(
        "ec2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def test_aws_refusing_falls_back_to_the_catalog():
    ec2 = stubbed_ec2()
    with Stubber(ec2) as stub:
        stub.add_client_error(
            "describe_instance_types", "UnauthorizedOperation", "not allowed to describe"
        )
        spec = gpu_for("g6e.xlarge", StubbedClients(ec2))
        stub.assert_no_pending_responses()
    assert spec.source.startswith("built-in catalog; AWS not used:")
    assert "AWS denied DescribeInstanceTypes" in spec.source


def test_ec2_without_gpu_data_is_an_aws_error():
    ec2 = stubbed_ec2()
    with Stubber(ec2) as stub:
        stub.add_response(
            "describe_instance_types", {"InstanceTypes": [{"InstanceType": "g5.xlarge"}]}
        )
        with pytest.raises(AwsError, match="no GPU"):
            ec2_gpu("g5.xlarge", ec2)


def test_ec2_numbers_win_over_the_catalog():
    ec2 = stubbed_ec2()
    answer = {
        "InstanceTypes": [
            {
                "InstanceType": "g6e.xlarge",
                "GpuInfo": {
                    "Gpus": [
                        {"Name": "L40S", "Count": 1, "MemoryInfo": {"SizeInMiB": 40000}},
                    ],
                    "TotalGpuMemoryInMiB": 40000,
                },
            }
        ]
    }
    with Stubber(ec2) as stub:
        stub.add_response("describe_instance_types", answer, {"InstanceTypes": ["g6e.xlarge"]})
        spec = gpu_for("g6e.xlarge", StubbedClients(ec2))
    assert (spec.memory_mib, spec.source) == (40000, "EC2 DescribeInstanceTypes")


def test_unsupported_type_is_refused_before_asking_aws():
    ec2 = stubbed_ec2()
    with Stubber(ec2), pytest.raises(UsageError, match="Unsupported instance type"):
        gpu_for("p5.48xlarge", StubbedClients(ec2))
