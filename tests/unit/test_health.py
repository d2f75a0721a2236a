"""Health checks one by one, then all together, against moto (EC2), Stubber (SSM), the real snapshot
script with stubbed systemctl/nvidia-smi, and a real TLS endpoint (tests/unit/fake_gateway.py)."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.stub import Stubber
from click.testing import CliRunner
from fake_gateway import FakeGateway, self_signed, serve
from moto import mock_aws
from PIL import Image
from qwen3vl_aws.aws.clients import ClientFactory
from qwen3vl_aws.cli import cli
from qwen3vl_aws.deployment import Deployment
from qwen3vl_aws.instance.health import (
    CHECK_NAMES,
    check_bootstrap,
    check_gpu,
    check_instance,
    check_ssm,
    check_units,
    run_checks,
    tiny_png,
)
from qwen3vl_aws.instance.status import STATUS_FILE, Section
from test_json_schemas import validate_output

from rig.cli import app_with_channel
from rig.local import LocalChannel

KEY = "sk-qwen-" + "k" * 43
STAGES = ("packages", "model", "configure", "engine", "ready")
UNITS_OK = """\
Id=qwen3vl-engine.service
LoadState=loaded
ActiveState=active
SubState=running
Result=success
NRestarts=0

Id=qwen3vl-gateway.service
LoadState=loaded
ActiveState=active
SubState=running
Result=success
NRestarts=0
"""
GPU_OK = "NVIDIA A10G, 17210, 23028, 3\n"


def status_json(done: tuple[str, ...] = STAGES, failed: str | None = None) -> str:
    stages = [
        {
            "name": name,
            "state": "done" if name in done else ("failed" if name == failed else "pending"),
            "started_at": "2026-11-24T10:00:00Z" if name in done or name == failed else None,
            "finished_at": "2026-11-24T10:00:42Z" if name in done or name == failed else None,
        }
        for name in STAGES
    ]
    return json.dumps({"stages": stages, "model_bytes": None, "model_bytes_total": None})


# --- one check at a time ----------------------------------------------------------------------


@pytest.fixture
def aws() -> Iterator[ClientFactory]:
    with mock_aws():
        yield ClientFactory(region="us-east-1")


def launch(clients: ClientFactory) -> str:
    """A running instance in moto (the AMI id is not looked up there)."""
    ec2 = clients.client("ec2")
    reservation = ec2.run_instances(
        ImageId="ami-12345678", MinCount=1, MaxCount=1, InstanceType="g5.xlarge"
    )
    return reservation["Instances"][0]["InstanceId"]


def deployment_for(instance_id: str | None, **kw: object) -> Deployment:
    return Deployment(
        name="qwen3vl",
        region="us-east-1",
        instance_type="g5.xlarge",
        instance_id=instance_id,
        secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:qwen3vl-key",
        **kw,  # type: ignore[arg-type]
    )


def test_instance_running_passes_and_stopped_says_start(aws: ClientFactory) -> None:
    instance_id = launch(aws)
    ec2 = aws.client("ec2")
    result = check_instance(deployment_for(instance_id), ec2)
    assert result.ok and result.detail == f"{instance_id} running (g5.xlarge)"
    ec2.stop_instances(InstanceIds=[instance_id])
    result = check_instance(deployment_for(instance_id), ec2)
    assert not result.ok and "stopped" in result.detail
    assert result.hint == "Start it: `qwen3vl-aws start`."


def test_a_terminated_and_vanished_instance_is_a_failed_check(aws: ClientFactory) -> None:
    result = check_instance(deployment_for("i-0123456789abcdef0"), aws.client("ec2"))
    assert not result.ok and result.detail == "i-0123456789abcdef0 no longer exists"


def expect_info(stubber: Stubber, info: list[dict]) -> None:
    stubber.add_response(
        "describe_instance_information",
        {"InstanceInformationList": info},
        {"Filters": [{"Key": "InstanceIds", "Values": ["i-0abc"]}]},
    )


def test_ssm_online_connection_lost_and_unregistered(ssm) -> None:
    client, stubber = ssm
    expect_info(stubber, [{"InstanceId": "i-0abc", "PingStatus": "Online", "AgentVersion": "3.3"}])
    expect_info(stubber, [{"InstanceId": "i-0abc", "PingStatus": "ConnectionLost"}])
    expect_info(stubber, [])
    stubber.add_client_error("describe_instance_information", "AccessDeniedException", "no")
    deployment = deployment_for("i-0abc")
    results = [check_ssm(deployment, client) for _ in range(4)]
    assert [r.ok for r in results] == [True, False, False, False]
    assert results[3].detail.startswith(
        "Asking SSM about the instance: AWS denied DescribeInstanceInformation."
    )
    assert results[0].detail == "Online (agent 3.3)"
    assert results[1].detail.startswith("ConnectionLost")
    assert "ssm:UpdateInstanceInformation" in (results[2].hint or "")
    stubber.assert_no_pending_responses()


def test_bootstrap_check_reports_durations_failure_and_progress() -> None:
    ok = check_bootstrap(Section(0, status_json()))
    assert ok.ok and ok.detail == (
        "ready (packages 42s, model 42s, configure 42s, engine 42s, ready 42s)"
    )
    failed = check_bootstrap(Section(0, status_json(("packages",), failed="model")))
    assert not failed.ok and failed.detail.startswith("stage model failed")
    assert "logs --unit bootstrap" in (failed.hint or "")
    waiting = check_bootstrap(Section(0, status_json(("packages", "model"))))
    assert not waiting.ok and waiting.detail.startswith("at stage model")
    missing = check_bootstrap(Section(1, "cat: status.json: No such file or directory"))
    assert not missing.ok and missing.detail == "no status file yet"


def test_units_check_names_the_unit_that_is_down() -> None:
    assert check_units(Section(0, UNITS_OK)).ok
    down = UNITS_OK.replace(
        "ActiveState=active\nSubState=running", "ActiveState=failed\nSubState=failed", 1
    )
    result = check_units(Section(3, down))
    assert not result.ok and result.detail.startswith("engine failed (failed)")
    assert result.hint == "See why: `qwen3vl-aws logs --unit engine`."


def test_gpu_check() -> None:
    result = check_gpu(Section(0, GPU_OK))
    assert result.ok and result.detail == "NVIDIA A10G 17210/23028 MiB in use"
    broken = check_gpu(Section(9, "NVIDIA-SMI has failed because it couldn't communicate"))
    assert not broken.ok and "NVIDIA driver" in (broken.hint or "")
    assert not check_gpu(Section(0, "")).ok


def test_tiny_png_is_a_real_image() -> None:
    image = Image.open(io.BytesIO(tiny_png()))
    image.load()
    assert image.size == (64, 64) and image.mode == "RGB"


# --- all together -----------------------------------------------------------------------------


#: /metrics of the pinned vLLM (0.32.0, CPU build) after one request, recorded from the rig.
RECORDED_METRICS = (
    Path(__file__).resolve().parents[1]
    / "fixtures/vllm-metrics/vllm-0.32.0-cpu-after-one-request.prom"
)


def stub_tool(bin_dir: Path, name: str, output: str, exit_code: int = 0) -> None:
    (bin_dir / f"{name}.out").write_text(output)
    (bin_dir / name).write_text(f'#!/bin/bash\ncat "{bin_dir}/{name}.out"\nexit {exit_code}\n')
    (bin_dir / name).chmod(0o755)


@pytest.fixture
def instance(tmp_path: Path) -> tuple[LocalChannel, Path]:
    """This machine as the instance: a scratch root with a ready status file, stubbed tools."""
    root, bin_dir = tmp_path / "root", tmp_path / "bin"
    bin_dir.mkdir()
    status = root / STATUS_FILE.lstrip("/")
    status.parent.mkdir(parents=True)
    status.write_text(status_json())
    stub_tool(bin_dir, "systemctl", UNITS_OK)
    stub_tool(bin_dir, "nvidia-smi", GPU_OK)
    stub_tool(bin_dir, "curl", RECORDED_METRICS.read_text())  # the engine's /metrics
    (root / "etc/qwen3vl").mkdir(parents=True)
    (root / "etc/qwen3vl/deploy.env").write_text("ENGINE_PORT='8000'\n")
    env = dict(os.environ, QWEN3VL_ROOT=str(root), PATH=f"{bin_dir}:{os.environ['PATH']}")
    return LocalChannel(env=env), bin_dir


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[FakeGateway]:
    with serve(tmp_path, KEY) as gw:
        yield gw


def pinned_deployment(instance_id: str, gateway: FakeGateway) -> Deployment:
    deployment = deployment_for(instance_id, endpoint=gateway.url + "/v1", transport="ssh")
    deployment.save()
    deployment.cert_path.write_text(gateway.cert_path.read_text())
    return deployment


def failing(results) -> dict[str, str]:
    return {r.name: r.detail for r in results if not r.ok}


def test_all_checks_pass(aws, instance, gateway) -> None:
    channel, _ = instance
    deployment = pinned_deployment(launch(aws), gateway)
    results = run_checks(deployment, aws, channel, api_key=KEY)
    assert failing(results) == {}
    assert [r.name for r in results] == [n if n != "ssm" else "channel" for n in CHECK_NAMES]
    posted = [body for method, _, body in gateway.requests if method == "POST"]
    assert [p["max_tokens"] for p in posted] == [1, 1]
    image_part = posted[1]["messages"][0]["content"][1]
    assert image_part["image_url"]["url"].startswith("data:image/png;base64,")


def test_engine_down_fails_the_unit_and_endpoint_checks(aws, instance, gateway) -> None:
    channel, bin_dir = instance
    stub_tool(
        bin_dir,
        "systemctl",
        UNITS_OK.replace("active\nSubState=running", "inactive\nSubState=dead", 1),
        exit_code=3,
    )
    gateway.engine_up = False
    deployment = pinned_deployment(launch(aws), gateway)
    failed = failing(run_checks(deployment, aws, channel, api_key=KEY))
    assert set(failed) == {"units", "health", "models", "chat", "image-chat"}
    assert failed["health"] == "HTTP 502: the gateway cannot reach the engine"


def test_a_wrong_key_is_reported_as_such(aws, instance, gateway) -> None:
    channel, _ = instance
    deployment = pinned_deployment(launch(aws), gateway)
    results = run_checks(deployment, aws, channel, api_key="sk-qwen-" + "w" * 43)
    failed = failing(results)
    assert failed["models"] == "HTTP 401: the key is wrong"
    assert failed["chat"] == failed["image-chat"] == "not attempted: the key is wrong"


def test_a_certificate_mismatch_refuses_the_endpoint(aws, instance, gateway, tmp_path) -> None:
    channel, _ = instance
    deployment = pinned_deployment(launch(aws), gateway)
    other, _ = self_signed(tmp_path, "impostor")
    deployment.cert_path.write_text(other.read_text())
    failed = failing(run_checks(deployment, aws, channel, api_key=KEY))
    assert failed["tls"].startswith("certificate mismatch: the endpoint is not trusted")
    assert set(failed) == {"tls", "health", "models", "chat", "image-chat"}
    assert gateway.requests == []  # not one HTTP request (and so no key) went out


def test_a_stopped_instance_attempts_nothing_else(aws, instance, gateway) -> None:
    channel, _ = instance
    instance_id = launch(aws)
    aws.client("ec2").stop_instances(InstanceIds=[instance_id])
    results = run_checks(pinned_deployment(instance_id, gateway), aws, channel, api_key=KEY)
    assert [r.attempted for r in results] == [True] + [False] * (len(CHECK_NAMES) - 1)
    assert gateway.requests == []


def test_health_command_json_and_exit_code(aws, instance, gateway) -> None:
    channel, bin_dir = instance
    deployment = pinned_deployment(launch(aws), gateway)
    runner = CliRunner()
    result = runner.invoke(
        cli, ["health", "--json", "--key-stdin"], input=KEY + "\n", obj=app_with_channel(channel)
    )
    assert result.exit_code == 0, result.output
    doc = validate_output("health", result.stdout)
    assert doc["ok"] is True and doc["deployment"] == deployment.name
    assert KEY not in result.output

    stub_tool(bin_dir, "nvidia-smi", "NVIDIA-SMI has failed\n", exit_code=9)
    result = runner.invoke(cli, ["health", "--key-stdin"], input=KEY, obj=app_with_channel(channel))
    assert result.exit_code == 7
    assert "1 of 11 checks failed: gpu." in result.output
    assert "nvidia-smi failed" in result.output


def test_the_key_comes_from_secrets_manager_once_the_endpoint_is_trusted(
    aws, instance, gateway
) -> None:
    channel, _ = instance
    secret = aws.client("secretsmanager").create_secret(Name="qwen3vl-key", SecretString=KEY)
    deployment = pinned_deployment(launch(aws), gateway)
    deployment.secret_arn = secret["ARN"]
    assert failing(run_checks(deployment, aws, channel, api_key=None)) == {}


def test_an_unreadable_key_skips_only_the_keyed_checks(aws, instance, gateway) -> None:
    channel, _ = instance
    deployment = pinned_deployment(launch(aws), gateway)  # its secret does not exist
    failed = failing(run_checks(deployment, aws, channel, api_key=None))
    assert set(failed) == {"models", "chat", "image-chat"}
    assert failed["models"].startswith("not attempted: no API key to send (Reading the current key")


def test_deep_adds_the_engines_memory_and_whole_process_gpu_use(aws, instance, gateway) -> None:
    """--deep: the engine log (journalctl) and nvidia-smi's compute processes against the plan.
    A process within 3% of the card fails the check; the table names it."""
    channel, bin_dir = instance
    from qwen3vl_aws.serving.planner import plan_serving

    card = plan_serving("g5.xlarge").gpu.memory_mib
    stub_tool(bin_dir, "journalctl", "GPU KV cache size: 10,400 tokens\n")
    (bin_dir / "nvidia-smi").write_text(
        "#!/bin/bash\n"
        f'if [[ $* == *compute-apps* ]]; then echo "4242, python3, {card - 100}"; '
        f"else printf '{GPU_OK}'; fi\n"
    )
    pinned_deployment(launch(aws), gateway)
    result = CliRunner().invoke(
        cli, ["health", "--deep", "--json", "--key-stdin"], input=KEY, obj=app_with_channel(channel)
    )
    assert result.exit_code == 7, result.output
    doc = validate_output("health", result.stdout)
    checks = {c["name"]: c for c in doc["checks"]}
    assert [c["name"] for c in doc["checks"]][-2:] == ["engine-memory", "gpu-processes"]
    assert checks["engine-memory"]["ok"] and checks["engine-memory"]["data"]["kv_tokens"] == 10_400
    assert not checks["gpu-processes"]["ok"]
    assert checks["gpu-processes"]["data"]["used_mib"] == card - 100
    assert "1 of 13 checks failed: gpu-processes." in result.output

    result = CliRunner().invoke(cli, ["health", "--key-stdin"], input=KEY)
    assert "engine-memory" not in result.output  # only with --deep
