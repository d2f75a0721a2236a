"""``wait`` and ``health`` against the node rig: real nginx (the rendered gateway config, the
bootstrap's own certificate, keys from the real keysync) in front of real vLLM serving the tiny
Qwen3-VL model. The "instance" is this machine under a scratch ``QWEN3VL_ROOT``, reached through
:class:`LocalChannel`; its EC2 record is in moto.

systemd and a GPU are not here: ``systemctl`` and ``nvidia-smi`` are the rig's stand-ins
(rig/standins.py). The bootstrap's ``all`` mode installs packages and cannot run here, so the
status file is written as its ``status`` helper writes it after a completed run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from qwen3vl_aws.aws.clients import ClientFactory
from qwen3vl_aws.cli import cli
from qwen3vl_aws.deployment import Deployment
from qwen3vl_aws.instance.engine_metrics import DRIFT_LIMIT
from qwen3vl_aws.instance.health import CHECK_NAMES, run_checks
from qwen3vl_aws.instance.readiness import wait_until_ready
from qwen3vl_aws.instance.status import STATUS_FILE
from qwen3vl_aws.instance.summary import kv_cache_report
from qwen3vl_aws.serving.plan_record import plan_summary
from qwen3vl_aws.serving.planner import plan_serving

from rig.cli import app_with_channel
from rig.gateway import Gateway, GatewayRigError, free_port, run_gateway
from rig.local import LocalChannel
from rig.standins import COMPUTE_APP_LINE, finished_status, install_standins, rig_env
from rig.vllm import RIG_INSTANCE_TYPE

pytestmark = [pytest.mark.slow, pytest.mark.node]

KEY = "sk-qwen-health-rig-" + "h" * 32


def start_rig(root: Path, engine_port: int, served: str, moto: str) -> Iterator[Gateway]:
    try:
        with run_gateway(root, engine_port, served, moto, KEY) as gateway:
            status = root / STATUS_FILE.lstrip("/")
            status.parent.mkdir(parents=True, exist_ok=True)
            status.write_text(finished_status())
            yield gateway
    except GatewayRigError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def gateway(vllm_server, moto_server, instance_root) -> Iterator[Gateway]:
    """The rig: nginx in front of the session's vLLM server."""
    root = instance_root("health-rig")
    yield from start_rig(root, vllm_server.port, vllm_server.served_model_name, moto_server)


@pytest.fixture(scope="module")
def gateway_engine_down(vllm_server, moto_server, instance_root) -> Iterator[Gateway]:
    """A second rig whose engine port has nothing listening: vLLM stopped."""
    root = instance_root("health-rig-engine-down")
    yield from start_rig(root, free_port(), vllm_server.served_model_name, moto_server)


def channel_for_rig(gateway: Gateway, tmp_path: Path, engine_log: Path | None = None):
    bin_dir = install_standins(tmp_path / "stand-ins")
    return LocalChannel(env=rig_env(gateway.root, bin_dir, engine_log))


def deployment_of(gateway: Gateway, aws_env: str) -> tuple[Deployment, ClientFactory]:
    clients = ClientFactory(region="us-east-1")
    instance_id = clients.client("ec2").run_instances(
        ImageId="ami-12345678", MinCount=1, MaxCount=1, InstanceType="g5.xlarge"
    )["Instances"][0]["InstanceId"]
    deployment = Deployment(
        name="qwen3vl",
        region="us-east-1",
        instance_type="g5.xlarge",
        instance_id=instance_id,
        endpoint=f"{gateway.base_url}/v1",
        port=gateway.port,
        transport="ssh",
        served_model_name=gateway.served_model_name,
    )
    deployment.save()
    return deployment, clients


def waited(gateway: Gateway, aws_env: str, tmp_path: Path):
    """A deployment of the rig after `wait`: certificate fetched over the channel and pinned."""
    from rich.console import Console

    deployment, clients = deployment_of(gateway, aws_env)
    channel = channel_for_rig(gateway, tmp_path)
    wait_until_ready(
        deployment, clients, channel, timeout=300, console=Console(stderr=True), api_key=KEY
    )
    assert deployment.cert_path.read_bytes() == gateway.cert_path.read_bytes()
    return deployment, clients, channel


def failing(results) -> dict[str, str]:
    return {r.name: r.detail for r in results if not r.ok}


def test_health_passes_with_a_full_table(gateway, aws_env, tmp_path) -> None:
    _, _, channel = waited(gateway, aws_env, tmp_path)
    result = CliRunner().invoke(
        cli,
        ["health", "--key-stdin"],
        input=KEY,
        env={"COLUMNS": "200"},
        obj=app_with_channel(channel),
    )
    print(result.output)  # the full table, for the record (pytest -s)
    assert result.exit_code == 0, result.output
    for name in (n if n != "ssm" else "channel" for n in CHECK_NAMES):
        assert f" {name} " in result.output
    # kv-cache passes, with a warning when the CPU engine's cache is far from the GPU plan's
    assert result.output.count("pass") + result.output.count("warn") >= len(CHECK_NAMES)
    assert "FAIL" not in result.output and KEY not in result.output


