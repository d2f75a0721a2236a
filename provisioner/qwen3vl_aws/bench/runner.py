"""``qwen3vl-aws bench``: load an OpenAI chat endpoint the way the old deployment measured it.

The default shape is the old deployment's benchmark: 10 concurrent clients, prompts of 700-900
tokens, 40 output tokens. Every request streams (``stream_options.include_usage``), so each one
gives its time to first token, the gaps between tokens and the engine's own token counts; the
sums are what the engine's ``/metrics`` counters and the gateway's access log record for the same
run. A warm-up pass (one request per client of the largest level) runs first and is reported
apart, so one-off compiles do not pollute the measured levels.

``run_bench`` takes any ``httpx.Client`` whose base URL is the OpenAI base (``.../v1``): the
deployment's pinned-TLS client or a plain one for ``--base-url``.
"""

from __future__ import annotations

import base64
import itertools
import json
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import httpx

from ..errors import UsageError

#: The old deployment's benchmark shape.
DEFAULT_CONCURRENCY = (10,)
DEFAULT_PROMPT_TOKENS = (700, 900)
DEFAULT_OUTPUT_TOKENS = 40
DEFAULT_REQUESTS = 100  # per concurrency level, when neither --requests nor --duration is given
FULL_HD = (1920, 1080)
#: Short common English words, about one token each in a BPE vocabulary like Qwen's,
#: so a prompt of N words is close to N tokens; the report counts what the engine says.
_WORD_LIST = (
    "time year people way day man thing woman life child world school state family student "
    "group country problem hand part place case week company system program question work "
    "government number night point home water room mother area money story fact month lot "
    "right study book eye job word business issue side kind head house service friend father "
    "power hour game line end member law car city community name president team minute idea "
    "kid body information back parent face others level office door health person art war "
    "history party result change morning reason research girl guy moment air teacher force "
)
WORDS = tuple(_WORD_LIST.split())


@dataclass(frozen=True)
class BenchConfig:
    """What to send and how hard."""

    model: str
    concurrency: tuple[int, ...] = DEFAULT_CONCURRENCY
    requests: int | None = None  # per level
    duration_s: float | None = None  # per level (requests started before the end complete)
    prompt_tokens: tuple[int, int] = DEFAULT_PROMPT_TOKENS
    output_tokens: int = DEFAULT_OUTPUT_TOKENS
    images: int = 0  # per request
    image_size: tuple[int, int] = FULL_HD
    warmup: int | None = None  # requests; default one per client of the largest level
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.concurrency or min(self.concurrency) < 1:
            raise UsageError("--concurrency takes positive integers, e.g. 1,4,16.")
        if self.requests is not None and self.duration_s is not None:
            raise UsageError("Give --requests or --duration, not both.")
        if (self.requests is not None and self.requests < 1) or (
            self.duration_s is not None and self.duration_s <= 0
        ):
            raise UsageError("--requests and --duration must be positive.")
        low, high = self.prompt_tokens
        if not 1 <= low <= high:
            raise UsageError("--prompt-tokens takes MIN-MAX with 1 <= MIN <= MAX, e.g. 700-900.")
        if self.output_tokens < 1 or self.images < 0 or (self.warmup or 0) < 0:
            raise UsageError(
                "--output-tokens must be positive; --images and --warmup not negative."
            )

    @property
    def per_level(self) -> int | None:
        """Requests per level (None when the level runs for a duration)."""
        if self.duration_s is not None:
            return None
        return self.requests or DEFAULT_REQUESTS

    @property
    def warmup_requests(self) -> int:
        return max(self.concurrency) if self.warmup is None else self.warmup


