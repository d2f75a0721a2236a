"""Checks that hold the running engine against its serving plan, from what the instance reports.

* ``kv-cache`` (every ``health``, and ``status``): the KV tokens vLLM really allocated, read from
  its ``/metrics`` on loopback, beside the plan's prediction; a drift over
  :data:`~.engine_metrics.DRIFT_LIMIT` either way is a warning with a next step.
* ``engine-memory`` and ``gpu-processes`` (``health --deep``): the engine's own memory accounting
  from its start-up log, and the whole process's GPU memory from ``nvidia-smi
  --query-compute-apps``, against the plan's budget and the card. The whole process is what has
  to fit: vLLM sizes its KV cache inside its budget but captures CUDA graphs on top of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import CheckFailed
from ..serving.plan_record import PlannedServing
from .channel.base import CommandChannel
from .check_result import CheckResult
from .engine_metrics import KvComparison, engine_kv, metrics_script
from .status import ENGINE_UNIT, Section

MIB = 1024**2
GIB = 1024**3
#: Whole-process use above this share of the card leaves no room for a burst of requests.
CARD_HEADROOM = 0.97
#: Engine start-up log lines (vLLM 0.32 ``gpu_model_runner``, ``gpu_worker``, ``kv_cache_utils``).
ENGINE_LOG_PATTERN = (
    "Model loading took|Available KV cache memory|KV cache size: |CUDA graph pool memory"
)
COMPUTE_APPS_QUERY = "pid,process_name,used_memory"


def check_kv_cache(section: Section, planned: PlannedServing, engine: str) -> CheckResult:
    """The engine's KV capacity beside the plan's; a warning (still a pass) past the limit."""
    name = "kv-cache"
    if engine != "vllm":
        reason = f"not attempted: {engine} publishes no vLLM cache metrics"
        return CheckResult(name, False, reason, attempted=False)
    try:
        comparison = kv_comparison(section, planned)
    except CheckFailed as exc:
        return CheckResult(
            name, False, str(exc), hint="Is the engine up? `qwen3vl-aws logs --unit vllm`."
        )
    return CheckResult(
        name,
        True,
        comparison.describe(),
        hint=comparison.next_step,
        warning=comparison.warning is not None,
        data=comparison.to_dict(),
    )


def kv_comparison(section: Section, planned: PlannedServing) -> KvComparison:
    """Parse the metrics section; CheckFailed saying why when the engine did not answer."""
    if section.exit_code != 0:
        raise CheckFailed(
            f"the engine's /metrics did not answer on loopback (exit {section.exit_code}): "
            f"{section.output.strip()[-200:]}"
        )
    kv = engine_kv(section.output)
    return KvComparison(planned.kv_tokens, kv.tokens, planned.source)


def read_kv_comparison(channel: CommandChannel, planned: PlannedServing) -> KvComparison:
    """One channel round trip for ``status``: the metrics, compared with the plan."""
    result = channel.run(metrics_script(), timeout=60)
    return kv_comparison(Section(result.exit_code, result.stdout or result.stderr), planned)


# --- health --deep ----------------------------------------------------------------------------


def deep_script() -> str:
    """Read-only bash for the deep checks' sections (same markers as the snapshot)."""
    from .status import sectioned

    return sectioned(
        {
            "engine-log": f"journalctl -u {ENGINE_UNIT} -b --no-pager -o cat "
            f"| grep -E '{ENGINE_LOG_PATTERN}' | tail -n 20",
            "compute-apps": f"nvidia-smi --query-compute-apps={COMPUTE_APPS_QUERY} "
            "--format=csv,noheader,nounits",
        }
    )


@dataclass(frozen=True)
class EngineMemory:
    """What the engine's start-up log says it did with the memory (GiB; None when not logged)."""

    weights_gib: float | None
    kv_cache_gib: float | None
    cuda_graphs_gib: float | None
    kv_tokens: int | None

    def to_dict(self) -> dict[str, float | int | None]:
        return dict(self.__dict__)


def _last(pattern: str, text: str) -> str | None:
    found = re.findall(pattern, text)
    return found[-1] if found else None


