"""Measure serving plans on a real GPU: start vLLM with a plan's flags, poll the whole process's
GPU memory with nvidia-smi, read vLLM's own accounting from its log, send requests (text at the
old deployment's benchmark shape, a 1080p image, an image at the plan's cap), and print JSON.

Runs on the lent GPU machine (bench/gpu-measurements.md says how it was carried there):

    python3 bench/gpu_measure.py RUNS_JSON OUT_JSON

RUNS_JSON is a list of {"name", "model_dir", "flags", "card_mib", "cap_pixels", "env"}; each run's
``--gpu-memory-utilization`` is scaled to the named card's share of this GPU (u * card / total),
so vLLM sees the budget it would have on that card. Dummy weights: nothing is downloaded.
Standard library only, with the tree's rig/procs.py (the machine has no package registry).

Text load is measured twice per server: a cold first pass (the first requests pay a Triton compile
of the sampling kernel) and a warm pass, each with req/s, output tok/s and TTFT p50/p95 (streamed).

    python3 bench/gpu_measure.py --side-by-side RUNS_JSON OUT_JSON

compares plans for throughput: all servers start at once (each needs an explicit
``--kv-cache-memory-bytes``: vLLM's utilization sizing reads the whole card's free memory, which the
other servers change while it profiles), the cold passes run at once, then the warm passes run one
server at a time, in WARM_ROUNDS rounds (GPU_MEASURE_WARM_ROUNDS, default 2; the order reversed
every other round), same client.
"""

from __future__ import annotations

import base64
import io
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# The tree's rig/procs.py: standard library only, like this script.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rig.procs import descendants

START_TIMEOUT_S = 420
TEXT_REQUESTS = 100
CONCURRENCY = 10
PROMPT_TOKENS = 800
OUTPUT_TOKENS = 40
WARM_ROUNDS = int(os.environ.get("GPU_MEASURE_WARM_ROUNDS", "2"))  # side by side
COLD_SEED = 1000  # the warm rounds use seeds 0, 1, ...: no prompt repeats

LOG_PATTERNS = {
    "weights_gib": r"Model loading took ([\d.]+) GiB",
    "kv_gib_available": r"Available KV cache memory: ([\d.]+) GiB",
    "kv_tokens": r"GPU KV cache size: ([\d,]+) tokens",
    "graphs_gib": r"Graph capturing finished in [\d.]+ secs?, took ([-\d.]+) GiB",
    "max_concurrency": r"Maximum concurrency for [\d,]+ tokens per request: ([\d.]+)x",
}


