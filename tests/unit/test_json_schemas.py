"""Every command's ``--json`` output is validated against its schema in tests/schemas/.

Scripts depend on these shapes; a change to one must change its schema too. ``validate_output`` is
also used by the command tests that produce the richer documents (tests/unit/test_health.py).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from moto import mock_aws
from qwen3vl_aws.aws.catalog import instance_types
from qwen3vl_aws.aws.clients import ClientFactory
from qwen3vl_aws.cli import COMMANDS, cli
from qwen3vl_aws.deployment import Deployment
from referencing import Registry, Resource

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


@cache
def schema(command: str) -> dict:
    return json.loads((SCHEMAS / f"{command}.json").read_text())


@cache
def registry() -> Registry:
    """Every schema by its $id, so one can refer to another (status.json -> fleet.json)."""
    resources = [
        (doc["$id"], Resource.from_contents(doc))
        for doc in (json.loads(p.read_text()) for p in sorted(SCHEMAS.glob("*.json")))
    ]
    return Registry().with_resources(resources)


def validate(command: str, doc: dict) -> None:
    """Validate a document against the command's schema (formats checked too)."""
    jsonschema.Draft202012Validator(
        schema(command),
        registry=registry(),
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    ).validate(doc)


def validate_output(command: str, output: str) -> dict:
    """Parse a command's ``--json`` stdout and validate it; return the document."""
    doc = json.loads(output)
    validate(command, doc)
    return doc


def record_instance(instance_type: str, *, stopped: bool, **fields: str) -> None:
    """Launch an instance in moto (inside ``mock_aws``), stop it if asked, and record it as the
    deployment ``qwen3vl`` at https://192.0.2.10/v1, with any further record fields given."""
    ec2 = ClientFactory(region="us-east-1").client("ec2")
    instance_id = ec2.run_instances(
        ImageId="ami-12345678", MinCount=1, MaxCount=1, InstanceType=instance_type
    )["Instances"][0]["InstanceId"]
    if stopped:
        ec2.stop_instances(InstanceIds=[instance_id])
    Deployment(
        name="qwen3vl",
        region="us-east-1",
        instance_type=instance_type,
        instance_id=instance_id,
        endpoint="https://192.0.2.10/v1",
        public_ip="192.0.2.10",
        **fields,
    ).save()


def status_doc(**changes: object) -> dict:
    """A valid ``status --json`` document (an instance not found), with the changes given."""
    doc = {
        "name": "qwen3vl",
        "region": "us-east-1",
        "state": "not-found",
        "instance_type": "g5.xlarge",
        "instance_id": None,
        "endpoint": None,
        "public_ip": None,
        "cert_path": "/state/qwen3vl/endpoint-cert.pem",
        "served_model_name": "Qwen/Qwen3-VL-8B-Instruct",
        "engine": "vllm",
        "transport": "ssm",
        "hourly_usd": 1.006,
        "price_source": "catalog",
        "launched_at": None,
        "uptime_seconds": None,
        "cost_since_launch_usd": None,
        "kv_cache": None,
    }
    return {**doc, **changes}


def json_commands() -> list[str]:
    """Commands whose help offers ``--json``."""
    runner = CliRunner()
    found = []
    for name in sorted(COMMANDS):
        help_text = runner.invoke(cli, [name, "--help"]).output
        if "--json" in help_text:
            found.append(name)
    return found


def test_every_json_command_has_a_valid_schema() -> None:
    commands = json_commands()
    assert "health" in commands and "plan-serving" in commands
    for command in commands:
        assert (SCHEMAS / f"{command}.json").is_file(), f"tests/schemas/{command}.json is missing"
        jsonschema.Draft202012Validator.check_schema(schema(command))


@pytest.mark.parametrize("instance_type", list(instance_types()))
def test_plan_serving_json(instance_type: str) -> None:
    result = CliRunner().invoke(
        cli, ["plan-serving", "--offline", "--instance-type", instance_type, "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = validate_output("plan-serving", result.output)
    assert doc["instance_type"] == instance_type


def test_health_json_of_a_stopped_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    with mock_aws():
        record_instance("g5.xlarge", stopped=True, transport="ssh", ssh_user="ubuntu")
        key = "sk-qwen-" + "j" * 43
        result = CliRunner().invoke(cli, ["health", "--json", "--key-stdin"], input=key)
    assert result.exit_code == 7
    doc = validate_output("health", result.stdout)
    assert doc["ok"] is False
    assert [c["attempted"] for c in doc["checks"]] == [True] + [False] * 10


def test_the_health_schema_rejects_ok_with_a_failing_check() -> None:
    check = {
        "name": "gpu",
        "ok": False,
        "detail": "x",
        "latency_s": None,
        "hint": None,
        "attempted": True,
        "warning": False,
        "data": None,
    }
    passing = dict(check, ok=True)
    doc = {"deployment": "qwen3vl", "ok": True, "checks": [passing] * 10 + [check]}
    with pytest.raises(jsonschema.ValidationError):
        validate("health", doc)
    doc["ok"] = False
    validate("health", doc)


@pytest.mark.parametrize("stop", [False, True])
def test_status_json(stop: bool) -> None:
    with mock_aws():
        record_instance("g6e.xlarge", stopped=stop, engine="sglang")
        result = CliRunner().invoke(cli, ["status", "--json"])
    assert result.exit_code == 0, result.output
    doc = validate_output("status", result.stdout)
    assert doc["state"] == ("stopped" if stop else "running")
    assert doc["engine"] == "sglang"


def test_the_status_schema_rejects_a_cost_for_a_stopped_instance() -> None:
    doc = status_doc(
        state="stopped",
        instance_id="i-0abc",
        cert_path="/home/me/.local/state/qwen3vl-aws/qwen3vl/endpoint-cert.pem",
        uptime_seconds=60,
        cost_since_launch_usd=0.02,
    )
    with pytest.raises(jsonschema.ValidationError):
        validate("status", doc)
    doc.update(uptime_seconds=None, cost_since_launch_usd=None)
    validate("status", doc)


@pytest.mark.parametrize(
    ("field", "value"),
    [("engine", "tgi"), ("cert_path", "relative/cert.pem"), ("served_model_name", "a b")],
)
def test_the_status_schema_checks_what_clients_read(field: str, value: str) -> None:
    doc = status_doc()
    validate("status", doc)
    with pytest.raises(jsonschema.ValidationError):
        validate("status", {**doc, field: value})
    without = {k: v for k, v in doc.items() if k != field}
    with pytest.raises(jsonschema.ValidationError):
        validate("status", without)


def test_plan_serving_json_names_the_engine_and_its_flags() -> None:
    result = CliRunner().invoke(cli, ["plan-serving", "--offline", "--engine", "sglang", "--json"])
    assert result.exit_code == 0, result.output
    doc = validate_output("plan-serving", result.output)
    assert doc["engine"] == "sglang"
    assert "--context-length" in doc["engine_args"] and "--max-model-len" in doc["flags"]
