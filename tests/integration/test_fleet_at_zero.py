"""The at-zero 503 rule of a MIN = 0 fleet is in force only while its group is at zero, switched
by AWS's own engines (terraform/fleet_at_zero.tf): an EventBridge rule on the group's lifecycle
events starts an SSM Automation runbook that turns the listener rule on at zero and off once the
new replica's target is healthy.

Applied with real Terraform against the enforcing emulator. moto never delivers events nor runs
runbooks, so: the event pattern is matched with moto's own EventBridge matcher and the target's
input transformer applied to sample events of the group; the runbook's steps run in rig.automation
as its own role (assumed, IAM enforced, every call's resource checked against the role's real
policy) against moto's real listener rule, group and target health (moto reports a running
registered instance healthy, a stopped one unused); the events role's grant is evaluated for the
exact StartAutomationExecution and PassRole EventBridge makes.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_emulator import Emulator
from test_fleet_terraform import Fleet, _apply_fleet, environment  # noqa: F401 (fixture)

from rig.automation import Runner, transform_input
from rig.iam.check import out_of_scope, refused
from rig.iam.policy import evaluate

pytestmark = pytest.mark.slow

NAME = "atzerotest"
ON = [{"Field": "path-pattern", "Values": ["/*"]}]


@pytest.fixture(scope="module")
def zero(environment: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:  # noqa: F811
    fleet = _apply_fleet(environment, tmp_path_factory.mktemp("zero"), NAME, "0:3")
    yield fleet
    fleet.tf.destroy()
    fleet.client("acm").delete_certificate(CertificateArn=fleet.variables["certificate_arn"])


def rule_conditions(zero: Fleet) -> list[dict]:
    """The at-zero rule's conditions, each as its field, header (if any) and values."""
    (rule,) = zero.client("elbv2").describe_rules(RuleArns=[zero.pieces["at_zero_rule_arn"]])[
        "Rules"
    ]
    found = []
    for condition in rule["Conditions"]:
        header = condition.get("HttpHeaderConfig")
        paths = condition.get("PathPatternConfig", {}).get("Values")
        found.append(
            {"Field": condition["Field"], "Values": paths or condition.get("Values", [])}
            if header is None
            else {"Field": condition["Field"], "Values": header["Values"],
                  "Header": header["HttpHeaderName"]}
        )  # fmt: skip
    return found


def switch_off_by_hand(zero: Fleet) -> None:
    zero.client("elbv2").modify_rule(
        RuleArn=zero.pieces["at_zero_rule_arn"],
        Conditions=[{"Field": "http-header", "HttpHeaderConfig": {
            "HttpHeaderName": "X-Qwen3vl-At-Zero", "Values": ["off"]}}],
    )  # fmt: skip


def set_desired(zero: Fleet, desired: int) -> list[str]:
    """Move the group's desired capacity; what it terminates leaves the target group, as Auto
    Scaling deregisters it (moto leaves it registered)."""
    autoscaling, elbv2 = zero.client("autoscaling"), zero.client("elbv2")
    group = zero.pieces["autoscaling_group_name"]
    autoscaling.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=desired)
    members = [i["InstanceId"] for i in zero.group()["Instances"]]
    target_group = zero.pieces["target_group_arn"]
    gone = [
        {"Id": t["Target"]["Id"]}
        for t in elbv2.describe_target_health(TargetGroupArn=target_group)[
            "TargetHealthDescriptions"
        ]
        if t["Target"]["Id"] not in members
    ]
    if gone:
        elbv2.deregister_targets(TargetGroupArn=target_group, Targets=gone)
    return members


def runbook(zero: Fleet) -> dict:
    name = zero.tf.resources()["aws_ssm_document.at_zero[0]"]["name"]
    content = zero.client("ssm").get_document(Name=name, DocumentFormat="JSON")["Content"]
    return json.loads(content)


def event(zero: Fleet, detail_type: str, instance: str) -> dict:
    """An Auto Scaling event of the group as EventBridge delivers it."""
    return {
        "version": "0", "id": "7e3b1f4c-0000-0000-0000-000000000000", "detail-type": detail_type,
        "source": "aws.autoscaling", "account": "123456789012", "time": "2026-12-02T01:00:00Z",
        "region": "us-east-1", "resources": [],
        "detail": {"AutoScalingGroupName": zero.pieces["autoscaling_group_name"],
                   "EC2InstanceId": instance, "LifecycleTransition": "", "Cause": "test"},
    }  # fmt: skip


