"""The serving plan as each engine's flags (pure functions; SGLang's own parser checks the
translation in tests/sglang/)."""

from __future__ import annotations

import json
import math
import re

import pytest
from qwen3vl_aws.aws.catalog import instance_types
from qwen3vl_aws.serving.engine_flags import (
    ENGINES,
    engine_args,
    mem_fraction_static,
    sglang_flags,
    translation_note,
)
from qwen3vl_aws.serving.model_profile import load_profile
from qwen3vl_aws.serving.planner import plan_serving

#: The userdata module's engine_args contract (terraform/modules/userdata/variables.tf).
ENGINE_ARG = re.compile(r"^[^\s'\\$`]+$")
RENDERED_BY_BOOTSTRAP = {
    "--model", "--model-path", "--host", "--port", "--served-model-name", "--api-key",
    "--allowed-media-domains",
}  # fmt: skip


def values(flags: list[str]) -> dict[str, str | None]:
    """``--flag value`` pairs and bare ``--switch`` flags as a dict (switches map to None)."""
    found: dict[str, str | None] = {}
    for i, arg in enumerate(flags):
        if arg.startswith("--"):
            following = flags[i + 1] if i + 1 < len(flags) else "--"
            found[arg] = None if following.startswith("--") else following
    return found


def test_vllm_gets_the_plans_own_flags():
    plan = plan_serving("g6.xlarge")
    assert engine_args(plan, "vllm") == plan.flags
    assert engine_args(plan, "vllm") is not plan.flags  # a copy: the request may be changed


def test_unknown_engine_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown engine 'tgi'"):
        engine_args(plan_serving("g5.xlarge"), "tgi")


def test_single_gpu_plan_in_sglang_terms():
    plan = plan_serving("g5.xlarge")
    flags = values(sglang_flags(plan))
    assert flags == {
        "--tp-size": "1",
        "--context-length": str(plan.max_model_len),
        "--mem-fraction-static": f"{mem_fraction_static(plan):g}",
        "--max-running-requests": str(plan.max_num_seqs),
        "--chunked-prefill-size": str(plan.max_num_batched_tokens),
        "--limit-mm-data-per-request": json.dumps(
            {"image": plan.max_images_per_prompt, "video": 0}, separators=(",", ":")
        ),
        "--mm-process-config": json.dumps(
            {
                "image": {
                    "size": {
                        "longest_edge": plan.largest_image_pixels,
                        "shortest_edge": load_profile(plan.model_id).min_pixels,
                    }
                }
            },
            separators=(",", ":"),
        ),
    }


def test_multi_gpu_plan_runs_the_encoder_data_parallel():
    plan = plan_serving("g6.12xlarge")
    flags = values(sglang_flags(plan))
    assert flags["--tp-size"] == "4"
    assert "--mm-enable-dp-encoder" in flags and flags["--mm-enable-dp-encoder"] is None
    # the whole preprocessor range fits here: no image cap, as for vLLM
    assert plan.largest_image_pixels == load_profile(plan.model_id).max_pixels
    assert "--mm-process-config" not in flags


def test_video_lifts_the_video_limit_and_overrides_carry_over():
    plan = plan_serving("g6e.12xlarge", video=True, max_num_seqs=32, max_num_batched_tokens=2048)
    flags = values(sglang_flags(plan))
    # the image cap stays; the video limit is lifted
    assert json.loads(flags["--limit-mm-data-per-request"]) == {"image": plan.max_images_per_prompt}
    assert (flags["--max-running-requests"], flags["--chunked-prefill-size"]) == ("32", "2048")


def test_static_fraction_is_weights_plus_kv_cache_over_gpu_memory():
    plan = plan_serving("g6e.xlarge", gpu_memory_utilization=0.8)
    exact = (plan.reserves.weights + plan.kv_cache_bytes_per_gpu) / plan.gpu.memory_bytes
    fraction = mem_fraction_static(plan)
    assert fraction == math.floor(exact * 100) / 100
    # activations, the vision encoder and the runtime stay outside SGLang's static pools
    assert fraction < plan.gpu_memory_utilization
    less = mem_fraction_static(plan_serving("g6e.xlarge", gpu_memory_utilization=0.7))
    assert less < fraction


@pytest.mark.parametrize("instance_type", sorted(instance_types()))
@pytest.mark.parametrize("engine", ENGINES)
def test_every_plans_flags_fit_the_engine_args_contract(instance_type: str, engine: str):
    for arg in engine_args(plan_serving(instance_type), engine):
        assert ENGINE_ARG.match(arg), arg
        assert arg.split("=", 1)[0] not in RENDERED_BY_BOOTSTRAP


def test_translation_note_only_for_sglang():
    plan = plan_serving("g5.xlarge")
    assert translation_note(plan, "vllm") is None
    note = translation_note(plan, "sglang")
    assert note is not None and f"--mem-fraction-static {mem_fraction_static(plan):g}" in note
