"""Node-layer fixtures: a tiny Qwen3-VL model and one real vLLM server shared by the session.

Starting vLLM costs ~30 s and ~2 GB, so the server is started once per session; every test that
needs it (directly or behind the gateway) shares it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from gateway_rig import gateway  # noqa: F401  (fixture: nginx gateway in front of vllm_server)
from vllm_rig import VllmRigError, VllmServer, free_port, start_vllm, vllm_python

if TYPE_CHECKING:
    from qwen3vl_aws.planner import ServingPlan

TINY_MODEL_SCRIPT = Path(__file__).resolve().parent / "tiny_model.py"
TINY_MODEL_SEED = 0
#: The instance type whose serving plan gives the flags the rig's server runs with.
RIG_INSTANCE_TYPE = "g5.xlarge"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory of a tiny random Qwen3-VL model (config, safetensors, tokenizer, processor)."""
    try:
        python = vllm_python()
    except VllmRigError as exc:
        pytest.fail(str(exc), pytrace=False)
    out_dir = tmp_path_factory.mktemp("tiny-qwen3-vl")
    result = subprocess.run(
        [str(python), str(TINY_MODEL_SCRIPT), str(out_dir), "--seed", str(TINY_MODEL_SEED)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"building the tiny model failed:\n{result.stderr[-4000:]}", pytrace=False)
    return out_dir


@pytest.fixture(scope="session")
def serving_plan() -> ServingPlan:
    """The serving plan the instance's unit renders for RIG_INSTANCE_TYPE."""
    from qwen3vl_aws.planner import plan_serving

    return plan_serving(RIG_INSTANCE_TYPE)


@pytest.fixture(scope="session")
def vllm_server(
    tiny_model: Path, serving_plan: ServingPlan, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VllmServer]:
    """A real vLLM OpenAI server on 127.0.0.1 serving the tiny model with the plan's flags.

    Has `.base_url`, `.port`, `.served_model_name`, `.model_dir` and `.log_path`.
    """
    log_path = tmp_path_factory.mktemp("vllm") / "vllm.log"
    try:
        with start_vllm(
            tiny_model, free_port(), serving_plan.flags, serving_plan.model_id, log_path=log_path
        ) as server:
            yield server
    except VllmRigError as exc:
        pytest.fail(str(exc), pytrace=False)
