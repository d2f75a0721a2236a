"""What ``status`` reports: the recorded deployment joined with EC2's view and the price."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..aws.pricing import Price
from ..deployment import Deployment

if TYPE_CHECKING:
    from .channel.base import CommandChannel


def deployment_status(
    deployment: Deployment,
    instance: dict[str, Any] | None,
    price: Price,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The ``status --json`` document.

    ``cert_path`` is where the endpoint's certificate is pinned (clients verify TLS with it; the
    file exists once ``wait`` or ``apply`` has fetched it), ``served_model_name`` the name
    requests send as "model".

    ``uptime_seconds`` and ``cost_since_launch_usd`` count from the instance's last launch (EC2
    resets LaunchTime on every start) and are null while it is not running.
    """
    now = now or datetime.now(UTC)
    state = instance["State"]["Name"] if instance else "not-found"
    if not deployment.extra.get("complete", True) and instance is None:
        state = "incomplete"
    launched = instance.get("LaunchTime") if instance else None
    uptime = (now - launched).total_seconds() if launched and state == "running" else None
    return {
        "name": deployment.name,
        "region": deployment.region,
        "state": state,
        "instance_type": instance["InstanceType"] if instance else deployment.instance_type,
        "instance_id": deployment.instance_id,
        "endpoint": deployment.endpoint,
        "public_ip": deployment.public_ip,
        "cert_path": str(deployment.cert_path),
        "served_model_name": deployment.served_model_name,
        "engine": deployment.engine,
        "transport": deployment.transport,
        "hourly_usd": price.usd_per_hour,
        "price_source": price.source,
        "launched_at": launched.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if launched
        else None,
        "uptime_seconds": round(uptime) if uptime is not None else None,
        "cost_since_launch_usd": round(uptime / 3600 * price.usd_per_hour, 4)
        if uptime is not None
        else None,
    }


def kv_cache_report(
    deployment: Deployment, channel: Callable[[], CommandChannel]
) -> dict[str, Any] | None:
    """The engine's KV capacity beside the plan's (``status``'s ``kv_cache``), over the command
    channel (``channel`` opens it); ``{"error": ...}`` when it cannot be read, None for an engine
    without the metrics."""
    from ..errors import Qwen3vlError
    from ..serving.plan_record import planned_serving
    from .engine_checks import read_kv_comparison

    if deployment.engine != "vllm":
        return None
    try:
        return read_kv_comparison(channel(), planned_serving(deployment)).to_dict()
    except Qwen3vlError as exc:
        return {"error": str(exc)}