def target_parameters(zero: Fleet, sample: dict) -> dict:
    """What the EventBridge target passes to the runbook for ``sample``."""
    (target,) = zero.client("events").list_targets_by_rule(
        Rule=zero.tf.resources()["aws_cloudwatch_event_rule.at_zero[0]"]["name"]
    )["Targets"]
    transformer = target["InputTransformer"]
    return json.loads(
        transform_input(transformer["InputPathsMap"], transformer["InputTemplate"], sample)
    )


@pytest.fixture
def run_as_role(zero: Fleet):
    """Run the runbook as its own role: moto enforces the role's actions (resources widened),
    then every recorded call is checked against the role's real documents."""
    aws = zero.emulator.iam
    document = runbook(zero)
    role_arn = document["assumeRole"]
    creds = aws.assume_role(role_arn, session="automation")
    role_name = role_arn.rsplit("/", 1)[1]
    with aws.resources_widened(role_name) as documents:
        runner = Runner(document, lambda service: aws.client(service, creds),
                        time_scale=0.002, poll=0.1)  # fmt: skip
        yield runner
    calls = aws.records(creds)
    assert calls and refused(calls) == []
    assert out_of_scope(calls, documents) == []


def test_the_rule_starts_on_because_the_group_starts_at_zero(zero: Fleet) -> None:
    assert zero.group()["DesiredCapacity"] == 0
    assert rule_conditions(zero) == ON


def test_the_event_rule_hears_only_this_groups_launches_and_terminations(zero: Fleet) -> None:
    from moto.events.models import EventPattern

    (rule,) = [
        r for r in zero.client("events").list_rules()["Rules"]
        if r["Name"] == zero.tf.resources()["aws_cloudwatch_event_rule.at_zero[0]"]["name"]
    ]  # fmt: skip
    pattern = EventPattern.load(rule["EventPattern"])
    for kind in ("EC2 Instance Launch Successful", "EC2 Instance-terminate Lifecycle Action",
                 "EC2 Instance Terminate Successful"):  # fmt: skip
        assert pattern.matches_event(event(zero, kind, "i-1")), kind
    other = event(zero, "EC2 Instance Launch Successful", "i-1")
    other["detail"]["AutoScalingGroupName"] = "someone-elses-group"
    assert not pattern.matches_event(other)
    assert not pattern.matches_event(event(zero, "EC2 Instance Launch Unsuccessful", "i-1"))


def test_eventbridge_may_start_this_runbook_only_passing_its_role_to_ssm_only(zero: Fleet) -> None:
    iam = zero.client("iam")
    (target,) = zero.client("events").list_targets_by_rule(
        Rule=zero.tf.resources()["aws_cloudwatch_event_rule.at_zero[0]"]["name"]
    )["Targets"]
    document = runbook(zero)
    assert target["Arn"].endswith(":automation-definition/" + f"{NAME}-fleet-at-zero:$DEFAULT")
    role = target["RoleArn"].rsplit("/", 1)[1]
    trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"] == {"Service": "events.amazonaws.com"}
    policies = [
        json.loads(d) if isinstance(d, str) else d
        for d in (
            iam.get_role_policy(RoleName=role, PolicyName=n)["PolicyDocument"]
            for n in iam.list_role_policies(RoleName=role)["PolicyNames"]
        )
    ]
    start = "ssm:StartAutomationExecution"
    assert evaluate(policies, start, target["Arn"], {}).allowed
    other = target["Arn"].replace(f"{NAME}-fleet-at-zero", "AWS-StopEC2Instance")
    assert not evaluate(policies, start, other, {}).allowed
    to_ssm = {"iam:PassedToService": "ssm.amazonaws.com"}
    assert evaluate(policies, "iam:PassRole", document["assumeRole"], to_ssm).allowed
    to_ec2 = {"iam:PassedToService": "ec2.amazonaws.com"}
    assert not evaluate(policies, "iam:PassRole", document["assumeRole"], to_ec2).allowed
    assert not evaluate(policies, "iam:PassRole", target["RoleArn"], to_ssm).allowed


