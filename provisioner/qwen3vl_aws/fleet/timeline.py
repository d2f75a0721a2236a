"""`status --timeline` for a fleet: every running replica's start timeline (instance/timeline.py),
read over that replica's own command channel and joined with EC2's launch times for it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..deployment import Deployment
from ..errors import Qwen3vlError
from ..instance.probe import describe_instance
from ..instance.timeline import Timeline, read_timeline
from .status import ASKABLE, view_of


@dataclass(frozen=True)
class ReplicaTimeline:
    instance_id: str
    zone: str
    timeline: Timeline | None
    problem: str | None  # why there is no timeline: none written yet, or the replica unreachable

    def to_json(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "zone": self.zone,
            "timeline": self.timeline.to_json() if self.timeline else None,
            "problem": self.problem,
        }


def replica_timelines(
    clients: Any, record: Deployment, channel_of: Callable[[str], Any]
) -> list[ReplicaTimeline]:
    """One entry per replica that is starting or in service (``channel_of(instance_id)`` opens
    its command channel)."""
    ec2 = clients.client("ec2")
    found = []
    for replica in view_of(clients, record).replicas:
        if replica.lifecycle_state not in ASKABLE:
            continue
        timeline, problem = None, None
        try:
            instance = describe_instance(ec2, replica.instance_id)
            if instance is not None:
                timeline = read_timeline(channel_of(replica.instance_id), instance)
            problem = None if timeline else "the bootstrap has not written its status yet"
        except Qwen3vlError as exc:
            problem = str(exc)
        found.append(ReplicaTimeline(replica.instance_id, replica.zone, timeline, problem))
    return found
