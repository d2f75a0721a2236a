"""The serving planner's arithmetic and choices (pure functions, no AWS, no vLLM).

Agreement with vLLM's own accounting is in tests/vllm/test_planner_vs_vllm.py; here the numbers
are checked against the model's config.json and against each other.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from qwen3vl_aws.aws.catalog import instance_types
from qwen3vl_aws.errors import UsageError
from qwen3vl_aws.paths import data_file
from qwen3vl_aws.serving.gpu_specs import GpuSpec, catalog_gpu
from qwen3vl_aws.serving.model_profile import (
    BF16_MODEL_ID,
    EAGLE3_DRAFT_ID,
    FP8_MODEL_ID,
    MODEL_IDS,
    load_profile,
    profile_dir_name,
)
from qwen3vl_aws.serving.planner import (
    ANSWER_TOKENS,
    DRAFT_DIR_PLACEHOLDER,
    EAGLE3_STEPS,
    FULL_HD,
    IMAGE_WRAPPER_TOKENS,
    KV_BLOCK_TOKENS,
    MIN_FULL_LENGTH_REQUESTS,
    MODES,
    PROMPT_TOKENS,
    Budget,
    image_fits,
    image_tokens,
    kv_bytes_per_token,
    largest_image_tokens,
    plan_modes,
    plan_serving,
    weight_bytes,
)
from qwen3vl_aws.serving.vllm_memory import HEADROOM_BYTES

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "qwen3-vl-8b-instruct"

#: The types the issue names; every one must get a plan that takes a 1080p image.
ISSUE_TYPES = (
    *("g5.xlarge", "g5.2xlarge", "g5.4xlarge", "g5.12xlarge", "g5.48xlarge"),
    *("g6.xlarge", "g6.2xlarge", "g6.12xlarge", "g6.48xlarge"),
    *("g6e.xlarge", "g6e.2xlarge", "g6e.12xlarge", "g6e.48xlarge"),
)


def flag_values(flags: list[str]) -> dict[str, str | None]:
    """``["--a", "1", "--b"]`` -> ``{"--a": "1", "--b": None}``."""
    values: dict[str, str | None] = {}
    for arg in flags:
        if arg.startswith("--"):
            values[arg] = None
            last = arg
        else:
            values[last] = arg
    return values


def fixture_config() -> dict:
    return json.loads((FIXTURE / "config.json").read_text())


# --- the shipped model profiles -----------------------------------------------------------------


def test_bf16_profile_is_the_real_checkpoint_config():
    shipped = data_file("models") / profile_dir_name(BF16_MODEL_ID)
    for name in ("config.json", "preprocessor_config.json"):
        assert json.loads((shipped / name).read_text()) == json.loads((FIXTURE / name).read_text())


def test_fp8_profile_shares_the_architecture_and_adds_block_fp8():
    shipped = data_file("models") / profile_dir_name(FP8_MODEL_ID)
    config = json.loads((shipped / "config.json").read_text())
    quant = config.pop("quantization_config")
    assert config == fixture_config()
    assert quant["quant_method"] == "fp8"
    assert quant["weight_block_size"] == [128, 128]
    # the vision tower and lm_head stay BF16
    assert "lm_head" in quant["modules_to_not_convert"]
    assert all(
        name == "lm_head" or name.startswith("model.visual.")
        for name in quant["modules_to_not_convert"]
    )
    preprocessor = json.loads((shipped / "preprocessor_config.json").read_text())
    assert preprocessor == json.loads((FIXTURE / "preprocessor_config.json").read_text())


def test_unknown_model_is_a_usage_error():
    with pytest.raises(UsageError, match="choose one of"):
        load_profile("Qwen/Qwen2-VL-7B")


# --- per-token KV bytes and weights -------------------------------------------------------------


def test_kv_bytes_per_token_follow_the_config():
    text = fixture_config()["text_config"]
    expected = text["num_hidden_layers"] * text["num_key_value_heads"] * text["head_dim"] * 2 * 2
    for model in MODEL_IDS:
        assert kv_bytes_per_token(load_profile(model)) == expected


@pytest.mark.parametrize("tp", [2, 4, 8])
def test_kv_heads_split_across_tensor_parallel_ranks(tp):
    profile = load_profile(BF16_MODEL_ID)
    assert kv_bytes_per_token(profile, tp) * tp == kv_bytes_per_token(profile)


def test_kv_heads_are_replicated_beyond_their_count():
    profile = load_profile(BF16_MODEL_ID)
    heads = profile.text.num_kv_heads
    assert kv_bytes_per_token(profile, 2 * heads) == kv_bytes_per_token(profile, heads)


def test_fp8_halves_the_language_model_linears_only():
    bf16, fp8 = load_profile(BF16_MODEL_ID), load_profile(FP8_MODEL_ID)
    linear = sum(w.numel for w in bf16.weights() if w.quantizable)
    saved = weight_bytes(bf16) - weight_bytes(fp8)
    # one byte saved per FP8 weight, less the float32 block scales and attention scales
    assert linear * 0.99 < saved < linear
    vision = sum(w.numel for w in bf16.weights() if w.vision)
    assert vision > 0 and not any(w.quantizable for w in bf16.weights() if w.vision)


@pytest.mark.parametrize("tp", [2, 4, 8])
def test_tensor_parallel_shards_weights_and_data_parallel_encoder_replicates(tp):
    profile = load_profile(BF16_MODEL_ID)
    total = weight_bytes(profile)
    sharded = weight_bytes(profile, tp)
    replicated = sum(2 * w.numel for w in profile.weights() if not w.sharded)
    assert sharded * tp >= total
    assert sharded <= total / tp + replicated + tp
    vision_sharded = sum(2 * w.numel for w in profile.weights() if w.vision and w.sharded)
    extra = weight_bytes(profile, tp, encoder_data_parallel=True) - sharded
    assert extra == pytest.approx(vision_sharded * (1 - 1 / tp), abs=len(profile.weights()))


# --- images --------------------------------------------------------------------------------------


def test_image_tokens_cover_32_pixel_squares():
    profile = load_profile(BF16_MODEL_ID)
    assert profile.pixels_per_token == 32 * 32
    width, height = FULL_HD
    tokens = image_tokens(width, height, profile)
    # each side rounds to a multiple of 32, so the token count is within a row/column of exact
    assert abs(tokens * 1024 - width * height) <= 32 * (width + height)


def test_images_are_scaled_into_the_preprocessor_limits():
    profile = load_profile(BF16_MODEL_ID)
    assert image_tokens(8, 8, profile) * 1024 >= profile.min_pixels
    assert image_tokens(20000, 20000, profile) * 1024 <= profile.max_pixels
    cap = 1_000_000
    assert image_tokens(4000, 3000, profile, max_pixels=cap) * 1024 <= cap


# --- plans for every supported type --------------------------------------------------------------


@pytest.mark.parametrize("instance_type", ISSUE_TYPES)
def test_every_issue_type_gets_a_plan_that_serves_a_1080p_image(instance_type):
    plan = plan_serving(instance_type)
    profile = load_profile(plan.model_id)
    gpu = catalog_gpu(instance_type)
    assert plan.tensor_parallel_size == gpu.count
    assert image_fits(profile, plan.max_model_len, *FULL_HD)
    assert plan.kv_tokens >= MIN_FULL_LENGTH_REQUESTS * plan.max_model_len
    assert plan.largest_image_tokens + PROMPT_TOKENS + ANSWER_TOKENS + IMAGE_WRAPPER_TOKENS <= (
        plan.max_model_len
    )
    assert plan.kv_tokens % KV_BLOCK_TOKENS == 0
    flags = flag_values(plan.flags)
    assert flags["--tensor-parallel-size"] == str(gpu.count)
    assert flags["--max-model-len"] == str(plan.max_model_len)
    assert ("--mm-encoder-tp-mode" in flags) == (gpu.count > 1)
    if gpu.count > 1:
        assert flags["--mm-encoder-tp-mode"] == "data"
    assert flags["--limit-mm-per-prompt.video"] == "0"
    assert "--enable-prefix-caching" in flags and "--enable-chunked-prefill" in flags
    assert "--model" not in flags
    assert plan.model_id == BF16_MODEL_ID  # FP8 only when asked for, or when the context needs it


@pytest.mark.parametrize("instance_type", sorted(instance_types()))
def test_memory_adds_up(instance_type):
    plan = plan_serving(instance_type)
    left = plan.usable_bytes_per_gpu - plan.reserves.total
    per_gpu = kv_bytes_per_token(load_profile(plan.model_id), plan.tensor_parallel_size)
    assert plan.kv_cache_bytes_per_gpu == plan.kv_tokens * per_gpu
    assert plan.kv_cache_bytes_per_gpu <= left < (plan.kv_tokens + KV_BLOCK_TOKENS) * per_gpu
    # the whole process stays inside the card less the stated headroom
    assert plan.usable_bytes_per_gpu == plan.gpu.memory_bytes - HEADROOM_BYTES
    assert plan.process_bytes_per_gpu <= plan.usable_bytes_per_gpu
    # --gpu-memory-utilization (vLLM's start-up check) is the budget's share, rounded down
    assert plan.gpu_memory_utilization <= plan.usable_bytes_per_gpu / plan.gpu.memory_bytes


#: The userdata module's contract for engine_args (terraform/modules/userdata/variables.tf):
#: one argument per element, no whitespace, quotes, backslashes, $ or backticks, and none of the
#: flags the bootstrap renders itself.
ENGINE_ARG = re.compile(r"^[^\s'\\$`]+$")
RENDERED_BY_BOOTSTRAP = {"--model", "--host", "--port", "--served-model-name", "--api-key"}


@pytest.mark.parametrize("instance_type", sorted(instance_types()))
@pytest.mark.parametrize("video", [False, True])
def test_flags_fit_the_engine_args_contract(instance_type, video):
    try:
        plan = plan_serving(instance_type, video=video)
    except UsageError:
        assert video  # only video can leave a type without room (24 GB A10G)
        return
    for arg in plan.flags:
        assert ENGINE_ARG.match(arg), arg
        assert arg.split("=", 1)[0] not in RENDERED_BY_BOOTSTRAP


def test_image_cap_flag_matches_the_largest_image():
    plan = plan_serving("g5.xlarge")
    kwargs = json.loads(flag_values(plan.flags)["--mm-processor-kwargs"])
    size = kwargs["images_kwargs"]["size"]
    assert size == {
        "longest_edge": plan.largest_image_pixels,
        "shortest_edge": load_profile(plan.model_id).min_pixels,
    }
    big = plan_serving("g6e.48xlarge")  # the whole preprocessor range fits: no cap needed
    assert "--mm-processor-kwargs" not in big.flags
    assert big.largest_image_pixels == load_profile(big.model_id).max_pixels


def test_explanation_walks_through_the_arithmetic():
    plan = plan_serving("g6.12xlarge")
    text = "\n".join(plan.explanation)
    for fragment in (
        f"{plan.gpu.count} x {plan.gpu.name}",
        f"{plan.kv_bytes_per_token:,} bytes",
        f"{plan.kv_tokens:,} tokens",
        f"{plan.max_model_len:,} tokens",
        f"{plan.largest_image_pixels:,} pixels",
        "--mm-encoder-tp-mode data",
        "--limit-mm-per-prompt.video 0",
        FP8_MODEL_ID,
        "--kv-cache-memory-bytes",
        "vLLM 0.32.0",
    ):
        assert fragment in text
    assert "Marlin" in "\n".join(plan_serving("g5.xlarge", model=FP8_MODEL_ID).explanation)
    assert "Marlin" not in "\n".join(plan_serving("g6.xlarge", model=FP8_MODEL_ID).explanation)


def test_json_has_what_scripts_read():
    doc = json.loads(json.dumps(plan_serving("g6e.12xlarge").to_json()))
    for key in (
        "max_model_len",
        "kv_bytes_per_token",
        "kv_tokens",
        "tensor_parallel_size",
        "largest_image_pixels",
        "flags",
        "model_id",
        "concurrency",
        "explanation",
    ):
        assert key in doc
    assert isinstance(doc["flags"], list) and all(isinstance(f, str) for f in doc["flags"])


# --- monotonic sanity -----------------------------------------------------------------------------


def synthetic_gpu(memory_mib: int, name: str = "L40S", count: int = 1) -> GpuSpec:
    return GpuSpec(name=name, count=count, memory_mib=memory_mib, source="test")


def test_more_memory_never_gives_a_shorter_context():
    lengths = [
        plan_serving("g6e.xlarge", gpu=synthetic_gpu(memory_mib)).max_model_len
        for memory_mib in range(22_000, 100_001, 2_000)
    ]
    assert lengths == sorted(lengths)
    assert lengths[-1] > lengths[0]


def test_more_memory_never_gives_fewer_kv_tokens_for_a_given_context():
    profile = load_profile(BF16_MODEL_ID)
    for length in (4096, 32768, 262144):
        counts = [
            Budget(synthetic_gpu(m), profile, 1, 0.9, 256, 4096, False).kv_tokens(length)
            for m in range(22_000, 100_001, 4_000)
        ]
        assert counts == sorted(counts)


@pytest.mark.parametrize(
    "instance_type",
    [name for name, row in instance_types().items() if row.gpu_name in ("L4", "L40S")],
)
def test_fp8_never_gives_fewer_kv_tokens_than_bf16(instance_type):
    bf16 = plan_serving(instance_type, model=BF16_MODEL_ID)
    fp8 = plan_serving(instance_type, model=FP8_MODEL_ID)
    assert fp8.max_model_len >= bf16.max_model_len
    same_context = plan_serving(instance_type, model=FP8_MODEL_ID, max_model_len=bf16.max_model_len)
    assert same_context.kv_tokens >= bf16.kv_tokens
    assert fp8.weight_bytes < bf16.weight_bytes


def test_longer_context_never_leaves_more_kv_tokens():
    budget = Budget(
        catalog_gpu("g6e.xlarge"), load_profile(BF16_MODEL_ID), 1, 0.9, 256, 8192, False
    )
    counts = [budget.kv_tokens(n) for n in range(1024, 262145, 4096)]
    assert counts == sorted(counts, reverse=True)


# --- overrides ------------------------------------------------------------------------------------


@pytest.mark.parametrize("instance_type", ["g5.xlarge", "g6.xlarge"])
def test_a_context_bf16_cannot_hold_switches_to_fp8_then_to_an_fp8_kv_cache(instance_type):
    gpu = catalog_gpu(instance_type)
    bf16_limit = Budget(gpu, load_profile(BF16_MODEL_ID), 1, None, 256, 4096, False).longest(
        1, step=KV_BLOCK_TOKENS
    )
    fp8_limit = Budget(gpu, load_profile(FP8_MODEL_ID), 1, None, 256, 4096, False).longest(
        1, step=KV_BLOCK_TOKENS
    )
    plan = plan_serving(instance_type, max_model_len=bf16_limit + 1024)
    assert (plan.model_id, plan.kv_cache_dtype) == (FP8_MODEL_ID, "auto")
    assert plan.max_model_len == bf16_limit + 1024
    assert f"Also possible: {BF16_MODEL_ID} (BF16)" in "\n".join(plan.explanation)
    assert plan_serving(instance_type, max_model_len=bf16_limit).model_id == BF16_MODEL_ID
    longer = plan_serving(instance_type, max_model_len=fp8_limit + 1024)
    assert (longer.model_id, longer.kv_cache_dtype) == (FP8_MODEL_ID, "fp8")
    assert flag_values(longer.flags)["--kv-cache-dtype"] == "fp8"


def test_too_long_a_context_says_what_would_fit():
    with pytest.raises(UsageError) as err:
        plan_serving("g6.xlarge", max_model_len=250_000)
    message = str(err.value)
    fits = [int(n) for n in re.findall(r"fits up to --max-model-len (\d+)", message)]
    assert len(fits) == len(MODES)  # BF16, FP8, FP8 with an FP8 KV cache
    for (model, kv_dtype), fit in zip(MODES, fits, strict=True):
        mode = {"model": model, "kv_cache_dtype": kv_dtype}
        assert plan_serving("g6.xlarge", max_model_len=fit, **mode).max_model_len == fit
        with pytest.raises(UsageError):
            plan_serving("g6.xlarge", max_model_len=fit + KV_BLOCK_TOKENS, **mode)


@pytest.mark.parametrize("instance_type", ["g5.xlarge", "g5.2xlarge", "g6.xlarge", "g6.2xlarge"])
def test_every_single_24_gb_gpu_offers_32k_in_some_mode(instance_type):
    longest = [mode.plan.max_model_len for mode in plan_modes(instance_type) if mode.plan]
    assert max(longest) >= 32 * 1024


@pytest.mark.parametrize(
    ("instance_type", "overrides", "match"),
    [
        ("g5.xlarge", {"tensor_parallel_size": 2}, "does not fit 1 x A10G"),
        ("g5.12xlarge", {"tensor_parallel_size": 3}, "use one of 1, 2, 4"),
        ("g5.xlarge", {"gpu_memory_utilization": 0.99}, "out of range"),
        ("g5.xlarge", {"gpu_memory_utilization": 0.5}, "does not fit on g5.xlarge"),
        ("g5.xlarge", {"max_model_len": 100}, "out of range"),
        ("g5.xlarge", {"max_model_len": 300_000}, "the model's own limit"),
        ("g5.xlarge", {"max_num_seqs": 0}, "positive"),
        ("g5.xlarge", {"max_num_seqs": 512, "max_num_batched_tokens": 256}, "at least"),
        ("p4d.24xlarge", {}, "Unsupported instance type"),
    ],
)
def test_bad_overrides_are_usage_errors(instance_type, overrides, match):
    with pytest.raises(UsageError, match=match):
        plan_serving(instance_type, **overrides)


def test_explicit_overrides_reach_the_flags():
    plan = plan_serving(
        "g6e.12xlarge",
        max_model_len=32768,
        tensor_parallel_size=2,
        gpu_memory_utilization=0.85,
        max_num_seqs=64,
        max_num_batched_tokens=2048,
    )
    flags = flag_values(plan.flags)
    assert flags["--max-model-len"] == "32768"
    assert flags["--tensor-parallel-size"] == "2"
    assert flags["--gpu-memory-utilization"] == "0.85"
    assert plan.usable_bytes_per_gpu == int(plan.gpu.memory_bytes * 0.85)
    assert flags["--max-num-seqs"] == "64"
    assert flags["--max-num-batched-tokens"] == "2048"
    assert "as asked" in "\n".join(plan.explanation)


def test_video_lifts_the_video_limit_and_costs_vision_memory():
    image_only = plan_serving("g6e.xlarge")
    with_video = plan_serving("g6e.xlarge", video=True)
    assert "--limit-mm-per-prompt.video" not in with_video.flags
    assert with_video.reserves.vision >= image_only.reserves.vision
    assert with_video.max_model_len <= image_only.max_model_len
    # where the context caps images, video's uncapped input costs more than the cap
    capped = {"model": FP8_MODEL_ID, "max_model_len": 8192}
    assert (
        plan_serving("g6.xlarge", video=True, **capped).reserves.vision
        > plan_serving("g6.xlarge", **capped).reserves.vision
    )


def test_when_bf16_has_no_room_at_all_fp8_takes_over():
    with pytest.raises(UsageError, match="drop --video"):
        plan_serving("g6.xlarge", model=BF16_MODEL_ID, video=True)
    plan = plan_serving("g6.xlarge", video=True)
    assert plan.model_id == FP8_MODEL_ID
    assert f"{BF16_MODEL_ID} (BF16) does not fit" in "\n".join(plan.explanation)


def test_an_ec2_answer_overrides_the_catalog():
    smaller = replace(catalog_gpu("g6e.xlarge"), memory_mib=30_000, source="EC2")
    plan = plan_serving("g6e.xlarge", gpu=smaller)
    assert plan.gpu.source == "EC2"
    assert plan.max_model_len < plan_serving("g6e.xlarge").max_model_len


# --- speculative decoding -------------------------------------------------------------------------


@pytest.mark.parametrize("instance_type", ISSUE_TYPES)
def test_eagle3_counts_the_draft_and_still_serves_a_1080p_image(instance_type):
    plain = plan_serving(instance_type)
    plan = plan_serving(instance_type, speculative="eagle3")
    profile = load_profile(plan.model_id)
    assert plan.draft_model_id == EAGLE3_DRAFT_ID
    assert image_fits(profile, plan.max_model_len, *FULL_HD)
    # the draft adds a KV layer to every token and its weights to every GPU
    layers = profile.text.num_layers
    assert plan.kv_bytes_per_token * layers == kv_bytes_per_token(profile) * (layers + 1)
    if plan.model_id == plain.model_id:
        assert plan.reserves.weights > plain.reserves.weights
        assert plan.kv_tokens < plain.kv_tokens
    config = json.loads(flag_values(plan.flags)["--speculative-config"])
    assert config == {
        "method": "eagle3",
        "model": DRAFT_DIR_PLACEHOLDER,
        "num_speculative_tokens": EAGLE3_STEPS,
    }
    assert "--speculative-config" not in plain.flags and plain.draft_model_id is None


def test_eagle3_on_a_24_gb_card_moves_to_fp8_to_keep_a_1080p_image():
    plan = plan_serving("g5.xlarge", speculative="eagle3")
    assert plan.model_id == FP8_MODEL_ID
    assert "EAGLE3" in "\n".join(plan.explanation)


def test_an_unknown_speculative_method_is_a_usage_error():
    with pytest.raises(UsageError, match="--speculative medusa is not offered"):
        plan_serving("g6e.xlarge", speculative="medusa")


def test_the_image_cap_is_a_count_a_real_image_grid_can_have():
    """vLLM budgets the largest count up to the cap whose closest factor pair is no longer than
    200:1; a prime-ish count (2 x 2,687) is not one, so the plan must not promise it."""
    profile = load_profile(BF16_MODEL_ID)
    for length in range(4096, 8192, 256):
        tokens = largest_image_tokens(profile, length)
        side = max(d for d in range(1, int(tokens**0.5) + 1) if tokens % d == 0)
        assert tokens // side <= 200 * side
        assert tokens <= length - (PROMPT_TOKENS + ANSWER_TOKENS + IMAGE_WRAPPER_TOKENS)
    awkward = 2 * 2687 + PROMPT_TOKENS + ANSWER_TOKENS + IMAGE_WRAPPER_TOKENS
    assert largest_image_tokens(profile, awkward) < 2 * 2687
