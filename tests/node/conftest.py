"""Node-layer fixtures: a tiny Qwen3-VL model and one real vLLM server shared by the session.

Starting vLLM costs ~30 s and ~2 GB, so the server is started once per session; every test that
needs it (directly or behind the gateway) shares it. The rig itself lives in the top-level ``rig``
package (``make demo`` runs it too); these fixtures only turn its errors into test failures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from qwen3vl_aws.keys.keygen import generate_key

from rig.engine_unit import engine_settings, render_engine, served_engine_env
from rig.gateway import Gateway, GatewayRigError, instance_roots, run_gateway
from rig.net import free_port
from rig.vllm import (
    RIG_INSTANCE_TYPE,
    VllmRigError,
    VllmServer,
    build_tiny_model,
    cpu_engine_args,
    start_vllm,
)

if TYPE_CHECKING:
    from qwen3vl_aws.serving.planner import ServingPlan


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory of a tiny random Qwen3-VL model (config, safetensors, tokenizer, processor)."""
    try:
        return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen3-vl"))
    except VllmRigError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def serving_plan() -> ServingPlan:
    """The serving plan the instance's unit renders for RIG_INSTANCE_TYPE."""
    from qwen3vl_aws.serving.planner import plan_serving

    return plan_serving(RIG_INSTANCE_TYPE)


@pytest.fixture(scope="session")
def instance_root() -> Iterator[Callable[[str], Path]]:
    """``instance_root(name)``: a scratch root laid out like the instance's / (mode 0755, so
    the gateway's unprivileged workers reach their temp dirs, as on the instance)."""
    with instance_roots() as make:
        yield make


@pytest.fixture(scope="session")
def vllm_server(
    tiny_model: Path,
    serving_plan: ServingPlan,
    tmp_path_factory: pytest.TempPathFactory,
    instance_root: Callable[[str], Path],
) -> Iterator[VllmServer]:
    """A real vLLM OpenAI server on 127.0.0.1 serving the tiny model with the plan's flags, in
    the environment the engine unit gets (engine.env rendered by the real bootstrap: the plan's
    pixel cap, the media guard, no redirects).

    Has `.base_url`, `.port`, `.served_model_name`, `.model_dir` and `.log_path`.
    """
    log_path = tmp_path_factory.mktemp("vllm") / "vllm.log"
    port = free_port()
    root = instance_root("engine")
    settings = engine_settings(
        serving_plan.model_id,
        port,
        " ".join(cpu_engine_args(serving_plan.flags)),
        MAX_IMAGE_PIXELS=str(serving_plan.max_decoded_pixels),  # what apply passes Terraform
        MODEL_DIR=str(tiny_model),
    )
    try:
        render_engine(root, settings)
        with start_vllm(
            tiny_model,
            port,
            serving_plan.flags,
            serving_plan.model_id,
            log_path=log_path,
            env=served_engine_env(root),
        ) as server:
            yield server
    except (VllmRigError, GatewayRigError) as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def gateway(
    vllm_server: VllmServer, moto_server: str, instance_root: Callable[[str], Path]
) -> Iterator[Gateway]:
    """Real nginx with the rendered gateway config in front of ``vllm_server``, over TLS with
    the certificate the bootstrap made, the key file written by the real key sync script.

    Has ``base_url``, ``cert_path``, ``key_file``, ``current_key`` and ``set_keys(current,
    pending=None)`` (puts the key(s) in the emulator's secret and runs qwen3vl-keysync).
    """
    root = instance_root("instance-root")
    try:
        with run_gateway(
            root, vllm_server.port, vllm_server.served_model_name, moto_server, generate_key()
        ) as running:
            yield running
    except GatewayRigError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def engineless_gateway(moto_server: str, tmp_path: Path) -> Iterator[Gateway]:
    """The real gateway in front of a dead upstream: an engine that is stopped or still loading.

    Nothing listens on its engine port, so whatever the gateway answers it answers by itself.
    Function-scoped: every test starts with fresh rate-limit counters and logs.
    """
    try:
        with run_gateway(
            tmp_path / "instance-root", free_port(), "qwen3-vl", moto_server, generate_key()
        ) as running:
            yield running
    except GatewayRigError as exc:
        pytest.fail(str(exc), pytrace=False)
