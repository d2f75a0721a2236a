"""The tiny model served by the real CPU vLLM straight from the emulated S3 model cache.

The cache is filled by the instance's own qwen3vl-modelcache from the rig's model directory; vLLM
then takes config, tokenizer and weights from ``s3://`` through the real Run:ai Model Streamer
(S3 endpoint from AWS_ENDPOINT_URL, the hub offline), and the answer comes through the real
gateway. (The fill under the instance role with IAM enforced: tests/integration/test_model_cache.)
"""

from __future__ import annotations

import json
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from qwen3vl_aws.keys.keygen import generate_key

from rig import modelcache
from rig.emulator import moto_client
from rig.gateway import run_gateway
from rig.net import free_port
from rig.streamer import loader_flags, streamer_env
from rig.vllm import VllmRigError, VllmServer, start_vllm

if TYPE_CHECKING:
    from qwen3vl_aws.serving.planner import ServingPlan

pytestmark = [pytest.mark.node, pytest.mark.slow]

REVISION = "0" * 40


@pytest.fixture(scope="module")
def cached_model(tiny_model: Path, moto_server: str) -> str:
    """The tiny model filled into a fresh cache bucket; returns its s3:// prefix."""
    client = moto_client("s3", moto_server)
    bucket = f"qwen3vl-models-rig-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    url = f"s3://{bucket}/models/tiny/{REVISION}"
    modelcache.load().fill(client, tiny_model, url)
    return url


@pytest.fixture(scope="module")
def streamed(
    cached_model: str,
    moto_server: str,
    serving_plan: ServingPlan,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[VllmServer, Path]]:
    work = tmp_path_factory.mktemp("streamed")
    assets = work / "assets"
    try:
        with start_vllm(
            cached_model,
            free_port(),
            [*serving_plan.flags, *loader_flags(concurrency=4)],
            serving_plan.model_id,
            log_path=work / "vllm.log",
            env=streamer_env(moto_server, assets),
        ) as server:
            yield server, assets
    except VllmRigError as exc:
        pytest.fail(str(exc), pytrace=False)


def test_weights_config_and_tokenizer_come_from_s3(streamed: tuple[VllmServer, Path]) -> None:
    server, assets = streamed
    log = server.log_path.read_text()
    assert "Loading safetensors using Runai Model Streamer: 100%" in log
    (pulled,) = (assets / "model_streamer").iterdir()
    names = {p.name for p in pulled.iterdir()}
    assert {"config.json", "tokenizer.json", "tokenizer_config.json"} <= names
    assert "model.safetensors" not in names  # streamed, never written to disk


def test_streamed_model_answers_through_the_gateway(
    streamed: tuple[VllmServer, Path], moto_server: str, tmp_path: Path
) -> None:
    server, _ = streamed
    secrets = moto_client("secretsmanager", moto_server)
    key = generate_key()
    arn = secrets.create_secret(Name=f"qwen3vl/streamer-{uuid.uuid4().hex[:8]}", SecretString=key)
    with run_gateway(
        tmp_path / "root", server.port, server.served_model_name, moto_server, secret_arn=arn["ARN"]
    ) as gateway:
        context = ssl.create_default_context(cafile=str(gateway.cert_path))
        response = httpx.post(
            f"{gateway.base_url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={
                "model": server.served_model_name,
                "messages": [{"role": "user", "content": "Hi"}],
                "max_tokens": 3,
                "temperature": 0,
            },
            verify=context,
            timeout=120,
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["usage"]["completion_tokens"] == 3, json.dumps(body)
