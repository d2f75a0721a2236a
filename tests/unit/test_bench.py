"""``bench``: the runner against a scripted streaming endpoint (httpx.MockTransport), the report's
arithmetic, the options and the chart. The same runner against real nginx + vLLM is in
tests/node/test_bench_rig.py."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import threading
import time

import httpx
import pytest
from click.testing import CliRunner
from qwen3vl_aws.bench.runner import (
    BenchConfig,
    LevelReport,
    RequestResult,
    chat_payload,
    percentile,
    run_bench,
    stream_chat,
)
from qwen3vl_aws.cli import cli
from qwen3vl_aws.errors import UsageError
from test_json_schemas import validate_output

KEY = "sk-qwen-" + "b" * 43


class FakeEngine:
    """Streams ``len(prompt words)`` prompt tokens and ``max_tokens`` one-token chunks, like
    vLLM's SSE answers; records what it was sent and how many requests ran at once."""

    def __init__(self, fail_every: int = 0, delay_s: float = 0.0, gather: int = 0) -> None:
        self.bodies: list[dict] = []
        self.fail_every, self.delay_s = fail_every, delay_s
        # ``gather``: hold each request until that many are in flight (or 10 s pass), so a test of
        # concurrency does not depend on how fast this machine schedules the client's threads.
        self.gathered = threading.Barrier(gather) if gather else None
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"data": [{"id": "listed-model"}]})
        assert request.headers["authorization"] == f"Bearer {KEY}"
        body = json.loads(request.content)
        with self.lock:
            self.bodies.append(body)
            number = len(self.bodies)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.gathered is not None and not self.gathered.broken:
                with contextlib.suppress(threading.BrokenBarrierError):
                    self.gathered.wait(timeout=10)
            time.sleep(self.delay_s)
            if self.fail_every and number % self.fail_every == 0:
                return httpx.Response(400, text='{"error": "image too large"}')
            return httpx.Response(200, content=self.sse(body))
        finally:
            with self.lock:
                self.in_flight -= 1

    @staticmethod
    def prompt_tokens(body: dict) -> int:
        content = body["messages"][0]["content"]
        text = content if isinstance(content, str) else content[-1]["text"]
        return len(text.split())

    def sse(self, body: dict) -> bytes:
        chunks = [{"choices": [{"delta": {"role": "assistant", "content": ""}}]}]
        chunks += [{"choices": [{"delta": {"content": "w"}}]}] * body["max_tokens"]
        usage = {"prompt_tokens": self.prompt_tokens(body), "completion_tokens": body["max_tokens"]}
        chunks.append({"choices": [], "usage": usage})
        lines = [f"data: {json.dumps(c)}\n\n" for c in chunks] + ["data: [DONE]\n\n"]
        return "".join(lines).encode()


def client(engine: FakeEngine) -> httpx.Client:
    return httpx.Client(
        base_url="http://engine.test/v1/",
        transport=httpx.MockTransport(engine),
        headers={"Authorization": f"Bearer {KEY}"},
    )


def config(**kw) -> BenchConfig:
    return BenchConfig(**{"model": "m", **kw})


def test_the_default_is_the_old_deployments_shape() -> None:
    engine = FakeEngine(delay_s=0.01, gather=10)
    report = run_bench(client(engine), config(requests=30))
    sent = engine.bodies
    assert len(sent) == 10 + 30  # warm-up: one request per client, then the measured level
    assert engine.most_in_flight == 10
    assert all(700 <= FakeEngine.prompt_tokens(b) <= 900 for b in sent)
    assert {b["max_tokens"] for b in sent} == {40}
    assert all(b["stream"] and b["stream_options"] == {"include_usage": True} for b in sent)
    assert len({b["messages"][0]["content"][:20] for b in sent}) == len(sent)  # no shared prefix
    level = report.levels[0]
    assert (report.warmup.requests, level.requests, level.errors) == (10, 30, 0)
    assert level.completion_tokens == 30 * 40
    assert level.prompt_tokens == sum(FakeEngine.prompt_tokens(b) for b in sent[10:])
    assert report.totals()["requests"] == len(sent)


def test_a_sweep_runs_each_level_with_that_many_clients() -> None:
    engine = FakeEngine(delay_s=0.02)
    seen = []

    class Recorder:
        def start(self, label: str, total: int | None) -> None:
            seen.append((label, total))
            engine.most_in_flight = 0

        def advance(self, result: RequestResult) -> None:
            seen.append(result.ok)

    report = run_bench(
        client(engine), config(concurrency=(1, 4), requests=8, warmup=0), progress=Recorder()
    )
    assert report.warmup is None
    assert [lv.concurrency for lv in report.levels] == [1, 4]
    assert engine.most_in_flight == 4
    assert [s for s in seen if isinstance(s, tuple)] == [("1 clients", 8), ("4 clients", 8)]
    assert seen.count(True) == 16


def test_duration_mode_stops_starting_requests_at_the_deadline() -> None:
    engine = FakeEngine(delay_s=0.05)
    started = time.perf_counter()
    report = run_bench(client(engine), config(concurrency=(2,), duration_s=0.3, warmup=0))
    took = time.perf_counter() - started
    level = report.levels[0]
    assert 2 <= level.requests <= 2 * (0.3 / 0.05 + 1)
    assert took < 0.3 + 0.05 * 3


