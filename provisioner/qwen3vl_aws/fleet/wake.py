"""What a client of a fleet sees right now, and how long the fleet took to wake last time.

Right now, from the group's desired capacity, the target group's health and the at-zero rule
(terraform/fleet_at_zero.tf):

- ``at_zero``: desired capacity 0. With the at-zero rule in force the client gets its JSON 503
  (the body and ``retry_after`` are read from the rule's fixed response); without it (the switch
  runs seconds behind the group) the load balancer's own 503, which has no JSON body.
- ``waking``: desired capacity 1 or more, no healthy target yet: the JSON 503 while the rule is
  still in force, else the load balancer's own 5xx.
- ``serving``: at least one healthy target.

The last wake: the latest scaling activity that took the group from 0 to 1 or more (its cause
says "from 0 to N"), until the first minute CloudWatch's ``HealthyHostCount`` for the target
group reached 1 (the load balancer keeps no target-health history, so this is the finest record,
to the minute). Where that metric has no data (a fresh account, or an emulator), the activity's
end (the instance launched and InService) is used instead, and ``measured_to`` says so.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from ..aws.clients import aws_errors
from ..deployment import Deployment

STAMP = "%Y-%m-%d %H:%M:%S %Z"
FROM_ZERO = re.compile(r"capacity from 0 to [1-9]")
#: How long after a wake started the healthy-host metric is searched (the longest grace period).
WAKE_SEARCH = timedelta(hours=2)
TO_HEALTHY = "first healthy target (CloudWatch HealthyHostCount, to the minute)"
TO_LAUNCHED = "instance launched and in service (no target-health history in CloudWatch)"


@dataclass(frozen=True)
class LastWake:
    started_at: datetime
    ended_at: datetime | None  # None: still waking (or the launch did not finish)
    measured_to: str  # TO_HEALTHY or TO_LAUNCHED

    @property
    def seconds(self) -> float | None:
        return None if self.ended_at is None else (self.ended_at - self.started_at).total_seconds()

    def to_json(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "seconds": self.seconds,
            "measured_to": self.measured_to,
        }


@dataclass(frozen=True)
class WakeReport:
    state: str  # at_zero, waking or serving
    desired: int
    healthy: int
    at_zero_rule_in_force: bool | None  # None: the fleet does not scale to zero (MIN > 0)
    client_status: int  # what a request gets now: 503 or 200
    client_body: dict[str, Any] | None  # the JSON 503 body, when the rule answers
    retry_after: int | None
    client_sees: str  # one sentence
    last_wake: LastWake | None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["last_wake"] = self.last_wake.to_json() if self.last_wake else None
        return data

    def lines(self) -> list[str]:
        lines = [
            f"Fleet: {self.state.replace('_', ' ')} (desired {self.desired}, "
            f"healthy {self.healthy})",
            f"A client now gets: {self.client_sees}",
        ]
        wake = self.last_wake
        if wake is None:
            lines.append("Last wake from zero: none recorded")
            return lines
        started = wake.started_at.strftime(STAMP)
        if wake.seconds is None:
            lines.append(f"Last wake from zero: started {started}, not finished")
        else:
            lines.append(
                f"Last wake from zero: {wake.seconds:.0f} s, from {started} to the "
                f"{wake.measured_to}"
            )
        return lines


def wake_report(clients: Any, record: Deployment) -> WakeReport:
    """Read the fleet's wake state; ``clients`` is a ClientFactory in the record's region."""
    fleet = record.fleet or {}
    group_name, target_group = fleet["autoscaling_group_name"], fleet["target_group_arn"]
    autoscaling, elbv2 = clients.client("autoscaling"), clients.client("elbv2")
    with aws_errors(f"Reading Auto Scaling group {group_name}"):
        (group,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])[
            "AutoScalingGroups"
        ]
        activities = autoscaling.describe_scaling_activities(AutoScalingGroupName=group_name)[
            "Activities"
        ]
    with aws_errors("Reading the load balancer's targets and rules"):
        targets = elbv2.describe_target_health(TargetGroupArn=target_group)[
            "TargetHealthDescriptions"
        ]
        rule = None
        if fleet.get("at_zero_rule_arn"):
            (rule,) = elbv2.describe_rules(RuleArns=[fleet["at_zero_rule_arn"]])["Rules"]
    desired = group["DesiredCapacity"]
    healthy = sum(1 for t in targets if t["TargetHealth"]["State"] == "healthy")
    state = "serving" if healthy else "at_zero" if desired == 0 else "waking"
    report = _client_view(state, rule)
    wake = _last_wake(activities)
    if wake is not None:
        wake = _to_first_healthy(clients.client("cloudwatch"), fleet, wake)
    return WakeReport(state=state, desired=desired, healthy=healthy, last_wake=wake, **report)


def rule_in_force(rule: dict[str, Any]) -> bool:
    """Whether the at-zero rule matches every request (condition path "/*") rather than only a
    header no client sends."""
    for condition in rule["Conditions"]:
        paths = condition.get("PathPatternConfig", {}).get("Values") or condition.get("Values", [])
        if condition["Field"] == "path-pattern" and "/*" in paths:
            return True
    return False


def _client_view(state: str, rule: dict[str, Any] | None) -> dict[str, Any]:
    in_force = None if rule is None else rule_in_force(rule)
    if in_force:
        (action,) = [a for a in rule["Actions"] if a["Type"] == "fixed-response"]
        body = json.loads(action["FixedResponseConfig"]["MessageBody"])
        retry = body.get("error", {}).get("retry_after")
        sees = f"503 with a JSON body (code scaled_to_zero, retry_after {retry} s)"
        if state == "serving":
            sees += "; a replica is healthy and the rule is switched off within seconds"
        return {"at_zero_rule_in_force": True, "client_status": 503, "client_body": body,
                "retry_after": retry, "client_sees": sees}  # fmt: skip
    if state == "serving":
        sees = "200: the replicas answer"
        status = 200
    elif state == "at_zero":
        sees = "the load balancer's own 503 (no targets; no JSON body)"
        if in_force is False:
            sees += " until the at-zero rule is switched on, within seconds"
        status = 503
    else:
        sees = "the load balancer's own 5xx while the new replica starts (no healthy target)"
        status = 503
    return {"at_zero_rule_in_force": in_force, "client_status": status, "client_body": None,
            "retry_after": None, "client_sees": sees}  # fmt: skip


def _last_wake(activities: list[dict[str, Any]]) -> LastWake | None:
    """The latest activity that took the group from 0 to 1 or more, ended at its launch."""
    wakes = [a for a in activities if FROM_ZERO.search(a.get("Cause", ""))]
    if not wakes:
        return None
    last = max(wakes, key=lambda a: a["StartTime"])
    launched = last.get("EndTime") if last.get("StatusCode") == "Successful" else None
    return LastWake(last["StartTime"], launched, TO_LAUNCHED)


def _to_first_healthy(cloudwatch: Any, fleet: dict[str, Any], wake: LastWake) -> LastWake:
    """The wake ended at the first minute with a healthy host, where CloudWatch has it."""
    dimensions = [
        {"Name": "TargetGroup", "Value": fleet["target_group_arn"].split(":")[-1]},
        {"Name": "LoadBalancer", "Value": fleet["load_balancer_arn"].split("loadbalancer/")[-1]},
    ]
    with aws_errors("Reading the target group's healthy-host history from CloudWatch"):
        result = cloudwatch.get_metric_data(
            MetricDataQueries=[{
                "Id": "healthy",
                "MetricStat": {
                    "Metric": {"Namespace": "AWS/ApplicationELB", "MetricName": "HealthyHostCount",
                               "Dimensions": dimensions},
                    "Period": 60,
                    "Stat": "Maximum",
                },
            }],
            StartTime=wake.started_at,
            EndTime=wake.started_at + WAKE_SEARCH,
            ScanBy="TimestampAscending",
        )["MetricDataResults"][0]  # fmt: skip
    healthy = [t for t, v in zip(result["Timestamps"], result["Values"], strict=True) if v >= 1]
    if not result["Timestamps"]:
        return wake
    if not healthy:
        return LastWake(wake.started_at, None, TO_HEALTHY)
    # A minute's timestamp is its start: never before the wake itself.
    return LastWake(wake.started_at, max(min(healthy), wake.started_at), TO_HEALTHY)