def test_with_vllm_stopped_the_right_checks_fail(gateway_engine_down, aws_env, tmp_path) -> None:
    deployment, clients = deployment_of(gateway_engine_down, aws_env)
    deployment.cert_path.write_bytes(gateway_engine_down.cert_path.read_bytes())
    channel = channel_for_rig(gateway_engine_down, tmp_path)
    failed = failing(run_checks(deployment, clients, channel, api_key=KEY))
    assert set(failed) == {"units", "kv-cache", "health", "models", "chat", "image-chat"}
    assert failed["units"].startswith("engine failed (failed)")
    assert failed["kv-cache"].startswith("the engine's /metrics did not answer on loopback")
    assert failed["health"] == "HTTP 503: the gateway cannot reach the engine"


def test_a_wrong_key_says_the_key_is_wrong(gateway, aws_env, tmp_path) -> None:
    deployment, clients, channel = waited(gateway, aws_env, tmp_path)
    results = run_checks(deployment, clients, channel, api_key="sk-qwen-wrong-" + "w" * 32)
    failed = failing(results)
    assert set(failed) == {"models", "chat", "image-chat"}
    assert failed["models"] == "HTTP 401: the key is wrong"


def test_a_certificate_mismatch_refuses_the_endpoint(
    gateway, gateway_engine_down, aws_env, tmp_path
) -> None:
    deployment, clients, channel = waited(gateway, aws_env, tmp_path)
    # Pin another instance's certificate (the second rig's bootstrap made its own).
    deployment.cert_path.write_bytes(gateway_engine_down.cert_path.read_bytes())
    results = run_checks(deployment, clients, channel, api_key=KEY)
    failed = failing(results)
    assert failed["tls"].startswith("certificate mismatch: the endpoint is not trusted")
    assert set(failed) == {"tls", "health", "models", "chat", "image-chat"}
    assert all(
        failed[n] == "not attempted: the endpoint is not trusted (see tls)"
        for n in ("health", "models", "chat", "image-chat")
    )


# --- the engine against the plan -----------------------------------------------------------


def logged_kv_tokens(log: Path) -> int:
    """The KV capacity vLLM printed at start-up (``CPU KV cache size: N tokens``)."""
    return int(re.search(r"KV cache size: ([\d,]+) tokens", log.read_text())[1].replace(",", ""))


def by_name(results) -> dict:
    return {r.name: r for r in results}


def test_kv_cache_and_deep_checks_read_the_real_engine(
    gateway, vllm_server, aws_env, tmp_path
) -> None:
    """/metrics of the real vLLM, read on the "instance" over the channel, beside the plan;
    --deep reads its log (journalctl stand-in) and nvidia-smi's compute processes (stand-in)."""
    deployment, clients, _ = waited(gateway, aws_env, tmp_path)
    channel = channel_for_rig(gateway, tmp_path, vllm_server.log_path)
    checks = by_name(run_checks(deployment, clients, channel, api_key=KEY, deep=True))
    engine_tokens = logged_kv_tokens(vllm_server.log_path)
    kv = checks["kv-cache"]
    assert kv.ok, kv.detail
    assert kv.data["engine_tokens"] == engine_tokens
    assert kv.data["planned_tokens"] == plan_serving(RIG_INSTANCE_TYPE).kv_tokens
    drift = (engine_tokens - kv.data["planned_tokens"]) / kv.data["planned_tokens"]
    assert kv.warning is (abs(drift) > DRIFT_LIMIT) and (kv.hint is not None) is kv.warning
    memory = checks["engine-memory"]
    assert memory.ok and memory.data["kv_tokens"] == engine_tokens
    processes = checks["gpu-processes"]
    assert processes.ok
    assert processes.data["used_mib"] == int(COMPUTE_APP_LINE.split(",")[2])

    # status's kv_cache is the same comparison, over its own round trip
    assert kv_cache_report(deployment, lambda: channel) == kv.data


def test_a_plan_close_to_the_engine_gives_no_warning(gateway, aws_env, tmp_path) -> None:
    deployment, clients, channel = waited(gateway, aws_env, tmp_path)
    engine_tokens = by_name(run_checks(deployment, clients, channel, api_key=KEY))["kv-cache"]
    engine_tokens = engine_tokens.data["engine_tokens"]
    for planned, warned in ((round(engine_tokens * 1.1), False), (engine_tokens * 2, True)):
        summary = plan_summary(plan_serving(RIG_INSTANCE_TYPE))
        deployment.extra["plan"] = {**summary, "kv_tokens": planned}
        kv = by_name(run_checks(deployment, clients, channel, api_key=KEY))["kv-cache"]
        assert kv.ok and kv.warning is warned, kv.detail
        assert kv.data["plan_source"] == "plan recorded at apply"
