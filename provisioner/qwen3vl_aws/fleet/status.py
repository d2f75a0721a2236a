"""`status`, `health` and `wait` for a fleet: one document built from the group, the load
balancer and (where the command channel reaches a replica) each replica's bootstrap stage.

The same document is printed by all three with ``--json`` (tests/schemas/fleet.json). Its
``wake`` section is what a client sees now (at zero, waking, serving) and how long the last wake
from zero took (fleet/wake.py); the caller passes it in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..aws.clients import aws_errors
from ..deployment import Deployment
from ..errors import CheckFailed, Qwen3vlError, UsageError
from ..instance.endpoint import pinned_fingerprint
from .control import group_name, stopped_bounds
from .cost import ALB_USD_PER_HOUR
from .view import FleetView, fleet_view
from .wake import WakeReport

#: instance id -> the bootstrap stage its status file reached ("unknown" when unreachable).
StageReader = Callable[[str], str]
UNKNOWN = "unknown"
#: Replicas worth asking for their stage (a terminated one has no channel).
ASKABLE = ("Pending", "Pending:Wait", "Pending:Proceed", "InService")


def channel_stages(channel_of: Callable[[str], Any], *, timeout: float = 30.0) -> StageReader:
    """A :data:`StageReader` over each replica's command channel (``channel_of(instance_id)``):
    the bootstrap stage its status file reached, "not started" before it has one, and
    "unknown" when the channel cannot reach the replica (no agent yet, no permission)."""
    from ..instance.status import read_status

    def stage(instance_id: str) -> str:
        try:
            status = read_status(channel_of(instance_id), timeout=timeout)
        except Qwen3vlError:
            return UNKNOWN
        return "not started" if status is None else status.reached

    return stage


def view_of(clients: Any, record: Deployment) -> FleetView:
    group = group_name(record)
    with aws_errors(f"Reading the fleet {group} and its target health"):
        return fleet_view(
            clients.client("autoscaling"),
            clients.client("elbv2"),
            group,
            record.fleet["target_group_arn"],  # type: ignore[index]
        )


def listener_certificate(clients: Any, record: Deployment) -> str | None:
    """The HTTPS listener's certificate ARN as the load balancer has it now."""
    with aws_errors("Reading the load balancer's HTTPS listener"):
        listeners = clients.client("elbv2").describe_listeners(
            ListenerArns=[record.fleet["listener_arn"]]  # type: ignore[index]
        )["Listeners"]
    certificates = listeners[0].get("Certificates", []) if listeners else []
    return certificates[0]["CertificateArn"] if certificates else None


@dataclass
class FleetStatus:
    record: Deployment
    view: FleetView
    certificate_arn: str | None
    stages: dict[str, str]
    hourly_usd: float  # on demand, per replica
    wake: WakeReport | None

    @property
    def required(self) -> int:
        """Healthy replicas the fleet needs: MIN (0 for a fleet scaled to zero or stopped)."""
        return self.view.min_size

    @property
    def ok(self) -> bool:
        return self.view.ok

    def to_json(self) -> dict[str, Any]:
        record, view = self.record, self.view
        replicas = [
            {**r.to_json(), "bootstrap_stage": self.stages.get(r.instance_id, UNKNOWN)}
            for r in view.replicas
        ]
        running = sum(1 for r in view.replicas if r.lifecycle_state.startswith("InService"))
        return {
            "name": record.name,
            "region": record.region,
            "mode": "fleet",
            "instance_type": record.instance_type,
            "engine": record.engine,
            "endpoint": record.endpoint,
            "load_balancer_dns_name": record.fleet["load_balancer_dns_name"],  # type: ignore[index]
            "certificate": {
                "arn": self.certificate_arn,
                "cert_path": str(record.cert_path),
                "pinned_sha256": pinned_fingerprint(record),
            },
            **{k: v for k, v in view.to_json().items() if k != "replicas"},
            "ok": self.ok,
            "stopped": stopped_bounds(record) is not None,
            "replicas": replicas,
            "hourly_usd_on_demand": round(running * self.hourly_usd + ALB_USD_PER_HOUR, 4),
            "wake": self.wake.to_json() if self.wake else None,
        }

    def problem(self) -> str | None:
        """Why ``health`` fails, or None."""
        if self.ok:
            return None
        return (
            f"Only {self.view.healthy} of at least {self.required} replicas are healthy in the "
            f"target group ({describe_unhealthy(self.view)}). Run `qwen3vl-aws status` for each "
            "replica's bootstrap stage, or `qwen3vl-aws wait`."
        )


def describe_unhealthy(view: FleetView) -> str:
    parts = [
        f"{r.instance_id} {r.lifecycle_state}/{r.target_health}"
        + (f" ({r.target_reason})" if r.target_reason else "")
        for r in view.replicas
        if r.target_health != "healthy"
    ]
    return ", ".join(parts) or "no replicas running"


def fleet_status(
    clients: Any,
    record: Deployment,
    hourly_usd: float,
    stage_of: StageReader | None = None,
    *,
    wake: WakeReport | None = None,
) -> FleetStatus:
    """The fleet as it is now; ``stage_of`` reads a replica's bootstrap stage (None: skipped)."""
    view = view_of(clients, record)
    stages = (
        {
            r.instance_id: stage_of(r.instance_id)
            for r in view.replicas
            if r.lifecycle_state in ASKABLE
        }
        if stage_of is not None
        else {}
    )
    return FleetStatus(
        record=record,
        view=view,
        certificate_arn=listener_certificate(clients, record),
        stages=stages,
        hourly_usd=hourly_usd,
        wake=wake,
    )


def pin_listener_certificate(acm: Any, record: Deployment, arn: str) -> str:
    """Fetch the imported certificate's PEM from ACM and pin it at ``record.cert_path``."""
    from ..instance.endpoint import pin_certificate

    with aws_errors(f"Reading the listener's certificate {arn} from ACM"):
        pem = acm.get_certificate(CertificateArn=arn)["Certificate"]
    pin_certificate(record, pem)
    return pem


def wait_healthy(
    clients: Any,
    record: Deployment,
    *,
    timeout: float,
    progress: Callable[[FleetView, int], None] = lambda _v, _n: None,
    interval: float = 15.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> FleetView:
    """Poll until at least max(MIN, 1) replicas are healthy in the target group.

    A bounded poll (not elbv2's ``target_in_service`` waiter, which needs every target it names
    to be healthy and would wait out a replica being replaced); ``progress`` sees each view and
    the number needed. Raises ``CheckFailed`` naming the unhealthy replicas at ``timeout``.
    """
    if stopped_bounds(record) is not None:
        raise UsageError(f"Fleet {record.name!r} is stopped: `qwen3vl-aws start` brings it back.")
    deadline = clock() + timeout
    while True:
        view = view_of(clients, record)
        needed = max(view.min_size, 1)
        progress(view, needed)
        if view.healthy >= needed:
            return view
        if clock() >= deadline:
            raise CheckFailed(
                f"After {timeout:.0f}s {view.healthy} of the {needed} replicas needed are healthy "
                f"({describe_unhealthy(view)}). A new replica installs, downloads and loads the "
                "model first: run `qwen3vl-aws wait` again, or `qwen3vl-aws status`."
            )
        sleep(min(interval, max(deadline - clock(), 0)))
