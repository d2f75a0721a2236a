"""The planner's memory model against the GPU measurements (bench/gpu_measurements.json).

Every number on the measured side comes from that table (vLLM 0.26.0 on an H200, the real
Qwen3-VL-8B-Instruct config); every number on the other side from the planner's functions. The
tolerances are the table's own precision (vLLM logs GiB to two decimals) or, for the whole
process, a stated share: the model may be above the measurement (safe) but not below it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from qwen3vl_aws.serving.gpu_specs import GpuSpec
from qwen3vl_aws.serving.model_profile import BF16_MODEL_ID, FP8_MODEL_ID, load_profile
from qwen3vl_aws.serving.planner import (
    GIB,
    KV_BLOCK_TOKENS,
    activation_bytes,
    allocated_weight_bytes,
    kv_bytes_per_token,
    plan_serving,
    vision_bytes,
)
from qwen3vl_aws.serving.versions import pinned_versions
from qwen3vl_aws.serving.vllm_memory import (
    CUDA_CONTEXT_BYTES,
    CUDA_GRAPHS_BYTES,
    MEASURED_VLLM_VERSION,
    NON_TORCH_BYTES,
    runtime_bytes,
)

TABLE = json.loads(
    (Path(__file__).resolve().parents[2] / "bench" / "gpu_measurements.json").read_text()
)
RUNS = TABLE["runs"]
MIB = 1024**2
LOGGED = 0.005 * GIB  # vLLM logs GiB to two decimals
WHOLE_PROCESS_SLACK = 0.03  # the model may overestimate the whole process by up to 3%


def run_id(run: dict) -> str:
    return run["name"].split(",")[0]


def setting(run: dict):
    """The profile and a GPU of the run's kernel family (Marlin: no FP8 tensor cores)."""
    profile = load_profile(FP8_MODEL_ID if run["model"] == "fp8" else BF16_MODEL_ID)
    name = "A10G" if run["kernels"] == "marlin" else "L40S"
    return profile, GpuSpec(name, 1, run["card_mib"], "measured run")


def weights(run: dict) -> int:
    profile, gpu = setting(run)
    return allocated_weight_bytes(profile, gpu, 1, False, run["max_num_batched_tokens"])


def kv_bytes(run: dict) -> int:
    profile, _ = setting(run)
    per_token = kv_bytes_per_token(profile, kv_dtype=run["kv_cache_dtype"])
    return run["kv_tokens"] * per_token


def predicted_after_start(run: dict) -> int:
    return weights(run) + runtime_bytes(1) + kv_bytes(run)


def predicted_after_requests(run: dict) -> int:
    profile, _ = setting(run)
    lm = activation_bytes(profile, 1, run["max_num_batched_tokens"])
    vision = vision_bytes(profile, run["largest_image_tokens"])
    return predicted_after_start(run) + max(lm, vision)


def test_the_table_names_the_version_the_model_is_calibrated_on():
    assert TABLE["vllm_version"] == MEASURED_VLLM_VERSION
    assert TABLE["pinned_vllm_version"] == pinned_versions()["VLLM_VERSION"]


@pytest.mark.parametrize("run", RUNS, ids=run_id)
def test_weights_as_allocated_match_vllms_figure(run):
    assert abs(weights(run) - run["weights_gib"] * GIB) <= LOGGED + 0.01 * GIB


@pytest.mark.parametrize("run", [r for r in RUNS if r["peak_activation_gib"]], ids=run_id)
def test_activation_peak_is_vllms_or_above(run):
    profile, _ = setting(run)
    modelled = activation_bytes(profile, 1, run["max_num_batched_tokens"])
    measured = run["peak_activation_gib"] * GIB
    assert measured - LOGGED <= modelled <= measured + 0.15 * GIB  # FP8 activations are smaller


@pytest.mark.parametrize("run", [r for r in RUNS if r["non_torch_gib"]], ids=run_id)
def test_non_torch_memory_is_covered(run):
    assert run["non_torch_gib"] * GIB <= NON_TORCH_BYTES + LOGGED


