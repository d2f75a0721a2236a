"""A fleet deployment's replicas as AWS sees them: the Auto Scaling group's instances (id, zone,
lifecycle state) joined with the load balancer's target health, and whether the fleet is healthy
(at least MIN replicas healthy in the target group). `status`, `health` and `wait` build on it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Replica:
    instance_id: str
    zone: str
    lifecycle_state: str  # Pending, InService, Terminating:Wait, ... (Auto Scaling's words)
    # healthy, initial, unhealthy, draining, unused, ... ("absent": not registered as a target)
    target_health: str
    target_reason: str  # the load balancer's reason code, "" when healthy

    def to_json(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class FleetView:
    group_name: str
    min_size: int
    max_size: int
    desired: int
    replicas: list[Replica]

    @property
    def healthy(self) -> int:
        return sum(1 for r in self.replicas if r.target_health == "healthy")

    @property
    def ok(self) -> bool:
        """Healthy when at least MIN replicas pass the load balancer's health check."""
        return self.healthy >= self.min_size

    def to_json(self) -> dict[str, Any]:
        return {
            "autoscaling_group": self.group_name,
            "min_size": self.min_size,
            "max_size": self.max_size,
            "desired_capacity": self.desired,
            "healthy_replicas": self.healthy,
            "replicas": [r.to_json() for r in self.replicas],
        }


def fleet_view(autoscaling: Any, elbv2: Any, group_name: str, target_group_arn: str) -> FleetView:
    """Read the group and its target health (two describe calls; both paginate rarely)."""
    (group,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])[
        "AutoScalingGroups"
    ]
    health = {
        d["Target"]["Id"]: d["TargetHealth"]
        for d in elbv2.describe_target_health(TargetGroupArn=target_group_arn)[
            "TargetHealthDescriptions"
        ]
    }
    replicas = [
        Replica(
            instance_id=i["InstanceId"],
            zone=i["AvailabilityZone"],
            lifecycle_state=i["LifecycleState"],
            target_health=health.get(i["InstanceId"], {}).get("State", "absent"),
            target_reason=health.get(i["InstanceId"], {}).get("Reason", ""),
        )
        for i in sorted(group["Instances"], key=lambda i: (i["AvailabilityZone"], i["InstanceId"]))
    ]
    return FleetView(
        group_name=group_name,
        min_size=group["MinSize"],
        max_size=group["MaxSize"],
        desired=group["DesiredCapacity"],
        replicas=replicas,
    )
