"""The apply flow's pieces: Terraform inputs, the first key into Secrets Manager, the record."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws
from qwen3vl_aws.deployment import load_deployment
from qwen3vl_aws.errors import UsageError
from qwen3vl_aws.provision import ApplyRequest, check_recorded, record, store_key

KEY = "sk-qwen-" + "a" * 43


def _request(**kw) -> ApplyRequest:
    base = {
        "name": "demo",
        "region": "eu-west-1",
        "instance_type": "g5.2xlarge",
        "allowed_cidrs": ["203.0.113.7/32"],
    }
    return ApplyRequest(**{**base, **kw})


def test_terraform_variables_hold_no_key_and_only_what_was_asked() -> None:
    variables = _request(engine_args=["--max-model-len", "8192"]).terraform_variables()
    assert variables["instance_type"] == "g5.2xlarge"
    assert variables["engine_args"] == ["--max-model-len", "8192"]
    assert "ami_id" not in variables and "ssh_key_name" not in variables
    assert "max_image_pixels" not in variables  # until prepare() fills in the plan's cap
    pinned = _request(draft_model_id="o/d", draft_model_revision="f" * 40).terraform_variables()
    assert (pinned["draft_model_id"], pinned["draft_model_revision"]) == ("o/d", "f" * 40)
    assert not any("key" in str(v) for k, v in variables.items() if k != "engine_args")


def test_engine_media_domains_subnet_and_model_cache_become_terraform_inputs() -> None:
    defaults = _request().terraform_variables()
    assert (defaults["engine"], defaults["model_cache"]) == ("vllm", "ebs")
    assert defaults["allowed_media_domains"] == [] and "subnet_id" not in defaults
    variables = _request(
        engine="sglang",
        engine_args=["--context-length", "8192"],
        allowed_media_domains=["upload.wikimedia.org"],
        subnet_id="subnet-0123456789abcdef0",
        model_cache="instance-store",
    ).terraform_variables()
    assert variables["engine"] == "sglang"
    assert variables["engine_args"] == ["--context-length", "8192"]
    assert variables["allowed_media_domains"] == ["upload.wikimedia.org"]
    assert variables["subnet_id"] == "subnet-0123456789abcdef0"
    assert variables["model_cache"] == "instance-store"


def test_record_keeps_the_engine() -> None:
    deployment = record(_request(engine="sglang"), {"instance_id": "i-0abc"})
    assert deployment.engine == "sglang"
    assert load_deployment("demo").engine == "sglang"


def test_ssh_transport_only_with_a_key_pair() -> None:
    plain = _request(ssh_allowed_cidrs=["198.51.100.0/24"])
    assert plain.transport == "ssm" and "ssh_allowed_cidrs" not in plain.terraform_variables()
    ssh = _request(ssh_key_name="me", ssh_allowed_cidrs=["198.51.100.0/24"], ami_id="ami-12345678")
    variables = ssh.terraform_variables()
    assert ssh.transport == "ssh"
    assert variables["ssh_key_name"] == "me"
    assert variables["ssh_allowed_cidrs"] == ["198.51.100.0/24"]
    assert variables["ami_id"] == "ami-12345678"


@mock_aws
def test_store_key_writes_the_first_version_once() -> None:
    sm = boto3.client("secretsmanager", region_name="eu-west-1")
    arn = sm.create_secret(Name="qwen3vl/demo/api-key")["ARN"]
    calls: list[int] = []

    def source() -> str:
        calls.append(1)
        return KEY

    assert store_key(sm, arn, source, explicit=False) is True
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == KEY
    assert store_key(sm, arn, source, explicit=False) is False  # kept, not regenerated
    assert calls == [1]
    with pytest.raises(UsageError, match="rotate-key"):
        store_key(sm, arn, source, explicit=True)


def test_record_sets_launch_time_when_the_instance_changes() -> None:
    first = record(_request(), {"secret_arn": "arn:x"}, complete=False)
    assert first.launched_at is None and first.extra == {"complete": False}
    outputs = {
        "instance_id": "i-1",
        "public_ip": "198.51.100.9",
        "endpoint": "https://198.51.100.9/v1",
        "secret_arn": "arn:x",
        "port": 443,
    }
    second = record(_request(), outputs, complete=True)
    assert second.launched_at is not None
    assert load_deployment("demo").endpoint == "https://198.51.100.9/v1"
    third = record(_request(), outputs, complete=True)
    assert third.launched_at == second.launched_at


def test_a_recorded_deployment_stays_in_its_region() -> None:
    record(_request(), {"secret_arn": "arn:x"}, complete=False)
    check_recorded("demo", "eu-west-1", None)
    check_recorded("other", "us-east-1", None)
    with pytest.raises(UsageError, match="lives in eu-west-1, not us-east-1"):
        check_recorded("demo", "us-east-1", None)


def test_partial_record_keeps_what_was_known() -> None:
    outputs = {"instance_id": "i-1", "public_ip": "198.51.100.9", "secret_arn": "arn:x"}
    record(_request(), outputs, complete=True)
    partial = record(_request(), {"secret_arn": "arn:x"}, complete=False)
    assert partial.instance_id == "i-1" and partial.public_ip == "198.51.100.9"
    assert partial.extra["complete"] is False


@pytest.fixture
def moto_clients(monkeypatch: pytest.MonkeyPatch):
    """A ClientFactory for eu-west-1 backed by in-process moto, with fake credentials."""
    from qwen3vl_aws.aws.clients import ClientFactory

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        # moto has no Price List API: the catalog price is used.
        "AWS_ENDPOINT_URL_PRICING": "http://127.0.0.1:9",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield ClientFactory(region="eu-west-1")


def test_prepare_fills_in_the_plan_for_the_engine_and_prices_it(moto_clients) -> None:
    from qwen3vl_aws.aws.catalog import get_instance_type
    from qwen3vl_aws.provision import prepare
    from qwen3vl_aws.serving.engine_flags import engine_args
    from qwen3vl_aws.serving.overrides import ServingOverrides

    request = _request(engine="sglang")
    prepared = prepare(moto_clients, request, ServingOverrides(max_model_len=4096))
    plan = prepared.plan
    assert (plan.instance_type, plan.max_model_len) == ("g5.2xlarge", 4096)
    assert prepared.request.model_id == prepared.request.served_model_name == plan.model_id
    assert prepared.request.engine_args == engine_args(plan, "sglang")
    # The plan's decoded-pixel cap reaches the instance's engine.env through Terraform.
    assert prepared.request.terraform_variables()["max_image_pixels"] == plan.max_decoded_pixels
    assert request.engine_args == []  # a new request came back; the one given is unchanged
    assert prepared.account == moto_clients.client("sts").get_caller_identity()["Account"]
    assert prepared.zones and all(z.startswith("eu-west-1") for z in prepared.zones)
    catalog_price = get_instance_type("g5.2xlarge").on_demand_usd_per_hour
    assert prepared.price.usd_per_hour == catalog_price


def test_prepare_refuses_before_planning_when_the_region_lacks_the_type(moto_clients) -> None:
    from qwen3vl_aws.errors import Qwen3vlError
    from qwen3vl_aws.provision import prepare
    from qwen3vl_aws.serving.overrides import ServingOverrides

    ca_clients = type(moto_clients)(region="ca-central-1")
    request = _request(region="ca-central-1", instance_type="g6e.xlarge")
    unplannable = ServingOverrides(max_model_len=99_999_999)  # planning it would fail loudly
    with pytest.raises(Qwen3vlError, match=r"g6e\.xlarge") as refused:
        prepare(ca_clients, request, unplannable)
    assert "does not fit" not in str(refused.value)  # refused on the offering, before planning
    assert request.engine_args == []
