"""The engine as its unit starts it: engine.env rendered by the real bootstrap, read the way
systemd reads an EnvironmentFile, and the unit's ExecStart (qwen3vl-engine) launching real vLLM
(the CPU build standing in for the instance's engine venv) with the serving plan's flags."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rig.engine_unit import engine_settings, unit_environment
from rig.gateway import install_instance, run_script
from rig.net import free_port
from rig.vllm import VLLM_VENV, cpu_engine_args, log_tail, vllm_python

pytestmark = [pytest.mark.node, pytest.mark.slow]

START_TIMEOUT_S = 300.0


@pytest.fixture(scope="module")
def unit_engine(tiny_model: Path, serving_plan, tmp_path_factory) -> Iterator[tuple[Path, int]]:
    vllm_python()  # fails with how to create the CPU venv when it is missing
    root = tmp_path_factory.mktemp("engine-unit-root")
    port = free_port()
    settings = engine_settings(
        serving_plan.model_id,
        port,
        " ".join(cpu_engine_args(serving_plan.flags)),
        ALLOWED_MEDIA_DOMAINS="upload.wikimedia.org",
        MAX_IMAGE_PIXELS=str(serving_plan.max_decoded_pixels),
        MODEL_DIR=str(tiny_model),
    )
    install_instance(root, settings)
    # The instance's engine venv is the CPU build's venv here.
    (root / "opt/qwen3vl/engine").symlink_to(VLLM_VENV, target_is_directory=True)
    rendered = run_script(root, "qwen3vl-bootstrap", "render")
    assert rendered.returncode == 0, rendered.stderr
    log_path = root / "engine.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(root / "opt/qwen3vl/bin/qwen3vl-engine")],
            env=unit_environment(root),
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"the engine exited ({process.returncode}):\n{log_tail(log_path)}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the engine was not healthy in time:\n{log_tail(log_path)}")
            time.sleep(0.5)
        yield root, port
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def test_engine_serves_on_loopback_with_the_rendered_flags(unit_engine, serving_plan):
    _, port = unit_engine
    models = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=30).json()["data"]
    assert [m["id"] for m in models] == [serving_plan.model_id]
    # --max-model-len from the plan reached the engine through engine.env.
    max_len = serving_plan.flags[serving_plan.flags.index("--max-model-len") + 1]
    assert models[0]["max_model_len"] == int(max_len)


def test_engine_refuses_media_urls_outside_the_allowed_domains(unit_engine, serving_plan):
    _, port = unit_engine
    body = {
        "model": serving_plan.model_id,
        "max_tokens": 2,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "http://169.254.169.254/x.png"}},
                    {"type": "text", "text": "What is this?"},
                ],
            }
        ],
    }
    response = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 400, response.text
    assert "allowed domains" in response.text


def test_bootstrap_ready_check_passes_against_it(unit_engine):
    root, _ = unit_engine
    result = run_script(root, "qwen3vl-bootstrap", "ready", env={"READY_TIMEOUT": "60"})
    assert result.returncode == 0, result.stdout + result.stderr
