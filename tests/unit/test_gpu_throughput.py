"""The default plan against the old deployment's flags at its benchmark shape, measured on a GPU.

The numbers are bench/gpu_measurements.json's `throughput_vs_old_flags` (vLLM 0.26.0 on an H200,
bench/gpu_measure.py --side-by-side). These tests keep the claim "the default plan is never slower
than the old flags" tied to today's plan: when the planner's batching defaults change, the
measurement no longer covers them and this fails until it is re-run.
"""

from __future__ import annotations

import json
from pathlib import Path
from statistics import mean

from qwen3vl_aws.serving.planner import plan_serving

TABLE = json.loads(
    (Path(__file__).resolve().parents[2] / "bench" / "gpu_measurements.json").read_text()
)
COMPARISON = TABLE["throughput_vs_old_flags"]
# What decides throughput at this shape: the scheduler's budget per step and the context.
BATCHING_FLAGS = ("--max-num-seqs", "--max-num-batched-tokens", "--max-model-len")


def flag(flags: list[str], name: str) -> str | None:
    return flags[flags.index(name) + 1] if name in flags else None


def servers() -> tuple[dict, list[dict]]:
    plans = [s for s in COMPARISON["servers"] if s["name"].startswith("default plan")]
    olds = [s for s in COMPARISON["servers"] if s["name"].startswith("old flags")]
    assert len(plans) == 1 and olds
    return plans[0], olds


def warm_req_per_s(server: dict) -> list[float]:
    return [p["req_per_s"] for p in server["warm_passes"]]


def test_the_measured_plan_has_todays_g5_batching():
    plan, _ = servers()
    today = plan_serving("g5.xlarge").flags
    for name in BATCHING_FLAGS:
        assert flag(plan["flags"], name) == flag(today, name), name


def test_the_old_flags_are_the_old_deployments():
    """u=0.95 and a 1,024 context; the rest is vLLM's (resolved per card) or fixed for the run."""
    _, olds = servers()
    for old in olds:
        assert flag(old["flags"], "--gpu-memory-utilization") == "0.95"
        assert flag(old["flags"], "--max-model-len") == "1024"
        assert old["card_mib"] == servers()[0]["card_mib"]


def test_the_plan_was_not_slower_than_the_old_flags_beyond_run_to_run_noise():
    plan, olds = servers()
    everyone = [plan, *olds]
    # the largest spread between two warm rounds of one server, as a share of its mean
    noise = max((max(r) - min(r)) / mean(r) for r in map(warm_req_per_s, everyone))
    for old in olds:
        assert mean(warm_req_per_s(plan)) >= mean(warm_req_per_s(old)) * (1 - noise), old["name"]


def test_every_pass_was_the_old_benchmark_shape_and_complete():
    for server in COMPARISON["servers"]:
        for p in [server["cold_pass_all_servers_at_once"], *server["warm_passes"]]:
            assert (p["concurrency"], p["prompt_tokens"]) == (10, 800)
            assert p["output_tokens"] == p["requests"] * 40
