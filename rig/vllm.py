"""Run a real vLLM OpenAI server (the CPU build, in its own venv) for the node tests and the demo.

The engine flags are the ones the instance's unit renders; `cpu_engine_args` swaps the GPU-only
ones for CPU equivalents, so the rest (max model length, media limits, allowed domains, ...) is
exercised as deployed.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from .procs import held_signals

REPO_ROOT = Path(__file__).resolve().parents[1]
VLLM_VENV = Path(os.environ.get("QWEN3VL_VLLM_VENV", REPO_ROOT / ".venv-vllm"))
SETUP_SCRIPT = REPO_ROOT / "scripts" / "setup-vllm-cpu.sh"
TINY_MODEL_SCRIPT = Path(__file__).resolve().parent / "tiny_model.py"
TINY_MODEL_SEED = 0
#: The instance type whose serving plan gives the flags the rig's server runs with.
RIG_INSTANCE_TYPE = "g5.xlarge"

#: KV cache for the tiny model on CPU (replaces --gpu-memory-utilization).
CPU_KV_CACHE_BYTES = "64M"
READY_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 30.0
LOG_TAIL_LINES = 60

# GPU-only flags, by whether they take a value. Each is dropped together with its value.
_GPU_FLAGS_WITH_VALUE = frozenset(
    {
        "--gpu-memory-utilization",
        "--device-memory-utilization",
        "--tensor-parallel-size",
        "-tp",
        "--pipeline-parallel-size",
        "-pp",
        "--data-parallel-size",
        "-dp",
        "--mm-encoder-tp-mode",
        "--distributed-executor-backend",
        "--max-cudagraph-capture-size",
        "--cuda-graph-sizes",
        "--compilation-config",
        "-cc",
        "--kv-cache-dtype",
        "--attention-backend",
        "--quantization",
        "-q",
    }
)
_GPU_SWITCHES = frozenset(
    {"--enable-expert-parallel", "-ep", "--async-scheduling", "--no-enforce-eager"}
)
# Set by the rig itself (loopback, its own port and name).
_RIG_FLAGS_WITH_VALUE = frozenset({"--host", "--port", "--served-model-name", "--model"})
# Added for the CPU: no graph capture or compilation (faster start), a KV cache sized in bytes.
_CPU_FLAGS = ("--enforce-eager", "--kv-cache-memory-bytes", CPU_KV_CACHE_BYTES)
# Dropped wherever they are, so the CPU ones are not given twice.
_DROPPED_WITH_VALUE = _GPU_FLAGS_WITH_VALUE | _RIG_FLAGS_WITH_VALUE | {"--kv-cache-memory-bytes"}
_DROPPED_SWITCHES = _GPU_SWITCHES | {"--enforce-eager"}


class VllmRigError(RuntimeError):
    """The vLLM venv is missing or the server did not become healthy."""


def vllm_bin() -> Path:
    """The `vllm` executable of the CPU venv; fails with how to create it."""
    exe = VLLM_VENV / "bin" / "vllm"
    if not (VLLM_VENV / ".ready").is_file() or not exe.is_file():
        raise VllmRigError(
            f"the vLLM CPU venv {VLLM_VENV} is missing or incomplete; create it with "
            f"`{SETUP_SCRIPT.relative_to(REPO_ROOT)} {VLLM_VENV}` (takes ~2 min)"
        )
    return exe


def vllm_python() -> Path:
    """The python of the CPU venv (has torch, transformers, tokenizers, safetensors)."""
    vllm_bin()
    return VLLM_VENV / "bin" / "python"


def build_tiny_model(out_dir: Path, seed: int = TINY_MODEL_SEED) -> Path:
    """Build the tiny random Qwen3-VL model into ``out_dir`` (with the vLLM venv's python)."""
    result = subprocess.run(
        [str(vllm_python()), str(TINY_MODEL_SCRIPT), str(out_dir), "--seed", str(seed)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise VllmRigError(f"building the tiny model failed:\n{result.stderr[-4000:]}")
    return Path(out_dir)


def cpu_engine_args(args: Sequence[str]) -> list[str]:
    """The unit's vLLM flags made runnable on this CPU: GPU-only flags swapped or dropped."""
    kept: list[str] = []
    skip_value = False
    for arg in args:
        if skip_value:
            skip_value = False
            continue
        name, has_inline_value, _ = arg.partition("=")
        if name in _DROPPED_WITH_VALUE:
            skip_value = not has_inline_value
        elif name not in _DROPPED_SWITCHES:
            kept.append(arg)
    if skip_value:
        raise ValueError(f"flag {args[-1]} has no value")
    return [*kept, *_CPU_FLAGS]


@dataclass(frozen=True)
class VllmServer:
    """A running vLLM OpenAI server on loopback."""

    port: int
    served_model_name: str
    model_dir: (
        Path | str
    )  # a directory, or an s3:// prefix streamed with --load-format runai_streamer
    log_path: Path
    pid: int  # the API server, leader of the process group that holds the engine processes

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def server_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for vLLM: offline (nothing is downloaded), no telemetry, no CPU pinning."""
    env = {**os.environ, **(extra or {})}
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        VLLM_NO_USAGE_STATS="1",
        DO_NOT_TRACK="1",
        # The machine is shared with other tests: don't pin OpenMP threads to cores.
        VLLM_CPU_OMP_THREADS_BIND="nobind",
    )
    return env


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _wait_healthy(process: subprocess.Popen[bytes], server: VllmServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=server.base_url, timeout=5.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise VllmRigError(
                    f"vLLM exited with code {process.returncode} before it was healthy; "
                    f"log {server.log_path}:\n{log_tail(server.log_path)}"
                )
            try:
                if client.get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
    raise VllmRigError(
        f"vLLM was not healthy within {timeout:.0f} s; log {server.log_path}:\n"
        f"{log_tail(server.log_path)}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (API server and engine core), then SIGKILL."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextmanager
def start_vllm(
    model_dir: Path | str,
    port: int,
    engine_args: Sequence[str],
    served_model_name: str,
    *,
    log_path: Path | None = None,
    timeout: float = READY_TIMEOUT_S,
    env: Mapping[str, str] | None = None,
) -> Iterator[VllmServer]:
    """Serve model_dir (a directory or an s3:// prefix) on 127.0.0.1:port with the unit's
    engine_args (CPU-adapted); always stops.

    ``env`` is laid over the rig's server environment: the unit's (rig.engine_unit), or the
    streamer's settings.
    """
    if log_path is None:
        if not isinstance(model_dir, Path):
            raise ValueError("a model streamed from a URL needs an explicit log_path")
        log_path = model_dir.parent / f"vllm-{port}.log"
    command = [
        str(vllm_bin()),
        "serve",
        str(model_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--served-model-name",
        served_model_name,
        *cpu_engine_args(engine_args),
    ]
    served = VllmServer(port, served_model_name, model_dir, log_path, 0)
    with serve(command, served, server_env(env), timeout) as server:
        yield server


@contextmanager
def serve(
    command: Sequence[str], server: VllmServer, env: Mapping[str, str], timeout: float
) -> Iterator[VllmServer]:
    """Run ``command``, a vLLM OpenAI server answering as ``server`` says, until it is healthy;
    yields ``server`` with the process's pid. Always stops the whole process group."""
    process: subprocess.Popen[bytes] | None = None
    try:
        with held_signals(), server.log_path.open("wb") as log:
            log.write(f"$ {shlex.join(command)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env),
                start_new_session=True,
            )
        running = dataclasses.replace(server, pid=process.pid)
        _wait_healthy(process, running, timeout)
        yield running
    finally:
        if process is not None:
            _stop(process)
