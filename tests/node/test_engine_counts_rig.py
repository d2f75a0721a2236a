"""What reaches the real engine, counted by the engine itself: the bootstrap's warm-up before
"ready", and a ``bench`` run through the real gateway. Both are checked against vLLM's own
``/metrics`` counters (and, for bench, the gateway's access log) for the same run.

Kept small: the CPU is slow and shared.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from qwen3vl_aws.cli import cli
from qwen3vl_aws.deployment import Deployment
from qwen3vl_aws.instance.engine_metrics import EngineCounters, engine_counters

from rig.gateway import install_instance, run_script
from rig.wait import caught_up

pytestmark = [pytest.mark.slow, pytest.mark.node]

WARMUP_IMAGE = (640, 480)  # the bootstrap's warm-up picture
TOKEN_PIXELS = 32  # Qwen3-VL: 16-pixel patches merged 2x2 into one visual token


def counters(vllm_server) -> EngineCounters:
    return engine_counters(httpx.get(f"{vllm_server.base_url}/metrics", timeout=30).text)


def test_ready_sends_the_warm_up_before_it_returns(vllm_server, tmp_path: Path) -> None:
    """`qwen3vl-bootstrap ready` against the real engine: when it returns (the point the
    bootstrap declares ready), the engine has answered the readiness chat and both warm-ups."""
    root = tmp_path / "instance"
    install_instance(
        root,
        {
            "ENGINE": "vllm",
            "MODEL_ID": "Qwen/Qwen3-VL-8B-Instruct",
            "SERVED_MODEL_NAME": vllm_server.served_model_name,
            "PUBLIC_HOST": "127.0.0.1",
            "ENGINE_PORT": str(vllm_server.port),
            "CACHE_DIR": str(root / "cache"),
        },
    )
    before = counters(vllm_server)
    result = run_script(root, "qwen3vl-bootstrap", "ready")
    assert result.returncode == 0, result.stdout + result.stderr
    sent = caught_up(lambda: counters(vllm_server) - before, lambda sent: sent.requests >= 3)
    assert sent.requests == 3  # readiness, text warm-up, image warm-up
    image_tokens = (WARMUP_IMAGE[0] // TOKEN_PIXELS) * (WARMUP_IMAGE[1] // TOKEN_PIXELS)
    assert sent.prompt_tokens > image_tokens  # the picture went through the vision tower
    assert "warm-up: text chat answered" in result.stdout
    assert "warm-up: image chat answered" in result.stdout


def access_lines(gateway) -> list[str]:
    log = gateway.root / "var/log/qwen3vl/gateway-access.log"
    return log.read_text().splitlines() if log.exists() else []


def test_bench_counts_match_the_gateway_log_and_the_engines_counters(
    gateway, vllm_server, tmp_path: Path
) -> None:
    """`bench --json` through the real gateway (pinned TLS, the real key): the requests it
    reports are the chat lines nginx logged, and its token totals are vLLM's counters."""
    deployment = Deployment(
        name="qwen3vl",
        region="us-east-1",
        instance_type="g5.xlarge",
        endpoint=f"{gateway.base_url}/v1",
        port=gateway.port,
        served_model_name=gateway.served_model_name,
    )
    deployment.save()
    deployment.cert_path.write_bytes(gateway.cert_path.read_bytes())
    logged_before = len(access_lines(gateway))
    before = counters(vllm_server)
    args = ["bench", "--concurrency", "1,2", "--requests", "2", "--warmup", "1"]
    args += ["--prompt-tokens", "20-40", "--output-tokens", "4", "--images", "1"]
    args += ["--image-size", "320x240", "--json", "--key-stdin"]
    result = CliRunner().invoke(cli, args, input=gateway.current_key)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    totals = report["totals"]
    assert totals["requests"] == totals["succeeded"] == 1 + 2 + 2
    chats = caught_up(
        lambda: [
            line
            for line in access_lines(gateway)[logged_before:]
            if '"POST /v1/chat/completions" 200 ' in line
        ],
        lambda lines: len(lines) >= totals["requests"],
    )
    assert len(chats) == totals["requests"], access_lines(gateway)[logged_before:]
    engine = caught_up(
        lambda: counters(vllm_server) - before,
        lambda sent: sent.requests >= totals["succeeded"],
    )
    assert engine.requests == totals["succeeded"]
    assert engine.prompt_tokens == totals["prompt_tokens"]
    assert engine.generation_tokens == totals["completion_tokens"] == 4 * totals["requests"]
    assert all(level["ttft_p50_s"] is not None for level in report["levels"])
