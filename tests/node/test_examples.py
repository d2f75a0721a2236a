"""examples/client.py, as a user runs it, against the real gateway and vLLM over verified TLS."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

pytestmark = [pytest.mark.slow, pytest.mark.node]

CLIENT = Path(__file__).resolve().parents[2] / "examples" / "client.py"


def run_client(gateway, *args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "QWEN3VL_ENDPOINT": f"{gateway.base_url}/v1",
        "QWEN3VL_CACERT": str(gateway.cert_path),
        "QWEN3VL_MODEL": gateway.served_model_name,
        "QWEN3VL_API_KEY": key if key is not None else gateway.current_key,
    }
    return subprocess.run(
        [sys.executable, str(CLIENT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("mode", ["text", "stream"])
def test_text_and_streamed_chat(gateway, mode: str) -> None:
    result = run_client(gateway, mode, "Say hello.")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip(), "the model's answer was empty"


def test_image_chat(gateway, tmp_path: Path) -> None:
    picture = tmp_path / "picture.png"
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), (200, 40, 40)).save(buffer, format="PNG")
    picture.write_bytes(buffer.getvalue())
    result = run_client(gateway, "image", str(picture), "What colour is this?")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_a_wrong_key_is_refused(gateway) -> None:
    result = run_client(gateway, "text", "Hello", key="sk-qwen-" + "x" * 43)
    assert result.returncode != 0
    assert "401" in result.stderr
