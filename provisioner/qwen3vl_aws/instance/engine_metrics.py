"""The engine as it really runs, read from vLLM's Prometheus ``/metrics`` on the instance.

vLLM 0.32 (the pinned version) publishes its cache configuration as the info gauge
``vllm:cache_config_info``, one label per ``CacheConfig`` field (``vllm/v1/metrics/loggers.py``
``log_metrics_info``): ``num_gpu_blocks`` and ``block_size`` after profiling, and
``kv_cache_size_tokens`` (the group-aware capacity, ``kv_cache_utils.update_kv_cache_capacity``).
Its counters ``vllm:request_success_total``, ``vllm:prompt_tokens_total`` and
``vllm:generation_tokens_total`` count finished requests and tokens; the bench and the warm-up
checks compare against them.

The engine listens on loopback only, so ``/metrics`` is read on the instance over the command
channel (:func:`metrics_script`), filtered there to the few families used here: an SSM answer
keeps only 24,000 characters.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import CheckFailed

#: The families read from /metrics (anything else is filtered out on the instance).
FAMILIES = (
    "vllm:cache_config_info",
    "vllm:request_success",
    "vllm:prompt_tokens",
    "vllm:generation_tokens",
)
DEPLOY_ENV = "/etc/qwen3vl/deploy.env"
DEFAULT_ENGINE_PORT = 8000
METRICS_TIMEOUT_S = 10


def metrics_script() -> str:
    """Read-only bash: the engine's /metrics on loopback, only the lines of :data:`FAMILIES`.

    The engine port comes from deploy.env (the bootstrap's own settings); curl is one of the
    packages the bootstrap installs. Exit 7 (curl's "could not connect") when the engine is down,
    3 without deploy.env.
    """
    pattern = "|".join(f.removeprefix("vllm:") for f in FAMILIES)
    return (
        f'port=$(. "${{QWEN3VL_ROOT:-}}{DEPLOY_ENV}" && '
        f'echo "${{ENGINE_PORT:-{DEFAULT_ENGINE_PORT}}}") || exit 3\n'
        f'out=$(curl -sS --fail --max-time {METRICS_TIMEOUT_S} "http://127.0.0.1:$port/metrics") '
        "|| exit $?\n"
        f"printf '%s\\n' \"$out\" | grep -E '^vllm:({pattern})(_total)?[{{ ]' || true\n"
    )


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of a Prometheus text exposition as (name, labels, value)."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        return [
            (s.name, dict(s.labels), float(s.value))
            for family in text_string_to_metric_families(text)
            for s in family.samples
        ]
    except ValueError as exc:
        raise CheckFailed(f"The engine's /metrics could not be parsed: {exc}") from exc


@dataclass(frozen=True)
class EngineKv:
    """The KV cache the engine really allocated (summed over its engine cores)."""

    tokens: int
    num_blocks: int
    block_size: int


def _int_label(labels: dict[str, str], name: str) -> int | None:
    value = labels.get(name, "None")
    return int(value) if value.isdigit() else None


def engine_kv(text: str) -> EngineKv:
    """The KV capacity from ``vllm:cache_config_info``.

    ``kv_cache_size_tokens`` where the engine publishes it (it is right for hybrid models too),
    else ``num_gpu_blocks * block_size``. Under data parallelism each engine core has its own
    cache: they are summed. A missing gauge (not vLLM, or before profiling) is CheckFailed.
    """
    infos = [labels for name, labels, _ in samples(text) if name == "vllm:cache_config_info"]
    cores = [i for i in infos if _int_label(i, "num_gpu_blocks") and _int_label(i, "block_size")]
    if not cores:
        raise CheckFailed(
            "The engine's /metrics has no vllm:cache_config_info with num_gpu_blocks: it is not "
            "vLLM, or it has not finished allocating its KV cache."
        )
    tokens = blocks = 0
    for labels in cores:
        size, count = _int_label(labels, "block_size"), _int_label(labels, "num_gpu_blocks")
        blocks += count or 0
        tokens += _int_label(labels, "kv_cache_size_tokens") or (count or 0) * (size or 0)
    return EngineKv(tokens=tokens, num_blocks=blocks, block_size=_int_label(cores[0], "block_size"))


@dataclass(frozen=True)
class EngineCounters:
    """The engine's request and token counters since it started."""

    requests: int  # finished successfully (any finish reason)
    prompt_tokens: int
    generation_tokens: int

    def __sub__(self, earlier: EngineCounters) -> EngineCounters:
        return EngineCounters(
            self.requests - earlier.requests,
            self.prompt_tokens - earlier.prompt_tokens,
            self.generation_tokens - earlier.generation_tokens,
        )


def engine_counters(text: str) -> EngineCounters:
    """Sum the counters over their labels (finish reason, engine core, model name)."""
    totals = {"vllm:request_success_total": 0.0, "vllm:prompt_tokens_total": 0.0}
    totals["vllm:generation_tokens_total"] = 0.0
    for name, _, value in samples(text):
        if name in totals:
            totals[name] += value
    return EngineCounters(*(round(v) for v in totals.values()))


# --- the plan against reality ----------------------------------------------------------------

#: Beyond this relative difference either way, the plan no longer describes the engine.
DRIFT_LIMIT = 0.15


@dataclass(frozen=True)
class KvComparison:
    """The planner's predicted KV tokens beside what the engine allocated."""

    planned_tokens: int
    engine_tokens: int
    plan_source: str  # "recorded at apply" or "default plan for <type>"

    @property
    def drift(self) -> float:
        """(engine - plan) / plan: negative when the engine holds fewer tokens than promised."""
        return (self.engine_tokens - self.planned_tokens) / self.planned_tokens

    @property
    def warning(self) -> str | None:
        """What is wrong when the drift exceeds :data:`DRIFT_LIMIT` either way, else None."""
        if abs(self.drift) <= DRIFT_LIMIT:
            return None
        direction = "fewer" if self.drift < 0 else "more"
        return (
            f"the engine holds {abs(self.drift):.0%} {direction} KV tokens than the plan "
            f"({self.engine_tokens:,} vs {self.planned_tokens:,}; limit ±{DRIFT_LIMIT:.0%})"
        )

    @property
    def next_step(self) -> str | None:
        if self.warning is None:
            return None
        if self.drift < 0:
            return (
                "Long requests will queue or be refused sooner than planned. See what else holds "
                "GPU memory: `qwen3vl-aws health --deep`; then re-apply with a shorter "
                "--max-model-len (compare `qwen3vl-aws plan-serving`)."
            )
        return (
            "The card holds more than the plan uses: re-apply with a longer --max-model-len or "
            "more --max-num-seqs (compare `qwen3vl-aws plan-serving`), after checking the "
            "whole-process GPU use with `qwen3vl-aws health --deep`."
        )

    def describe(self) -> str:
        text = (
            f"engine {self.engine_tokens:,} KV tokens, plan {self.planned_tokens:,} "
            f"({self.drift:+.0%}, {self.plan_source})"
        )
        return f"{text}: {self.warning}" if self.warning else text

    def to_dict(self) -> dict[str, object]:
        return {
            "planned_tokens": self.planned_tokens,
            "engine_tokens": self.engine_tokens,
            "drift": round(self.drift, 4),
            "plan_source": self.plan_source,
            "warning": self.warning,
            "next_step": self.next_step,
        }