@dataclass(frozen=True)
class RequestResult:
    """One streamed chat request as the client saw it."""

    ok: bool
    latency_s: float
    ttft_s: float | None = None
    itl_s: float | None = None  # mean gap between streamed tokens
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) with linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class LevelReport:
    """One concurrency level (or the warm-up pass), summarised."""

    concurrency: int
    requests: int
    errors: int
    duration_s: float
    ttft_p50_s: float | None
    ttft_p95_s: float | None
    itl_mean_s: float | None
    output_tokens_per_s: float
    requests_per_s: float
    prompt_tokens: int
    completion_tokens: int
    error_samples: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, concurrency: int, results: Sequence[RequestResult], wall_s: float) -> LevelReport:
        ok = [r for r in results if r.ok]
        ttfts = [r.ttft_s for r in ok if r.ttft_s is not None]
        itls = [r.itl_s for r in ok if r.itl_s is not None]
        completion = sum(r.completion_tokens for r in ok)
        wall = max(wall_s, 1e-9)
        return cls(
            concurrency=concurrency,
            requests=len(results),
            errors=len(results) - len(ok),
            duration_s=wall_s,
            ttft_p50_s=percentile(ttfts, 0.50),
            ttft_p95_s=percentile(ttfts, 0.95),
            itl_mean_s=sum(itls) / len(itls) if itls else None,
            output_tokens_per_s=completion / wall,
            requests_per_s=len(ok) / wall,
            prompt_tokens=sum(r.prompt_tokens for r in ok),
            completion_tokens=completion,
            error_samples=sorted({r.error for r in results if r.error})[:3],
        )


@dataclass(frozen=True)
class BenchReport:
    """The warm-up pass and each measured level."""

    config: BenchConfig
    warmup: LevelReport | None
    levels: list[LevelReport]

    def totals(self) -> dict[str, int]:
        """Requests sent and tokens answered over the whole run, warm-up included."""
        passes = [*([self.warmup] if self.warmup else []), *self.levels]
        return {
            "requests": sum(p.requests for p in passes),
            "succeeded": sum(p.requests - p.errors for p in passes),
            "prompt_tokens": sum(p.prompt_tokens for p in passes),
            "completion_tokens": sum(p.completion_tokens for p in passes),
        }

    def to_dict(self) -> dict[str, Any]:
        config = asdict(self.config)
        return {
            "config": config,
            "warmup": asdict(self.warmup) if self.warmup else None,
            "levels": [asdict(level) for level in self.levels],
            "totals": self.totals(),
        }


class Progress(Protocol):
    """Where the runner reports as it goes (the CLI draws a progress bar)."""

    def start(self, label: str, total: int | None) -> None: ...

    def advance(self, result: RequestResult) -> None: ...


# --- requests ---------------------------------------------------------------------------------


def prompt_text(rng: random.Random, tokens: int, tag: int) -> str:
    """About ``tokens`` tokens of words; the request number first, so no two prompts share a
    cached prefix."""
    words = [f"Request {tag}:"] + [rng.choice(WORDS) for _ in range(max(tokens - 3, 1))]
    return " ".join(words)


def image_url(width: int, height: int) -> str:
    from ..instance.sample_image import gradient_png

    return "data:image/png;base64," + base64.b64encode(gradient_png(width, height)).decode()


def chat_payload(config: BenchConfig, text: str, image: str | None) -> dict[str, Any]:
    content: Any = text
    if config.images:
        content = [{"type": "image_url", "image_url": {"url": image}}] * config.images
        content = [*content, {"type": "text", "text": text}]
    return {
        "model": config.model,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": config.output_tokens,
        # vLLM and SGLang: exactly max_tokens tokens, as the old benchmark measured.
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def _error(response: httpx.Response) -> str:
    response.read()
    return f"HTTP {response.status_code}: {response.text[:200]}"


def stream_chat(
    http: httpx.Client, payload: dict[str, Any], clock: Callable[[], float] = time.perf_counter
) -> RequestResult:
    """Send one streamed chat; time its tokens; never raises for a failed request."""
    started = clock()
    token_times: list[float] = []
    usage: dict[str, Any] = {}
    try:
        with http.stream("POST", "chat/completions", json=payload) as response:
            if response.status_code != 200:
                return RequestResult(False, clock() - started, error=_error(response))
            for line in response.iter_lines():
                if not line.startswith("data:") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[5:])
                if chunk.get("usage"):
                    usage = chunk["usage"]
                delta = (chunk.get("choices") or [{}])[0].get("delta") or {}
                if delta.get("content") or delta.get("reasoning_content"):
                    token_times.append(clock())
    except (httpx.HTTPError, ValueError) as exc:
        return RequestResult(False, clock() - started, error=f"{type(exc).__name__}: {exc}")
    latency = clock() - started
    if not token_times or not usage:
        return RequestResult(False, latency, error="the stream carried no tokens or no usage")
    gaps = [b - a for a, b in itertools.pairwise(token_times)]
    return RequestResult(
        ok=True,
        latency_s=latency,
        ttft_s=token_times[0] - started,
        itl_s=sum(gaps) / len(gaps) if gaps else None,
        prompt_tokens=int(usage.get("prompt_tokens", 0)),
        completion_tokens=int(usage.get("completion_tokens", 0)),
    )