@pytest.mark.parametrize("run", [r for r in RUNS if r["max_num_seqs"] == 256], ids=run_id)
def test_cuda_graph_pool_is_covered_at_256_sequences(run):
    assert run["cuda_graphs_gib"] * GIB <= CUDA_GRAPHS_BYTES + LOGGED


@pytest.mark.parametrize("run", [r for r in RUNS if r["kv_gib"]], ids=run_id)
def test_kv_bytes_per_token_match_vllms_cache(run):
    """vLLM's KV tokens times the planner's bytes per token is vLLM's KV GiB (BF16 and FP8)."""
    assert abs(kv_bytes(run) - run["kv_gib"] * GIB) <= LOGGED + 0.01 * GIB


@pytest.mark.parametrize("run", [r for r in RUNS if r["kv_cache_memory_bytes"]], ids=run_id)
def test_an_explicit_kv_cache_gives_the_tokens_the_plan_promised(run):
    profile, _ = setting(run)
    per_block = kv_bytes_per_token(profile, kv_dtype=run["kv_cache_dtype"]) * KV_BLOCK_TOKENS
    promised = run["kv_cache_memory_bytes"] // per_block * KV_BLOCK_TOKENS
    # vLLM logged one token less than whole blocks once (45,247 of 45,248): within a block
    assert promised - KV_BLOCK_TOKENS < run["kv_tokens"] <= promised


@pytest.mark.parametrize(
    "run", [r for r in RUNS if r["process_mib_after_start"] and r["kv_tokens"]], ids=run_id
)
def test_whole_process_after_start_is_modelled_from_above(run):
    measured = run["process_mib_after_start"] * MIB
    assert measured <= predicted_after_start(run) <= measured * (1 + WHOLE_PROCESS_SLACK)


@pytest.mark.parametrize("run", [r for r in RUNS if r["largest_image_tokens"]], ids=run_id)
def test_whole_process_after_requests_and_the_largest_image_is_modelled_from_above(run):
    measured = run["process_mib_after_requests"] * MIB
    assert measured <= predicted_after_requests(run) <= measured * (1 + WHOLE_PROCESS_SLACK)


def test_the_context_constant_is_the_largest_unaccounted_remainder():
    """Whole process after start minus what vLLM accounts for, over every run that has both."""
    remainders = [
        r["process_mib_after_start"] * MIB
        - (weights(r) + NON_TORCH_BYTES + CUDA_GRAPHS_BYTES)
        - kv_bytes(r)
        for r in RUNS
        if r["process_mib_after_start"]
    ]
    assert max(remainders) <= CUDA_CONTEXT_BYTES <= max(remainders) + 16 * MIB


@pytest.mark.parametrize("run", [r for r in RUNS if r["kv_cache_memory_bytes"]], ids=run_id)
def test_every_measured_plan_stayed_on_its_card(run):
    assert run["process_mib_after_requests"] < run["card_mib"]


def test_the_old_flags_overran_the_card_and_the_model_says_so():
    (old,) = [r for r in RUNS if "old deployment" in r["name"]]
    assert old["process_mib_after_requests"] > old["card_mib"]
    # its graph pool was vLLM's default sequences' (measured), the rest is the model's
    graphs = old["cuda_graphs_gib"] * GIB
    predicted = weights(old) + runtime_bytes(1) - CUDA_GRAPHS_BYTES + graphs + kv_bytes(old)
    assert predicted > old["card_mib"] * MIB


@pytest.mark.parametrize(
    ("instance_type", "overrides"),
    [("g5.xlarge", {}), ("g6.xlarge", {"model": FP8_MODEL_ID}), ("g6e.xlarge", {})],
)
def test_todays_plans_predict_less_than_the_measured_runs_used(instance_type, overrides):
    """The calibrated plans for the re-measured types leave more room than the runs had."""
    plan = plan_serving(instance_type, **overrides)
    measured = [
        r
        for r in RUNS
        if r["kv_cache_memory_bytes"]
        and r["card_mib"] == plan.gpu.memory_mib
        and r["model"] == plan.precision
        and r["kernels"] == "hopper"
    ]
    assert measured
    for run in measured:
        assert plan.kv_cache_bytes_per_gpu <= run["kv_cache_memory_bytes"]
