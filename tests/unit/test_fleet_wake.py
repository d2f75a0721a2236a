"""fleet.wake: what a client sees now and how long the last wake took, from recorded,
boto3-shaped answers (botocore's Stubber checks every request's parameters against the API).
moto records no scaling activities and no load-balancer metrics, so these are the proof."""

from __future__ import annotations

import json
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import ANY, Stubber
from qwen3vl_aws.deployment import Deployment
from qwen3vl_aws.fleet.wake import TO_HEALTHY, TO_LAUNCHED, wake_report

GROUP = "qwen3vl-fleet"
TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/q3vl-2024/6d0ecf831eec9f09"
LB = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/qwen3vl/50dc6c495c0c9188"
RULE = (
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/qwen3vl/"
    "50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee"
)
BODY = {"error": {"message": "The fleet is scaled to zero and is starting a replica. Retry in "
                  "about 300 seconds.", "type": "server_error", "code": "scaled_to_zero",
                  "retry_after": 300}}  # fmt: skip
T0 = datetime(2026, 12, 1, 9, 0, 12, tzinfo=UTC)
# Auto Scaling's own wording for a wake by the wake alarm's step policy.
WAKE_CAUSE = (
    "At 2026-12-01T09:00:12Z a monitor alarm qwen3vl-fleet-wake in state ALARM triggered policy "
    "wake-from-zero changing the desired capacity from 0 to 1.  At 2026-12-01T09:00:20Z an "
    "instance was started in response to a difference between desired and actual capacity, "
    "increasing the capacity from 0 to 1."
)
IDLE_CAUSE = (
    "At 2026-12-01T08:30:00Z a monitor alarm qwen3vl-fleet-idle in state ALARM triggered policy "
    "idle-to-zero changing the desired capacity from 1 to 0."
)


def record(at_zero_rule: bool = True) -> Deployment:
    fleet = {"autoscaling_group_name": GROUP, "target_group_arn": TG, "load_balancer_arn": LB,
             "at_zero_rule_arn": RULE if at_zero_rule else None}  # fmt: skip
    return Deployment(name="qwen3vl", region="us-east-1", instance_type="g6.xlarge", fleet=fleet)


class Stubbed:
    """A ClientFactory stand-in whose clients answer only what the test recorded."""

    def __init__(self, stack: ExitStack) -> None:
        self.clients, self.stubs = {}, {}
        for service in ("autoscaling", "elbv2", "cloudwatch"):
            client = boto3.client(service, region_name="us-east-1", aws_access_key_id="x",
                                  aws_secret_access_key="x")  # fmt: skip
            self.clients[service] = client
            self.stubs[service] = stack.enter_context(Stubber(client))

    def client(self, service: str):
        return self.clients[service]


@pytest.fixture
def aws():
    with ExitStack() as stack:
        stubbed = Stubbed(stack)
        yield stubbed
        for stub in stubbed.stubs.values():
            stub.assert_no_pending_responses()


def group(aws: Stubbed, desired: int, activities: list[dict]) -> None:
    aws.stubs["autoscaling"].add_response(
        "describe_auto_scaling_groups",
        {"AutoScalingGroups": [{
            "AutoScalingGroupName": GROUP, "MinSize": 0, "MaxSize": 3, "DesiredCapacity": desired,
            "DefaultCooldown": 300, "AvailabilityZones": ["us-east-1a"], "HealthCheckType": "ELB",
            "CreatedTime": T0 - timedelta(days=1), "Instances": [],
        }]},
        {"AutoScalingGroupNames": [GROUP]},
    )  # fmt: skip
    aws.stubs["autoscaling"].add_response(
        "describe_scaling_activities", {"Activities": activities}, {"AutoScalingGroupName": GROUP}
    )


def targets(aws: Stubbed, *states: str) -> None:
    aws.stubs["elbv2"].add_response(
        "describe_target_health",
        {"TargetHealthDescriptions": [
            {"Target": {"Id": f"i-0{n:016x}", "Port": 443}, "TargetHealth": {"State": s}}
            for n, s in enumerate(states)
        ]},
        {"TargetGroupArn": TG},
    )  # fmt: skip


