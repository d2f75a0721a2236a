"""``make demo ARGS="--replicas 2"``: the fleet's data plane on this machine (scripts/demo.py).

Two replicas, each a real vLLM (CPU build, tiny Qwen3-VL) behind its own nginx gateway, sit behind
HAProxy standing in for the Application Load Balancer, configured from the Terraform module's
target group (rig/balancer.py). Under continuous load the demo rotates the key across both
replicas, drains one with streams in flight, stops the other's engine and starts it again
(rig/fleet.py, the same run as bench/fleet.py), printing what each step showed.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from rich.markup import escape
from rich.table import Table

REPLICAS = 2  # two CPU vLLM servers: what a 2-core machine can hold


@dataclass
class FleetOutcome:
    """What the fleet demo proved, for its summary and its test."""

    report: Any = None  # rig.fleet.FleetReport
    replicas: list[dict[str, Any]] = field(default_factory=list)  # the last per-replica table
    seconds: dict[str, float] = field(default_factory=dict)


def replica_table(fleet: Any, title: str) -> Table:
    """The balancer's view of each target next to what the load got from that replica."""
    table = Table(title=title)
    for column in ("replica", "balancer", "gateway", "engine", "answered", "failed"):
        table.add_column(column)
    for row in fleet.rows():
        table.add_row(
            row["replica"], row["target"], port_of(row["gateway"]), port_of(row["engine"]),
            str(row["answered"]), str(row["failed"]),
        )  # fmt: skip
    return table


def port_of(url: str) -> str:
    return ":" + url.rsplit(":", 1)[1]


def describe_balancer(fleet: Any) -> str:
    tg = fleet.balancer.target_group
    return (
        f"HAProxy on {fleet.balancer.base_url} stands in for the ALB, configured from "
        f"terraform/fleet.tf's target group: health check GET {tg.health_path} every "
        f"{tg.interval_s} s ({tg.healthy_threshold} healthy / {tg.unhealthy_threshold} "
        f"unhealthy), {tg.algorithm} routing (HAProxy: leastconn), idle timeout "
        f"{tg.idle_timeout_s} s"
    )


def run_fleet_demo(demo: Any, stack: ExitStack) -> FleetOutcome:
    """The fleet's steps, in ``demo``'s steps (a failure names its step); ``stack`` stops
    everything on exit. The emulator must be running (``demo.start_emulator``)."""
    from rig.fleet import REPLICAS as NAMES
    from rig.fleet import running_fleet

    console, outcome = demo.console, FleetOutcome(seconds=demo.outcome.seconds)
    drained, stopped = NAMES
    with demo.step(f"{REPLICAS} replicas (vLLM + nginx gateway each) behind the stand-in ALB"):
        demo.note(
            "each replica is what one instance of the Auto Scaling group runs; both read "
            "one API key from the emulated Secrets Manager"
        )
        fleet = stack.enter_context(
            running_fleet(demo.state_dir / "fleet", demo.env["AWS_ENDPOINT_URL"], demo.note)
        )
        console.print(describe_balancer(fleet))
        console.print(replica_table(fleet, "replicas, all targets healthy"))
    load = stack.enter_context(ExitStack())
    with demo.step("continuous load through the balancer"):
        load.enter_context(fleet.under_load())
        demo.note(
            f"{fleet.load.threads} clients send short chats back to back over TLS (pinned "
            "listener certificate), re-reading the current key as a client would, never "
            "retrying: every failure is counted"
        )
    with demo.step(f"a rolling key rotation across {REPLICAS} replicas"):
        demo.note(
            "why: a key is replaced without downtime: each replica in turn accepts both keys, "
            "the new key is checked through the balancer, promoted, then each replica drops "
            "the old one"
        )
        fleet.rotate()
        result = fleet.result
        console.print(
            f"rotating the key across {REPLICAS} replicas: {result.rotate_sent} requests "
            f"during it, [bold]{result.rotate_failed} failed[/]"
        )
        if result.rotate_failed:
            raise RuntimeError(f"the rotation failed requests: {result.failures}")
    with demo.step(f"drain {drained} with streams in flight"):
        demo.note(
            "why: scale-in and instance refresh must not cut a streamed answer: the balancer "
            "sends the target nothing new (the ALB's deregistration), the replica's agent "
            "(qwen3vl-fleet wait-idle) waits until its engine has nothing running, then nginx "
            "stops gracefully; the replica then comes back, as a replacement would"
        )
        fleet.drain(drained)
        console.print(
            f"draining {drained} with {result.drain_streams} streams in flight: "
            f"[bold]{result.drain_cut} cut[/]"
        )
        if result.drain_streams == 0 or result.drain_cut:
            raise RuntimeError(
                f"{result.drain_streams} streams on {drained}, {result.drain_cut} cut"
            )
        console.print(replica_table(fleet, f"after {drained}'s drain"))
    with demo.step(f"{stopped}'s engine stops"):
        demo.note(
            "why: an engine that dies must leave the rotation by the health check alone. Until "
            "the balancer marks the target DOWN its gateway answers 503 at once, so "
            "least-outstanding routing sends it most requests, and the balancer (like the ALB) "
            "does not retry: the failures in that window are counted, and clients should retry "
            "a 503"
        )
        fleet.stop_engine(stopped)
        tg = fleet.balancer.target_group
        out_after = result.engine_stop_s + result.down_after_s
        console.print(
            f"{stopped}'s engine took {result.engine_stop_s:.1f} s to stop; the balancer "
            f"marked {stopped} DOWN {out_after:.1f} s after the stop began (checks every "
            f"{tg.interval_s} s, {tg.unhealthy_threshold} failures): "
            f"{result.engine_stop_failed} requests failed in that window, "
            f"{result.requests_to_stopped_after_down} reached {stopped} after it"
        )
        console.print(replica_table(fleet, f"{stopped} out of the rotation"))
    with demo.step(f"{stopped}'s engine starts again"):
        fleet.wake(stopped)
        console.print(
            f"{stopped} back in the rotation {result.wake_s:.1f} s after its engine started "
            f"(vLLM's start on this CPU plus {tg.healthy_threshold} health checks)"
        )
    load.close()  # the load stops; its totals are counted
    outcome.report, outcome.replicas = result, fleet.rows()
    console.print(replica_table(fleet, "the whole run"))
    console.print(
        f"load: {result.sent} requests, {result.failed} failed "
        f"({result.engine_stop_failed} of them while {stopped}'s engine was gone)"
    )
    for group in result.failures:
        demo.note(f"failed: {group}")
    console.print("[bold]What this proved[/] (real vLLM, nginx, HAProxy and key sync):")
    for line in (
        f"- a rolling key rotation across {REPLICAS} replicas failed {result.rotate_failed} "
        f"of {result.rotate_sent} requests",
        f"- draining {drained} cut {result.drain_cut} of its {result.drain_streams} streams",
        f"- a stopping engine left the rotation {out_after:.1f} s after its stop began; "
        f"{result.engine_stop_failed} requests failed before that, "
        f"{result.requests_to_stopped_after_down} reached it after",
        f"- the replica came back in {result.wake_s:.1f} s",
    ):
        console.print(escape(line))
    console.print(result.line(), markup=False)
    return outcome