# --- levels -----------------------------------------------------------------------------------


class _Work:
    """Hands out request numbers until the count or the deadline is reached (thread-safe)."""

    def __init__(self, count: int | None, deadline: float | None, clock: Callable[[], float]):
        self._count, self._deadline, self._clock = count, deadline, clock
        self._next = 0
        self._lock = threading.Lock()

    def take(self) -> int | None:
        with self._lock:
            if self._count is not None and self._next >= self._count:
                return None
            if self._deadline is not None and self._clock() >= self._deadline:
                return None
            self._next += 1
            return self._next


def run_level(
    http: httpx.Client,
    config: BenchConfig,
    concurrency: int,
    *,
    count: int | None,
    duration_s: float | None,
    first_tag: int,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> LevelReport:
    """``concurrency`` clients sending back to back until ``count`` requests or ``duration_s``."""
    image = image_url(*config.image_size) if config.images else None
    started = clock()
    work = _Work(count, started + duration_s if duration_s else None, clock)
    results: list[RequestResult] = []
    lock = threading.Lock()

    def client() -> None:
        while (number := work.take()) is not None:
            rng = random.Random(config.seed * 1_000_003 + first_tag + number)
            tokens = rng.randint(*config.prompt_tokens)
            payload = chat_payload(config, prompt_text(rng, tokens, first_tag + number), image)
            result = stream_chat(http, payload, clock)
            with lock:
                results.append(result)
            if progress:
                progress.advance(result)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for future in [pool.submit(client) for _ in range(concurrency)]:
            future.result()
    return LevelReport.of(concurrency, results, clock() - started)


def run_bench(
    http: httpx.Client,
    config: BenchConfig,
    *,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> BenchReport:
    """The warm-up pass, then each concurrency level in turn."""
    warmup = None
    tag = 0
    if config.warmup_requests:
        width = max(config.concurrency)
        if progress:
            progress.start("warm-up", config.warmup_requests)
        warmup = run_level(
            http, config, width, count=config.warmup_requests, duration_s=None,
            first_tag=tag, progress=progress, clock=clock,
        )  # fmt: skip
        tag += warmup.requests
    levels = []
    for concurrency in config.concurrency:
        if progress:
            progress.start(f"{concurrency} clients", config.per_level)
        level = run_level(
            http, config, concurrency, count=config.per_level, duration_s=config.duration_s,
            first_tag=tag, progress=progress, clock=clock,
        )  # fmt: skip
        tag += level.requests
        levels.append(level)
    return BenchReport(config, warmup, levels)


# --- where to send ----------------------------------------------------------------------------


def _options(max_connections: int) -> dict[str, Any]:
    return {
        "timeout": httpx.Timeout(300.0, connect=10.0),
        "limits": httpx.Limits(max_connections=max_connections),
    }


def openai_client(base_url: str, api_key: str | None, max_connections: int) -> httpx.Client:
    """A client for any OpenAI base URL (``https://host/v1``), verifying TLS as usual."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.Client(
        base_url=base_url.rstrip("/") + "/", headers=headers, **_options(max_connections)
    )


def deployment_client(deployment: Any, api_key: str, max_connections: int) -> httpx.Client:
    """The deployment's pinned-TLS client (the one ``health`` uses), based at ``/v1/``."""
    from ..instance.endpoint import pinned_client

    return pinned_client(deployment, api_key, path="/v1/", **_options(max_connections))