def test_errors_are_counted_and_sampled_not_raised() -> None:
    engine = FakeEngine(fail_every=3)
    level = run_bench(client(engine), config(concurrency=(1,), requests=9, warmup=0)).levels[0]
    assert (level.requests, level.errors) == (9, 3)
    assert level.error_samples == ['HTTP 400: {"error": "image too large"}']
    assert level.completion_tokens == 6 * 40


def test_ttft_and_inter_token_latency_come_from_the_stream() -> None:
    ticks = iter(range(1000))  # each clock reading is one second later than the last

    def clock() -> float:
        return float(next(ticks))

    payload = chat_payload(config(output_tokens=5), "hello there", None)
    result = stream_chat(client(FakeEngine()), payload, clock)
    # started at 0; the five content chunks read at 1..5 (the role chunk carries no token)
    assert (result.ttft_s, result.itl_s) == (1.0, 1.0)
    assert (result.prompt_tokens, result.completion_tokens) == (2, 5)


def test_images_are_attached_to_every_request() -> None:
    from PIL import Image

    engine = FakeEngine()
    run_bench(client(engine), config(requests=2, warmup=0, images=2, image_size=(320, 200)))
    content = engine.bodies[0]["messages"][0]["content"]
    images = [p for p in content if p["type"] == "image_url"]
    assert len(images) == 2 and content[-1]["type"] == "text"
    data = base64.b64decode(images[0]["image_url"]["url"].split(",", 1)[1])
    assert Image.open(io.BytesIO(data)).size == (320, 200)


def test_level_arithmetic() -> None:
    ok = [RequestResult(True, 2.0, ttft_s=t, itl_s=0.1, completion_tokens=40) for t in (1, 2, 3, 4)]
    results = [*ok, RequestResult(False, 1.0, error="boom")]
    level = LevelReport.of(4, results, wall_s=2.0)
    assert (level.requests, level.errors) == (5, 1)
    assert level.ttft_p50_s == pytest.approx(2.5)  # between the 2nd and 3rd of four
    assert level.ttft_p95_s == pytest.approx(3.85)  # 95% of the way from the 1st to the 4th
    assert level.output_tokens_per_s == 80.0 and level.requests_per_s == 2.0
    assert percentile([], 0.5) is None and percentile([3.0], 0.95) == 3.0


@pytest.mark.parametrize(
    "kw",
    [
        {"concurrency": ()},
        {"concurrency": (0,)},
        {"requests": 5, "duration_s": 2.0},
        {"requests": 0},
        {"prompt_tokens": (900, 700)},
        {"output_tokens": 0},
        {"images": -1},
    ],
)
def test_bad_settings_are_refused(kw) -> None:
    with pytest.raises(UsageError):
        config(**kw)


# --- the command ------------------------------------------------------------------------------


@pytest.fixture
def fake_openai(monkeypatch) -> FakeEngine:
    """--base-url answered by a FakeEngine (the runner's client factory swapped)."""
    engine = FakeEngine()

    def factory(base_url, api_key, max_connections):
        assert base_url == "https://llm.example.test/v1" and api_key == KEY
        return client(engine)

    monkeypatch.setattr("qwen3vl_aws.bench.runner.openai_client", factory)
    return engine


def test_command_json_table_and_key_from_the_environment(fake_openai, tmp_path) -> None:
    args = ["bench", "--base-url", "https://llm.example.test/v1", "--requests", "4"]
    result = CliRunner().invoke(
        cli, [*args, "--concurrency", "1,2", "--json"], env={"QWEN3VL_API_KEY": KEY}
    )
    assert result.exit_code == 0, result.output
    doc = validate_output("bench", result.stdout)
    assert doc["config"]["model"] == "listed-model"
    assert doc["totals"]["requests"] == 2 + 4 + 4
    assert KEY not in result.output

    chart = tmp_path / "bench.png"
    result = CliRunner().invoke(  # the key from stdin this time
        cli,
        [*args, "--chart", str(chart), "--prompt-tokens", "5-8", "--key-stdin"],
        input=KEY,
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "warm-up" in result.output and "measured" in result.output
    assert chart.read_bytes().startswith(b"\x89PNG")


def test_bad_options_are_refused_before_anything_is_sent(fake_openai) -> None:
    base = ["bench", "--base-url", "https://llm.example.test/v1"]
    for extra in (["--concurrency", "1,x"], ["--prompt-tokens", "a-b"], ["--image-size", "big"]):
        result = CliRunner().invoke(cli, [*base, *extra], env={"QWEN3VL_API_KEY": KEY})
        assert result.exit_code == 2, result.output
    result = CliRunner().invoke(
        cli, [*base, "--requests", "3", "--duration", "5"], env={"QWEN3VL_API_KEY": KEY}
    )
    assert result.exit_code == 2 and "not both" in result.output
    assert fake_openai.bodies == []


def test_when_every_request_fails_the_exit_code_says_so(monkeypatch) -> None:
    engine = FakeEngine(fail_every=1)
    monkeypatch.setattr("qwen3vl_aws.bench.runner.openai_client", lambda *a: client(engine))
    result = CliRunner().invoke(
        cli,
        ["bench", "--base-url", "https://x.test/v1", "--model", "m", "--requests", "2"],
        env={"QWEN3VL_API_KEY": KEY},
    )
    assert result.exit_code == 7
    assert "All 2 measured requests failed: HTTP 400" in result.output