def rule(aws: Stubbed, *, on: bool) -> None:
    condition = (
        {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/*"]}} if on else
        {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Qwen3vl-At-Zero",
                                                      "Values": ["off"]}}
    )  # fmt: skip
    aws.stubs["elbv2"].add_response(
        "describe_rules",
        {"Rules": [{"RuleArn": RULE, "Priority": "1", "Conditions": [condition], "Actions": [{
            "Type": "fixed-response", "FixedResponseConfig": {
                "MessageBody": json.dumps(BODY), "StatusCode": "503",
                "ContentType": "application/json"}}]}]},
        {"RuleArns": [RULE]},
    )  # fmt: skip


def activity(cause: str, start: datetime, end: datetime | None, status: str = "Successful"):
    found = {"ActivityId": f"a-{start:%H%M%S}", "AutoScalingGroupName": GROUP, "Cause": cause,
             "StartTime": start, "StatusCode": status, "Progress": 100,
             "Description": "Launching a new EC2 instance: i-0abc"}  # fmt: skip
    return found | ({"EndTime": end} if end else {})


def healthy_hosts(aws: Stubbed, start: datetime, values: list[float]) -> None:
    aws.stubs["cloudwatch"].add_response(
        "get_metric_data",
        {"MetricDataResults": [{
            "Id": "healthy", "StatusCode": "Complete",
            "Timestamps": [start.replace(second=0) + timedelta(minutes=n)
                           for n in range(len(values))],
            "Values": values,
        }]},
        {"MetricDataQueries": [{"Id": "healthy", "MetricStat": {"Metric": {
            "Namespace": "AWS/ApplicationELB", "MetricName": "HealthyHostCount",
            "Dimensions": [
                {"Name": "TargetGroup", "Value": "targetgroup/q3vl-2024/6d0ecf831eec9f09"},
                {"Name": "LoadBalancer", "Value": "app/qwen3vl/50dc6c495c0c9188"}]},
            "Period": 60, "Stat": "Maximum"}}],
         "StartTime": start, "EndTime": ANY, "ScanBy": "TimestampAscending"},
    )  # fmt: skip


def test_at_zero_a_client_gets_the_rules_json_503_with_its_retry_after(aws) -> None:
    group(aws, 0, [activity(IDLE_CAUSE, T0 - timedelta(minutes=30), T0 - timedelta(minutes=29))])
    targets(aws)
    rule(aws, on=True)

    report = wake_report(aws, record())

    assert (report.state, report.client_status, report.retry_after) == ("at_zero", 503, 300)
    assert report.client_body == BODY
    assert report.last_wake is None
    assert report.lines()[1] == (
        "A client now gets: 503 with a JSON body (code scaled_to_zero, retry_after 300 s)"
    )
    assert json.loads(json.dumps(report.to_json()))["client_body"]["error"]["code"] == (
        "scaled_to_zero"
    )


def test_at_zero_before_the_switch_caught_up_says_it_is_the_load_balancers_own_503(aws) -> None:
    group(aws, 0, [])
    targets(aws, "draining")
    rule(aws, on=False)

    report = wake_report(aws, record())

    assert (report.state, report.client_status, report.client_body) == ("at_zero", 503, None)
    assert report.at_zero_rule_in_force is False
    assert "load balancer's own 503" in report.client_sees and "switched on" in report.client_sees


def test_waking_and_the_last_wake_until_the_first_healthy_minute(aws) -> None:
    idle = activity(IDLE_CAUSE, T0 - timedelta(hours=1), T0 - timedelta(minutes=59))
    group(aws, 1, [activity(WAKE_CAUSE, T0, T0 + timedelta(seconds=40)), idle])
    targets(aws, "initial")
    rule(aws, on=True)
    healthy_hosts(aws, T0, [0, 0, 0, 0, 0, 0, 0, 1, 1])

    report = wake_report(aws, record())

    assert (report.state, report.desired, report.healthy) == ("waking", 1, 0)
    assert report.client_status == 503 and report.client_body == BODY
    wake = report.last_wake
    assert wake.measured_to == TO_HEALTHY
    # the first minute with a healthy host starts at 09:07:00, 408 s after the wake's 09:00:12
    assert wake.ended_at == datetime(2026, 12, 1, 9, 7, tzinfo=UTC) and wake.seconds == 408
    assert report.lines()[2].startswith("Last wake from zero: 408 s, from 2026-12-01 09:00:12 UTC")


def test_without_healthy_host_history_the_wake_ends_at_the_launch_and_says_so(aws) -> None:
    group(aws, 1, [activity(WAKE_CAUSE, T0, T0 + timedelta(seconds=95))])
    targets(aws, "healthy")
    rule(aws, on=False)
    healthy_hosts(aws, T0, [])

    report = wake_report(aws, record())

    assert (report.state, report.client_status, report.client_sees) == (
        "serving",
        200,
        "200: the replicas answer",
    )
    assert report.last_wake.seconds == 95 and report.last_wake.measured_to == TO_LAUNCHED
    assert report.to_json()["last_wake"]["measured_to"] == TO_LAUNCHED


def test_a_wake_that_has_not_reached_a_healthy_host_is_not_finished(aws) -> None:
    group(aws, 1, [activity(WAKE_CAUSE, T0, None, status="InProgress")])
    targets(aws)
    rule(aws, on=True)
    healthy_hosts(aws, T0, [0, 0])

    report = wake_report(aws, record())

    assert report.last_wake.ended_at is None and report.last_wake.seconds is None
    assert report.lines()[2].endswith("not finished")


def test_a_fleet_that_never_scales_to_zero_has_no_rule_to_read(aws) -> None:
    group(aws, 2, [])
    targets(aws, "healthy", "healthy")

    report = wake_report(aws, record(at_zero_rule=False))

    assert (report.state, report.healthy, report.at_zero_rule_in_force) == ("serving", 2, None)
    assert report.lines()[2] == "Last wake from zero: none recorded"
