"""The engine against its plan: vLLM's /metrics parsed, the 15% drift rule, the deep checks."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from qwen3vl_aws.deployment import Deployment
from qwen3vl_aws.errors import CheckFailed
from qwen3vl_aws.instance.engine_checks import (
    CARD_HEADROOM,
    check_engine_memory,
    check_gpu_processes,
    check_kv_cache,
    parse_engine_log,
    read_kv_comparison,
)
from qwen3vl_aws.instance.engine_metrics import (
    DRIFT_LIMIT,
    KvComparison,
    engine_counters,
    engine_kv,
    metrics_script,
)
from qwen3vl_aws.instance.status import Section
from qwen3vl_aws.provision import ApplyRequest, record
from qwen3vl_aws.serving.plan_record import PlannedServing, plan_summary, planned_serving
from qwen3vl_aws.serving.planner import plan_serving

from rig.local import LocalChannel

RECORDED = Path(__file__).resolve().parents[1] / "fixtures/vllm-metrics"
METRICS = (RECORDED / "vllm-0.32.0-cpu-after-one-request.prom").read_text()
MIB = 1024**2


def label(text: str, name: str) -> int:
    return int(re.search(rf'^vllm:cache_config_info{{.*\b{name}="(\d+)"', text, re.M)[1])


def counter_sum(text: str, name: str) -> float:
    return sum(float(m[1]) for m in re.finditer(rf"^{name}{{[^}}]*}} (\S+)$", text, re.M))


# --- /metrics ---------------------------------------------------------------------------------


def test_real_vllm_metrics_give_its_kv_capacity_and_counters() -> None:
    kv = engine_kv(METRICS)
    assert kv.tokens == label(METRICS, "kv_cache_size_tokens")
    assert kv.tokens == label(METRICS, "num_gpu_blocks") * label(METRICS, "block_size")
    counters = engine_counters(METRICS)
    assert counters.requests == counter_sum(METRICS, "vllm:request_success_total") >= 1
    assert counters.prompt_tokens == counter_sum(METRICS, "vllm:prompt_tokens_total") > 0
    assert counters.generation_tokens == counter_sum(METRICS, "vllm:generation_tokens_total") > 0


def test_without_the_tokens_label_blocks_times_block_size_is_used() -> None:
    text = re.sub(r'kv_cache_size_tokens="\d+",', "", METRICS)
    assert "kv_cache_size_tokens" not in text
    assert engine_kv(text).tokens == label(METRICS, "num_gpu_blocks") * label(METRICS, "block_size")


def test_engine_cores_are_summed_and_a_missing_gauge_says_why() -> None:
    line = next(ln for ln in METRICS.splitlines() if ln.startswith("vllm:cache_config_info"))
    second = line.replace('engine="0"', 'engine="1"')
    assert engine_kv(f"{line}\n{second}\n").tokens == 2 * engine_kv(METRICS).tokens
    with pytest.raises(CheckFailed, match="no vllm:cache_config_info"):
        engine_kv("vllm:num_requests_running 0.0\n")
    unprofiled = re.sub(r'num_gpu_blocks="\d+"', 'num_gpu_blocks="None"', line)
    with pytest.raises(CheckFailed, match="not finished allocating"):
        engine_kv(unprofiled + "\n")


def instance(tmp_path: Path, curl_output: str, curl_exit: int = 0) -> LocalChannel:
    """A scratch instance root with deploy.env and a curl stub serving ``curl_output``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "curl.out").write_text(curl_output)
    (bin_dir / "curl").write_text(f'#!/bin/bash\necho "$@" >{bin_dir}/curl.args\n'
                                  f'cat {bin_dir}/curl.out\nexit {curl_exit}\n')  # fmt: skip
    (bin_dir / "curl").chmod(0o755)
    env_file = tmp_path / "root/etc/qwen3vl/deploy.env"
    env_file.parent.mkdir(parents=True)
    env_file.write_text("ENGINE_PORT='8123'\nPUBLIC_HOST='203.0.113.9'\n")
    env = dict(os.environ, QWEN3VL_ROOT=str(tmp_path / "root"))
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    return LocalChannel(env=env)


def test_the_instance_script_filters_metrics_to_fit_an_ssm_answer(tmp_path: Path) -> None:
    channel = instance(tmp_path, METRICS)
    result = channel.run(metrics_script())
    assert result.ok, result.stderr
    assert "http://127.0.0.1:8123/metrics" in (tmp_path / "bin/curl.args").read_text()
    assert len(result.stdout) < 24_000 < len(METRICS)
    assert engine_kv(result.stdout) == engine_kv(METRICS)
    assert engine_counters(result.stdout) == engine_counters(METRICS)


def test_an_engine_that_does_not_answer_is_a_clear_failure(tmp_path: Path) -> None:
    channel = instance(tmp_path, "", curl_exit=7)
    planned = planned_serving(Deployment("demo", "us-east-1", "g5.xlarge"))
    with pytest.raises(CheckFailed, match=r"did not answer on loopback \(exit 7\)"):
        read_kv_comparison(channel, planned)