def test_at_zero_a_terminate_event_turns_the_rule_on(zero: Fleet, run_as_role: Runner) -> None:
    set_desired(zero, 0)
    switch_off_by_hand(zero)
    sample = event(zero, "EC2 Instance Terminate Successful", "i-0123456789abcdef0")

    execution = run_as_role.run(target_parameters(zero, sample))

    assert execution.status == "Success", execution.failure
    assert execution.steps == ["readGroup", "atZeroOrLaunched", "switchOn"]
    assert rule_conditions(zero) == ON


def test_a_launch_turns_the_rule_off_once_its_target_is_healthy(
    zero: Fleet, run_as_role: Runner
) -> None:
    (instance,) = set_desired(zero, 1)
    assert rule_conditions(zero) == ON  # still at zero for the clients until it serves
    sample = event(zero, "EC2 Instance Launch Successful", instance)

    execution = run_as_role.run(target_parameters(zero, sample))

    assert execution.status == "Success", execution.failure
    assert execution.steps == [
        "readGroup", "atZeroOrLaunched", "waitHealthy", "readGroupAgain", "stillAtZero",
        "switchOff",
    ]  # fmt: skip
    assert rule_conditions(zero) == [
        {"Field": "http-header", "Values": ["off"], "Header": "X-Qwen3vl-At-Zero"}
    ]


def test_a_group_back_at_zero_while_its_replica_never_served_turns_the_rule_on(
    zero: Fleet, run_as_role: Runner
) -> None:
    """The new replica never passes its health check (stopped: moto reports it unused); while
    the runbook waits, the group goes back to zero; the wait times out and the runbook, reading
    the group again, turns the rule on, not off."""
    (instance,) = set_desired(zero, 1)
    switch_off_by_hand(zero)
    zero.client("ec2").stop_instances(InstanceIds=[instance])
    parameters = target_parameters(zero, event(zero, "EC2 Instance Launch Successful", instance))
    back_to_zero = threading.Timer(1.0, set_desired, (zero, 0))
    back_to_zero.start()
    started = time.monotonic()

    execution = run_as_role.run(parameters)

    back_to_zero.join()
    assert execution.status == "Success", execution.failure
    assert "waitHealthy" in execution.steps and execution.steps[-1] == "switchOn"
    assert time.monotonic() - started >= 1.0
    assert rule_conditions(zero) == ON


def test_an_instance_leaving_a_serving_group_changes_nothing(
    zero: Fleet, run_as_role: Runner
) -> None:
    set_desired(zero, 1)
    switch_off_by_hand(zero)
    before = rule_conditions(zero)
    sample = event(zero, "EC2 Instance-terminate Lifecycle Action", "i-0123456789abcdef0")

    execution = run_as_role.run(target_parameters(zero, sample))

    assert execution.steps == ["readGroup", "atZeroOrLaunched"]
    assert rule_conditions(zero) == before


def test_terraform_leaves_the_switched_rule_alone(zero: Fleet, tmp_path: Path) -> None:
    switch_off_by_hand(zero)
    assert not zero.tf.plan().has_changes


def test_wake_report_reads_the_rule_the_group_and_the_targets(zero: Fleet) -> None:
    """fleet.wake against the emulator's real pieces (moto records no scaling activities and no
    load-balancer metrics, so there is no last wake to measure here; see test_fleet_wake.py)."""
    from qwen3vl_aws.aws.clients import ClientFactory
    from qwen3vl_aws.deployment import Deployment
    from qwen3vl_aws.fleet.wake import wake_report

    record = Deployment(name=NAME, region="us-east-1", instance_type="g5.xlarge",
                        fleet=zero.pieces)  # fmt: skip
    (rule,) = zero.client("elbv2").describe_rules(RuleArns=[zero.pieces["at_zero_rule_arn"]])[
        "Rules"
    ]
    body = json.loads(rule["Actions"][0]["FixedResponseConfig"]["MessageBody"])
    set_desired(zero, 0)
    zero.client("elbv2").modify_rule(
        RuleArn=zero.pieces["at_zero_rule_arn"],
        Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/*"]}}],
    )

    at_zero = wake_report(ClientFactory("us-east-1"), record)

    assert (at_zero.state, at_zero.client_status, at_zero.client_body) == ("at_zero", 503, body)
    assert at_zero.retry_after == zero.variables.get("retry_after_seconds", 300)
    set_desired(zero, 1)  # moto reports the new instance's target healthy at once
    serving = wake_report(ClientFactory("us-east-1"), record)
    assert (serving.state, serving.healthy) == ("serving", 1)