def nvidia_smi_mib(field: str) -> int:
    """One memory figure of the (only) GPU in MiB, e.g. ``memory.used``."""
    out = subprocess.run(
        ["nvidia-smi", f"--query-gpu={field}", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out.strip())


def gpu_used_mib() -> int:
    return nvidia_smi_mib("memory.used")


class Poller(threading.Thread):
    """Keeps the highest nvidia-smi reading since the last mark."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self.stop = False

    def mark(self) -> int:
        peak, self.peak = self.peak, 0
        return peak

    def run(self) -> None:
        while not self.stop:
            self.peak = max(self.peak, gpu_used_mib())
            time.sleep(0.3)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, body: dict, timeout: float = 300) -> dict:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


def png_data_url(width: int, height: int) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    # A gradient compresses well; the encoder's cost depends on the size, not the content.
    Image.linear_gradient("L").resize((width, height)).convert("RGB").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def image_chat(base: str, name: str, width: int, height: int) -> dict:
    started = time.monotonic()
    answer = post(
        f"{base}/v1/chat/completions",
        {
            "model": name,
            "max_tokens": 8,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": png_data_url(width, height)}},
                        {"type": "text", "text": "Describe the image."},
                    ],
                }
            ],
        },
    )
    return {
        "size": f"{width}x{height}",
        "prompt_tokens": answer["usage"]["prompt_tokens"],
        "seconds": round(time.monotonic() - started, 2),
    }


def streamed_completion(base: str, name: str, prompt: list[int]) -> tuple[float, int]:
    """One streamed completion: (seconds to the first token, output tokens)."""
    body = {
        "model": name,
        "prompt": prompt,
        "max_tokens": OUTPUT_TOKENS,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    request = urllib.request.Request(
        f"{base}/v1/completions", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    started = time.monotonic()
    first: float | None = None
    tokens = 0
    with urllib.request.urlopen(request, timeout=300) as response:
        for raw in response:
            line = raw.decode().strip()
            if not line.startswith("data:") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[len("data:") :])
            if first is None and chunk.get("choices"):
                first = time.monotonic() - started
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    if first is None:
        raise RuntimeError("the stream carried no token")
    return first, tokens


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def text_load(base: str, name: str, seed: int = 0) -> dict:
    """TEXT_REQUESTS streamed completions at the old deployment's benchmark shape."""
    rng = random.Random(seed)
    prompts = [
        [rng.randrange(1000, 150000) for _ in range(PROMPT_TOKENS)] for _ in range(TEXT_REQUESTS)
    ]
    started = time.monotonic()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        answers = list(pool.map(lambda prompt: streamed_completion(base, name, prompt), prompts))
    seconds = time.monotonic() - started
    ttfts = [first for first, _ in answers]
    tokens = sum(count for _, count in answers)
    return {
        "requests": TEXT_REQUESTS,
        "concurrency": CONCURRENCY,
        "prompt_tokens": PROMPT_TOKENS,
        "output_tokens": tokens,
        "seconds": round(seconds, 2),
        "req_per_s": round(TEXT_REQUESTS / seconds, 2),
        "output_tok_per_s": round(tokens / seconds, 1),
        "ttft_p50_ms": round(1000 * percentile(ttfts, 0.5)),
        "ttft_p95_ms": round(1000 * percentile(ttfts, 0.95)),
    }


def wait_ready(base: str, process: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"vLLM exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2):
                return
        except OSError:
            time.sleep(1)
    raise RuntimeError("vLLM did not become healthy in time")


def scaled_flags(flags: list[str], card_mib: int, total_mib: int) -> list[str]:
    flags = list(flags)
    i = flags.index("--gpu-memory-utilization")
    flags[i + 1] = f"{float(flags[i + 1]) * card_mib / total_mib:.4f}"
    return flags


class Server:
    """One vLLM OpenAI server with a run's flags, its log in ``log_dir``."""

    def __init__(self, run: dict, total_mib: int, log_dir: Path) -> None:
        self.name = run["name"]
        self.base = f"http://127.0.0.1:{free_port()}"
        self.flags = scaled_flags(run["flags"], run["card_mib"], total_mib)
        self.log_path = log_dir / f"{self.name}.log"
        command = [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", run["model_dir"], "--served-model-name", self.name,
            "--load-format", "dummy", "--host", "127.0.0.1",
            "--port", self.base.rsplit(":", 1)[1], *self.flags,
        ]  # fmt: skip
        self.started = time.monotonic()
        env = {**os.environ, **run.get("env", {})}
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)

    def wait_ready(self) -> float:
        wait_ready(self.base, self.process, self.started + START_TIMEOUT_S)
        return round(time.monotonic() - self.started, 1)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_figures(self, result: dict) -> None:
        """vLLM's own accounting from its log, and the log's tail where the run failed."""
        text = self.log_path.read_text(errors="replace")
        for key, pattern in LOG_PATTERNS.items():
            found = re.findall(pattern, text)
            if found:
                result[key] = float(found[-1].replace(",", ""))
        result["log_tail"] = text[-1500:] if "error" in result else ""


def measure(run: dict, total_mib: int, poller: Poller, log_dir: Path) -> dict:
    poller.mark()
    server = Server(run, total_mib, log_dir)
    base, name = server.base, server.name
    result: dict = {"name": name, "flags": server.flags, "card_mib": run["card_mib"]}
    try:
        result["start_seconds"] = server.wait_ready()
        time.sleep(2)
        result["mib_after_start"] = gpu_used_mib()
        result["peak_mib_start"] = poller.mark()
        result["images"] = [image_chat(base, name, 1920, 1080)]
        side = int(run["cap_pixels"] ** 0.5) if run.get("cap_pixels") else 4096
        result["images"].append(image_chat(base, name, side, side))
        result["text_cold"] = text_load(base, name, seed=COLD_SEED)
        result["text"] = text_load(base, name)
        result["images"].append(image_chat(base, name, 1920, 1080))
        result["mib_after_requests"] = gpu_used_mib()
        result["peak_mib_requests"] = poller.mark()
    except Exception as exc:  # reported in the result, then the next run goes on
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        server.stop()
    server.log_figures(result)
    return result


def process_mib(servers: list[Server]) -> dict[str, int]:
    """Each server's whole GPU memory (its processes' nvidia-smi figures added up)."""
    out = subprocess.run(
        ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    used: dict[int, int] = {}
    for line in out.splitlines():
        pid, _, mib = line.partition(",")
        if pid.strip().isdigit() and mib.strip().isdigit():  # "[N/A]" where the driver hides it
            used[int(pid)] = int(mib)
    return {
        server.name: sum(used.get(pid, 0) for pid in descendants(server.process.pid))
        for server in servers
    }


def compare(runs: list[dict], total_mib: int, out: Path) -> dict:
    """Throughput of several plans on one GPU, same client, same run (see the module docstring)."""
    for run in runs:
        if "--kv-cache-memory-bytes" not in run["flags"]:
            raise SystemExit(f"{run['name']}: side by side needs --kv-cache-memory-bytes")
    results: dict = {"gpu_total_mib": total_mib, "mode": "side-by-side", "runs": {}}

    def save(note: str) -> None:
        out.write_text(json.dumps(results, indent=1))
        print(note, flush=True)

    servers = [Server(run, total_mib, out.parent) for run in runs]
    try:
        for server in servers:
            entry = results["runs"][server.name] = {"flags": server.flags, "warm": []}
            try:
                entry["start_seconds"] = server.wait_ready()
            except Exception as exc:
                entry["error"] = f"{type(exc).__name__}: {exc}"
            save(f"{server.name}: {entry.get('start_seconds', entry.get('error'))}")
        ready = [s for s in servers if "error" not in results["runs"][s.name]]
        results["mib_after_start"] = process_mib(ready)
        with ThreadPoolExecutor(len(ready) or 1) as pool:
            colds = pool.map(lambda s: text_load(s.base, s.name, seed=COLD_SEED), ready)
            for server, cold in zip(ready, colds, strict=True):
                results["runs"][server.name]["cold_all_at_once"] = cold
        save("cold passes done")
        for round_ in range(WARM_ROUNDS):
            for server in ready if round_ % 2 == 0 else ready[::-1]:
                warm = text_load(server.base, server.name, seed=round_)
                results["runs"][server.name]["warm"].append(warm)
                save(f"round {round_} {server.name}: {json.dumps(warm)}")
        results["mib_after_requests"] = process_mib(ready)
    finally:
        for server in servers:
            server.stop()
            server.log_figures(results["runs"][server.name])
    save("done")
    return results


def main() -> None:
    args = sys.argv[1:]
    side_by_side = args[:1] == ["--side-by-side"]
    runs_path, out = (Path(arg) for arg in args[side_by_side:])
    runs = json.loads(runs_path.read_text())
    os.environ.setdefault("VLLM_USE_FLASHINFER_SAMPLER", "0")
    total = nvidia_smi_mib("memory.total")
    if side_by_side:
        compare(runs, total, out)
        return
    poller = Poller()
    poller.start()
    results = {"gpu_total_mib": total, "runs": []}
    for run in runs:
        results["runs"].append(measure(run, total, poller, out.parent))
        out.write_text(json.dumps(results, indent=1))
        print(json.dumps(results["runs"][-1]), flush=True)
    poller.stop = True


if __name__ == "__main__":
    main()