def parse_engine_log(text: str) -> EngineMemory:
    """The last start's figures from vLLM's log lines (see :data:`ENGINE_LOG_PATTERN`)."""
    number = r"([0-9][0-9.,]*)"

    def gib(pattern: str) -> float | None:
        value = _last(pattern, text)
        return float(value) if value is not None else None

    tokens = _last(rf"KV cache size: {number} tokens", text)
    return EngineMemory(
        weights_gib=gib(rf"Model loading took {number} GiB"),
        kv_cache_gib=gib(rf"Available KV cache memory: {number} GiB"),
        cuda_graphs_gib=gib(rf"CUDA graph pool memory: {number} GiB \(actual\)"),
        kv_tokens=int(tokens.replace(",", "")) if tokens else None,
    )


def check_engine_memory(section: Section, planned: PlannedServing) -> CheckResult:
    """The engine's own accounting, shown beside the plan's KV prediction."""
    name = "engine-memory"
    hint = "Read the engine's start-up: `qwen3vl-aws logs --unit vllm`."
    memory = parse_engine_log(section.output)
    if section.exit_code != 0 or memory == EngineMemory(None, None, None, None):
        return CheckResult(name, False, "the engine's log has no memory accounting", hint=hint)
    shown = {
        "weights": memory.weights_gib,
        "KV cache": memory.kv_cache_gib,
        "CUDA graphs": memory.cuda_graphs_gib,
    }
    parts = [f"{label} {value:.2f} GiB" for label, value in shown.items() if value is not None]
    warning = None
    if memory.kv_tokens is not None:
        comparison = KvComparison(planned.kv_tokens, memory.kv_tokens, planned.source)
        parts.append(comparison.describe())
        warning = comparison.next_step
    return CheckResult(
        name,
        True,
        "; ".join(parts),
        hint=warning,
        warning=warning is not None,
        data={**memory.to_dict(), "planned_kv_tokens": planned.kv_tokens},
    )


def parse_compute_apps(text: str) -> list[tuple[int, str, int]]:
    """``nvidia-smi --query-compute-apps`` lines as (pid, process name, MiB)."""
    apps = []
    for line in text.strip().splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 3 or not fields[0].isdigit() or not fields[2].isdigit():
            raise CheckFailed(f"Unexpected nvidia-smi output line: {line!r}")
        apps.append((int(fields[0]), fields[1], int(fields[2])))
    return apps


def check_gpu_processes(section: Section, planned: PlannedServing) -> CheckResult:
    """Whole-process GPU memory against the plan's budget (a warning) and the card (a failure)."""
    name = "gpu-processes"
    if section.exit_code != 0:
        return CheckResult(
            name,
            False,
            f"nvidia-smi failed: {section.output.strip()[-200:]}",
            hint="The NVIDIA driver is not working: `qwen3vl-aws logs --unit bootstrap`.",
        )
    try:
        apps = parse_compute_apps(section.output)
    except CheckFailed as exc:
        return CheckResult(name, False, str(exc), hint="Run `nvidia-smi` on the instance.")
    if not apps:
        return CheckResult(
            name, False, "no process holds GPU memory", hint="`qwen3vl-aws logs --unit vllm`."
        )
    used = sum(mib for _, _, mib in apps)
    gpus = planned.tensor_parallel_size
    budget = planned.usable_bytes_per_gpu * gpus // MIB
    card = planned.gpu_memory_mib * gpus
    data = {
        "used_mib": used,
        "planned_budget_mib": budget,
        "card_mib": card,
        "processes": len(apps),
    }
    detail = (
        f"{len(apps)} process(es) use {used:,} MiB of {card:,} MiB "
        f"({used / card:.0%}); the plan's budget is {budget:,} MiB"
    )
    if used > card * CARD_HEADROOM:
        return CheckResult(
            name,
            False,
            detail + f": within {1 - CARD_HEADROOM:.0%} of the card",
            hint="A burst of requests can run out of GPU memory: re-apply with a lower "
            "--gpu-memory-utilization or a shorter --max-model-len (`qwen3vl-aws plan-serving`).",
            data=data,
        )
    over = used > budget
    return CheckResult(
        name,
        True,
        detail + (": over the plan's budget" if over else ""),
        hint="The engine uses more than planned (CUDA graphs are captured on top of vLLM's "
        "budget); watch it under load with `qwen3vl-aws health --deep`."
        if over
        else None,
        warning=over,
        data=data,
    )
