"""The SGLang translation of serving plans, parsed by the pinned SGLang's own argument parser.

Each plan's flags go, after the arguments the bootstrap renders itself, through the parser that
``sglang.launch_server`` builds (``ServerArgs.add_cli_args``); every flag must be known and land
on the setting it is meant for, with the plan's value. Needs scripts/setup-sglang-args.sh to
have been run (CI does).
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

import pytest
from qwen3vl_aws.aws.catalog import instance_types
from qwen3vl_aws.paths import data_file
from qwen3vl_aws.serving.engine_flags import mem_fraction_static, sglang_flags
from qwen3vl_aws.serving.model_profile import FP8_MODEL_ID, load_profile, profile_dir_name
from qwen3vl_aws.serving.planner import (
    DRAFT_DIR_PLACEHOLDER,
    EAGLE3_DRAFT_TOKENS,
    EAGLE3_STEPS,
    EAGLE3_TOPK,
    FULL_HD,
    ServingPlan,
    image_tokens,
    plan_serving,
)
from qwen3vl_aws.serving.versions import pinned_versions
from venv_script import run_for_result

from rig.vllm import vllm_python

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
PARSE = Path(__file__).resolve().parent / "sglang_parse.py"
SGLANG_VENV = Path(os.environ.get("QWEN3VL_SGLANG_VENV", REPO_ROOT / ".venv-sglang"))
#: What qwen3vl-bootstrap's engine_env() puts before ENGINE_ARGS for SGLang.
BOOTSTRAP_ARGS = [
    "--served-model-name", "Qwen/Qwen3-VL-8B-Instruct",
    "--host", "127.0.0.1",
    "--port", "8000",
    "--allowed-media-domains", "upload.wikimedia.org", "images.example.com",
]  # fmt: skip


def sglang_parse(argvs: list[list[str]]) -> list[dict]:
    """Parse each argument list with SGLang's parser in .venv-sglang."""
    ready = SGLANG_VENV / ".ready"
    version = pinned_versions()["SGLANG_VERSION"]
    if not ready.is_file() or ready.read_text() != version:
        pytest.fail(
            f"{SGLANG_VENV} does not hold sglang {version}: run scripts/setup-sglang-args.sh "
            "(after scripts/setup-vllm-cpu.sh).",
            pytrace=False,
        )
    return run_for_result(SGLANG_VENV / "bin" / "python", PARSE, json.dumps(argvs), timeout=300)


def plans() -> list[ServingPlan]:
    """Every instance type's default plan, and overrides that switch on the other branches."""
    found = [plan_serving(t) for t in sorted(instance_types())]
    found.append(plan_serving("g6e.12xlarge", video=True, max_num_seqs=32))
    found.append(plan_serving("g6.xlarge", max_model_len=20000, gpu_memory_utilization=0.85))
    found.append(plan_serving("g6.xlarge", model=FP8_MODEL_ID, kv_cache_dtype="fp8"))
    found.append(plan_serving("g6e.xlarge", speculative="eagle3"))
    return found


@cache
def parsed() -> list[tuple[ServingPlan, dict]]:
    all_plans = plans()
    results = sglang_parse([BOOTSTRAP_ARGS + sglang_flags(p) for p in all_plans])
    return list(zip(all_plans, results, strict=True))


def test_sglang_knows_every_flag():
    for plan, result in parsed():
        assert "error" not in result, (plan.instance_type, sglang_flags(plan), result)


def test_each_flag_sets_the_plans_value():
    for plan, result in parsed():
        values = result["values"]
        assert values["model_path"] == "/opt/qwen3vl/model"
        assert values["allowed_media_domains"] == ["upload.wikimedia.org", "images.example.com"]
        assert values["tp_size"] == plan.tensor_parallel_size
        assert values["mm_enable_dp_encoder"] is (True if plan.encoder_data_parallel else None)
        assert values["context_length"] == plan.max_model_len
        assert values["mem_fraction_static"] == mem_fraction_static(plan)
        assert values["max_running_requests"] == plan.max_num_seqs
        assert values["chunked_prefill_size"] == plan.max_num_batched_tokens
        images = {"image": plan.max_images_per_prompt}
        assert values["limit_mm_data_per_request"] == (
            images if plan.video else {**images, "video": 0}
        )
        cap = values["mm_process_config"]
        if "--mm-processor-kwargs" in plan.flags:
            assert cap["image"]["size"]["longest_edge"] == plan.largest_image_pixels
        else:
            assert cap is None
        assert values["kv_cache_dtype"] == ("fp8_e4m3" if plan.kv_cache_dtype == "fp8" else "auto")
        if plan.speculative:
            assert values["speculative_algorithm"] == "EAGLE3"
            assert values["speculative_draft_model_path"] == DRAFT_DIR_PLACEHOLDER
            steps = (EAGLE3_STEPS, EAGLE3_TOPK, EAGLE3_DRAFT_TOKENS)
            assert (
                values["speculative_num_steps"],
                values["speculative_eagle_topk"],
                values["speculative_num_draft_tokens"],
            ) == steps
        else:
            assert values["speculative_algorithm"] is None


def test_the_parser_rejects_what_it_does_not_know():
    """The check above can fail: a vLLM-only flag is an error for SGLang's parser."""
    (result,) = sglang_parse([[*BOOTSTRAP_ARGS, "--max-model-len", "4096"]])
    assert "unrecognized arguments: --max-model-len" in result["error"]


def test_the_image_cap_resizes_as_sglang_hands_it_to_transformers():
    """The rendered --mm-process-config image mapping, passed as SGLang passes it, resizes a
    1080p image to the plan's cap without transformers' deprecation warning (the transformers
    of the vLLM venv: the SGLang venv holds only SGLang's argument parser)."""
    plan = plan_serving("g5.xlarge", max_model_len=2048)
    profile = load_profile(plan.model_id)
    flags = sglang_flags(plan)
    image_config = json.loads(flags[flags.index("--mm-process-config") + 1])["image"]
    seen = run_for_result(
        vllm_python(),
        Path(__file__).resolve().parent / "hf_image_processor.py",
        str(data_file("models") / profile_dir_name(plan.model_id)),
        json.dumps(image_config),
        "1920x1080",
        timeout=300,
    )
    assert seen["image_tokens"] == image_tokens(
        *FULL_HD, profile, max_pixels=plan.largest_image_pixels
    )
    assert seen["image_tokens"] < image_tokens(*FULL_HD, profile)  # the cap did resize
    assert not [w for w in seen["warnings"] if "max_pixels" in w]
