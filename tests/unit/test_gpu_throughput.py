"""The default plan against the old deployment's flags at its benchmark shape, measured on a GPU.

The numbers are bench/gpu_measurements.json's `throughput_vs_old_flags` (vLLM 0.26.0 on an H200,
bench/gpu_measure.py --side-by-side), one comparison per run and instance type. These tests keep
the claim "the default plan is never slower than the old flags" tied to today's plans: when the
planner's batching defaults change for a measured type, the measurement no longer covers them and
this fails until it is re-run.
"""

from __future__ import annotations

import json
from pathlib import Path
from statistics import mean

import pytest
from qwen3vl_aws.serving.planner import plan_serving

TABLE = json.loads(
    (Path(__file__).resolve().parents[2] / "bench" / "gpu_measurements.json").read_text()
)
COMPARISONS = TABLE["throughput_vs_old_flags"]
RUNS = pytest.mark.parametrize(
    "comparison", COMPARISONS, ids=[f"{c['instance_type']}-{i}" for i, c in enumerate(COMPARISONS)]
)
# What decides throughput at this shape: the scheduler's budget per step and the context.
BATCHING_FLAGS = ("--max-num-seqs", "--max-num-batched-tokens", "--max-model-len")


def flag(flags: list[str], name: str) -> str | None:
    return flags[flags.index(name) + 1] if name in flags else None


def servers(comparison: dict) -> tuple[dict, list[dict]]:
    plans = [s for s in comparison["servers"] if s["name"].startswith("default plan")]
    olds = [s for s in comparison["servers"] if s["name"].startswith("old flags")]
    assert len(plans) == 1 and olds
    return plans[0], olds


def warm_req_per_s(server: dict) -> list[float]:
    return [p["req_per_s"] for p in server["warm_passes"]]


@pytest.mark.parametrize("instance_type", ["g5.xlarge", "g6.xlarge", "g6e.xlarge"])
def test_each_single_gpu_default_plan_was_compared(instance_type: str):
    """A comparison covers a type when its plan ran today's batching on the same card memory
    (g6.xlarge's L4 gets the A10G's plan: same memory, same flags)."""
    today = plan_serving(instance_type)
    measured = [servers(c)[0] for c in COMPARISONS]
    assert any(
        plan["card_mib"] == today.gpu.memory_mib
        and all(flag(plan["flags"], n) == flag(today.flags, n) for n in BATCHING_FLAGS)
        for plan in measured
    ), f"no GPU comparison ran {instance_type}'s default plan"


@RUNS
def test_the_measured_plan_has_todays_batching(comparison: dict):
    plan, _ = servers(comparison)
    today = plan_serving(comparison["instance_type"])
    for name in BATCHING_FLAGS:
        assert flag(plan["flags"], name) == flag(today.flags, name), name
    assert plan["card_mib"] == today.gpu.memory_mib


@RUNS
def test_the_old_flags_are_the_old_deployments(comparison: dict):
    """u=0.95 and a 1,024 context; the rest is vLLM's (resolved per card) or fixed for the run."""
    plan, olds = servers(comparison)
    for old in olds:
        assert flag(old["flags"], "--gpu-memory-utilization") == "0.95"
        assert flag(old["flags"], "--max-model-len") == "1024"
        assert old["card_mib"] == plan["card_mib"]


@RUNS
def test_the_plan_was_not_slower_than_the_old_flags_beyond_run_to_run_noise(comparison: dict):
    plan, olds = servers(comparison)
    everyone = [plan, *olds]
    # the largest spread between two warm rounds of one server, as a share of its mean
    noise = max((max(r) - min(r)) / mean(r) for r in map(warm_req_per_s, everyone))
    for old in olds:
        assert mean(warm_req_per_s(plan)) >= mean(warm_req_per_s(old)) * (1 - noise), old["name"]


@RUNS
def test_every_pass_was_the_old_benchmark_shape_and_complete(comparison: dict):
    for server in comparison["servers"]:
        for p in [server["cold_pass_all_servers_at_once"], *server["warm_passes"]]:
            assert (p["concurrency"], p["prompt_tokens"]) == (10, 800)
            assert p["output_tokens"] == p["requests"] * 40
