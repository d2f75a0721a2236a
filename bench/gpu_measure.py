"""Measure serving plans on a real GPU: start vLLM with a plan's flags, poll the whole process's
GPU memory with nvidia-smi, read vLLM's own accounting from its log, send requests (text at the
old deployment's benchmark shape, a 1080p image, an image at the plan's cap), and print JSON.

Runs on the lent GPU machine (bench/gpu-measurements.md says how it was carried there):

    python3 bench/gpu_measure.py RUNS_JSON OUT_JSON

RUNS_JSON is a list of {"name", "model_dir", "flags", "card_mib", "cap_pixels", "env"}; each run's
``--gpu-memory-utilization`` is scaled to the named card's share of this GPU (u * card / total),
so vLLM sees the budget it would have on that card. Dummy weights: nothing is downloaded.
Standard library only (the machine has no package registry).
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

START_TIMEOUT_S = 420
TEXT_REQUESTS = 100
CONCURRENCY = 10
PROMPT_TOKENS = 800
OUTPUT_TOKENS = 40

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


def text_load(base: str, name: str) -> dict:
    rng = random.Random(0)

    def one(_: int) -> int:
        prompt = [rng.randrange(1000, 150000) for _ in range(PROMPT_TOKENS)]
        body = {
            "model": name,
            "prompt": prompt,
            "max_tokens": OUTPUT_TOKENS,
            "ignore_eos": True,
        }
        return post(f"{base}/v1/completions", body)["usage"]["completion_tokens"]

    started = time.monotonic()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        tokens = sum(pool.map(one, range(TEXT_REQUESTS)))
    seconds = time.monotonic() - started
    return {
        "requests": TEXT_REQUESTS,
        "output_tokens": tokens,
        "seconds": round(seconds, 2),
        "req_per_s": round(TEXT_REQUESTS / seconds, 2),
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


def measure(run: dict, total_mib: int, poller: Poller, log_dir: Path) -> dict:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    name = run["name"]
    flags = scaled_flags(run["flags"], run["card_mib"], total_mib)
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", run["model_dir"], "--served-model-name", name,
        "--load-format", "dummy", "--host", "127.0.0.1", "--port", str(port),
        *flags,
    ]  # fmt: skip
    log_path = log_dir / f"{name}.log"
    result: dict = {"name": name, "flags": flags, "card_mib": run["card_mib"]}
    started = time.monotonic()
    poller.mark()
    env = {**os.environ, **run.get("env", {})}
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_ready(base, process, started + START_TIMEOUT_S)
        result["start_seconds"] = round(time.monotonic() - started, 1)
        time.sleep(2)
        result["mib_after_start"] = gpu_used_mib()
        result["peak_mib_start"] = poller.mark()
        result["images"] = [image_chat(base, name, 1920, 1080)]
        side = int(run["cap_pixels"] ** 0.5) if run.get("cap_pixels") else 4096
        result["images"].append(image_chat(base, name, side, side))
        result["text"] = text_load(base, name)
        result["images"].append(image_chat(base, name, 1920, 1080))
        result["mib_after_requests"] = gpu_used_mib()
        result["peak_mib_requests"] = poller.mark()
    except Exception as exc:  # reported in the result, then the next run goes on
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    text = log_path.read_text(errors="replace")
    for key, pattern in LOG_PATTERNS.items():
        found = re.findall(pattern, text)
        if found:
            result[key] = float(found[-1].replace(",", ""))
    result["log_tail"] = text[-1500:] if "error" in result else ""
    return result


def main() -> None:
    runs = json.loads(Path(sys.argv[1]).read_text())
    out = Path(sys.argv[2])
    os.environ.setdefault("VLLM_USE_FLASHINFER_SAMPLER", "0")
    total = nvidia_smi_mib("memory.total")
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