# --- the drift rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("engine", "warned", "direction"),
    [
        (10_000, False, None),
        (8_500, False, None),  # exactly the limit below
        (8_499, True, "fewer"),
        (11_500, False, None),  # exactly the limit above
        (11_501, True, "more"),
        (19_504, True, "more"),  # the A10G measurement against an older 10,112-token plan
    ],
)
def test_a_drift_over_the_limit_either_way_is_a_warning_with_a_next_step(
    engine: int, warned: bool, direction: str | None
) -> None:
    planned = 10_000 if engine != 19_504 else 10_112
    comparison = KvComparison(planned, engine, "plan recorded at apply")
    assert (abs(comparison.drift) > DRIFT_LIMIT) is warned
    assert (comparison.warning is not None) is warned
    assert (comparison.next_step is not None) is warned
    if warned:
        assert f"{direction} KV tokens than the plan" in comparison.warning
        assert "qwen3vl-aws" in comparison.next_step
    data = comparison.to_dict()
    assert (data["planned_tokens"], data["engine_tokens"]) == (planned, engine)


def test_the_next_step_depends_on_the_direction() -> None:
    fewer = KvComparison(10_000, 5_000, "x").next_step
    more = KvComparison(10_000, 20_000, "x").next_step
    assert "shorter --max-model-len" in fewer and "longer --max-model-len" in more


def test_the_kv_check_passes_with_a_warning_and_carries_both_numbers() -> None:
    planned = planned_serving(Deployment("demo", "us-east-1", "g5.xlarge"))
    result = check_kv_cache(Section(0, METRICS), planned, "vllm")
    assert result.ok and result.warning is (abs(result.data["drift"]) > DRIFT_LIMIT)
    assert result.data["planned_tokens"] == plan_serving("g5.xlarge").kv_tokens
    assert result.data["engine_tokens"] == label(METRICS, "kv_cache_size_tokens")
    assert check_kv_cache(Section(0, METRICS), planned, "sglang").attempted is False
    down = check_kv_cache(Section(7, "curl: (7) Failed to connect"), planned, "vllm")
    assert not down.ok and "exit 7" in down.detail


# --- what the plan recorded -------------------------------------------------------------------


def test_apply_records_the_plan_and_health_compares_with_it() -> None:
    plan = plan_serving("g6e.xlarge", max_model_len=8192)
    request = ApplyRequest("demo", "us-east-1", "g6e.xlarge", ["203.0.113.7/32"])
    request.plan_summary = plan_summary(plan)
    assert "plan_summary" not in request.terraform_variables()
    planned = planned_serving(record(request, {"instance_id": "i-0abc"}))
    assert planned.kv_tokens == plan.kv_tokens != plan_serving("g6e.xlarge").kv_tokens
    assert planned.source == "plan recorded at apply"


def test_an_older_record_falls_back_to_the_types_default_plan_and_says_so() -> None:
    planned = planned_serving(Deployment("demo", "us-east-1", "g6.xlarge"))
    assert planned.kv_tokens == plan_serving("g6.xlarge").kv_tokens
    assert "default plan for g6.xlarge" in planned.source


# --- health --deep ----------------------------------------------------------------------------

# The lines as vLLM 0.32 formats them (gpu_model_runner, gpu_worker, kv_cache_utils), with the
# A10G-budget figures measured in ../shared/gpulab (vLLM 0.26).
GPU_LOG = """\
Model loading took 16.69 GiB memory and 41.2 seconds
Available KV cache memory: 2.68 GiB
GPU KV cache size: 19,504 tokens, Maximum concurrency for 4,608 tokens per request: 4.23x
CUDA graph pool memory: 0.60 GiB (actual), 0.58 GiB (estimated), difference: 0.02 GiB (3.4%).
"""


def planned(tp: int = 1) -> PlannedServing:
    return PlannedServing(
        kv_tokens=10_112,
        tensor_parallel_size=tp,
        usable_bytes_per_gpu=20_599 * MIB,
        gpu_memory_mib=22_888,
        source="test plan",
    )


def test_the_engine_log_gives_its_memory_accounting() -> None:
    memory = parse_engine_log(GPU_LOG)
    assert (memory.weights_gib, memory.kv_cache_gib, memory.cuda_graphs_gib) == (16.69, 2.68, 0.6)
    assert memory.kv_tokens == 19_504
    result = check_engine_memory(Section(0, GPU_LOG), planned())
    assert result.ok and result.warning  # 19,504 against 10,112: +93%
    assert "weights 16.69 GiB" in result.detail and "engine 19,504 KV tokens" in result.detail
    silent = check_engine_memory(Section(0, "nothing useful\n"), planned())
    assert not silent.ok and "logs --unit vllm" in silent.hint


@pytest.mark.parametrize(
    ("used_mib", "ok", "warning"),
    [
        (19_000, True, False),  # inside the plan's budget
        (21_789, True, True),  # measured after start: over the budget, under the card
        (22_323, False, False),  # after 200 requests: within 3% of the card
    ],
)
def test_whole_process_gpu_use_against_budget_and_card(used_mib, ok, warning) -> None:
    section = Section(0, f"4242, /opt/qwen3vl/engine/bin/python3, {used_mib}\n")
    result = check_gpu_processes(section, planned())
    assert (result.ok, result.warning) == (ok, warning)
    assert result.data["used_mib"] == used_mib
    assert (used_mib > 22_888 * CARD_HEADROOM) is (not ok)


def test_tensor_parallel_processes_are_summed_over_the_gpus() -> None:
    lines = "101, python3, 19000\n102, python3, 19000\n"
    result = check_gpu_processes(Section(0, lines), planned(tp=2))
    assert result.ok and not result.warning
    assert (result.data["used_mib"], result.data["card_mib"]) == (38_000, 2 * 22_888)
    assert not check_gpu_processes(Section(0, ""), planned()).ok
    assert not check_gpu_processes(Section(9, "NVIDIA-SMI has failed"), planned()).ok
