"""fleet_view: the group's instances joined with the target group's health; the fleet is healthy
only with at least MIN replicas healthy behind the load balancer."""

from __future__ import annotations

import boto3
from botocore.stub import Stubber
from qwen3vl_aws.fleet.view import fleet_view

GROUP = "demo-fleet"
TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/q3vl-1/0123456789abcdef"


def _view(instances: list[tuple[str, str, str]], health: dict[str, tuple[str, str]], min_size: int):
    autoscaling = boto3.client("autoscaling", region_name="us-east-1")
    elbv2 = boto3.client("elbv2", region_name="us-east-1")
    with Stubber(autoscaling) as asg, Stubber(elbv2) as lb:
        asg.add_response(
            "describe_auto_scaling_groups",
            {
                "AutoScalingGroups": [
                    {
                        "AutoScalingGroupName": GROUP, "MinSize": min_size, "MaxSize": 4,
                        "DesiredCapacity": len(instances), "DefaultCooldown": 300,
                        "AvailabilityZones": ["us-east-1a", "us-east-1b"],
                        "HealthCheckType": "ELB", "CreatedTime": "2026-01-01T00:00:00Z",
                        "Instances": [
                            {"InstanceId": i, "AvailabilityZone": z, "LifecycleState": s,
                             "HealthStatus": "Healthy", "ProtectedFromScaleIn": False}
                            for i, z, s in instances
                        ],
                    }
                ]
            },
            {"AutoScalingGroupNames": [GROUP]},
        )  # fmt: skip
        lb.add_response(
            "describe_target_health",
            {
                "TargetHealthDescriptions": [
                    {"Target": {"Id": i, "Port": 443},
                     "TargetHealth": {"State": s, **({"Reason": r} if r else {})}}
                    for i, (s, r) in health.items()
                ]
            },
            {"TargetGroupArn": TG},
        )  # fmt: skip
        return fleet_view(autoscaling, elbv2, GROUP, TG)


def test_replicas_carry_zone_lifecycle_and_target_health() -> None:
    view = _view(
        [("i-b", "us-east-1b", "InService"), ("i-a", "us-east-1a", "Terminating:Wait"),
         ("i-c", "us-east-1b", "Pending")],
        {"i-a": ("draining", "Target.DeregistrationInProgress"), "i-b": ("healthy", "")},
        min_size=1,
    )  # fmt: skip
    assert [(r.instance_id, r.zone, r.lifecycle_state, r.target_health) for r in view.replicas] == [
        ("i-a", "us-east-1a", "Terminating:Wait", "draining"),
        ("i-b", "us-east-1b", "InService", "healthy"),
        ("i-c", "us-east-1b", "Pending", "absent"),
    ]
    assert view.replicas[0].target_reason == "Target.DeregistrationInProgress"
    assert view.to_json()["healthy_replicas"] == 1


def test_fewer_healthy_replicas_than_min_is_unhealthy() -> None:
    instances = [("i-a", "us-east-1a", "InService"), ("i-b", "us-east-1b", "InService")]
    both = {"i-a": ("healthy", ""), "i-b": ("healthy", "")}
    one = {"i-a": ("healthy", ""), "i-b": ("unhealthy", "Target.ResponseCodeMismatch")}
    assert _view(instances, both, min_size=2).ok
    assert not _view(instances, one, min_size=2).ok
    assert _view([], {}, min_size=0).ok  # scaled to zero on purpose
