"""The engine as its unit starts it: engine.env rendered by the real bootstrap, read the way
systemd reads an EnvironmentFile, and the unit's ExecStart (qwen3vl-engine) launching real vLLM
(the CPU build standing in for the instance's engine venv) with the serving plan's flags."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rig.engine_unit import engine_settings, render_engine, start_engine_unit
from rig.gateway import GatewayRigError, run_script
from rig.net import free_port
from rig.vllm import VllmRigError, cpu_engine_args

pytestmark = [pytest.mark.node, pytest.mark.slow]


@pytest.fixture(scope="module")
def unit_engine(tiny_model: Path, serving_plan, tmp_path_factory) -> Iterator[tuple[Path, int]]:
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
    try:
        render_engine(root, settings)
        with start_engine_unit(root, root / "engine.log"):
            yield root, port
    except (VllmRigError, GatewayRigError) as exc:
        pytest.fail(str(exc), pytrace=False)


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
