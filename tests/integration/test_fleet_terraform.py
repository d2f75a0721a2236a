"""The fleet shape of the root module (replicas = "MIN:MAX"), applied with real Terraform against
the moto server and read back with boto3: launch template, Auto Scaling group over two or more
zones, internet-facing load balancer, HTTPS listener with an imported ACM certificate, target
group, termination hook, the target-tracking policy on the engine's queue, the scale-to-zero
alarms and rule, and the instance role's additions. moto never evaluates alarms or policies, so
their configuration is what is checked; capacity is driven directly.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from aws_emulator import MOTO_DLAMI, Emulator, created_resources
from qwen3vl_aws.aws.terraform import Terraform, managed_resources
from qwen3vl_aws.fleet.certificate import import_certificate, make_certificate
from qwen3vl_aws.fleet.view import fleet_view
from test_plan_variants import BASE, _planned

from rig.cloudinit import DEPLOY_ENV, cloud_config, install_write_files, read_env_file

pytestmark = pytest.mark.slow

ALLOWED = ["203.0.113.7/32", "2001:db8::/32"]
FLEET_TYPES = ("aws_lb", "aws_autoscaling", "aws_launch_template", "aws_cloudwatch", "aws_acm")


@dataclass
class Fleet:
    emulator: Emulator
    tf: Terraform
    variables: dict

    @property
    def outputs(self) -> dict:
        return self.tf.outputs()

    @property
    def pieces(self) -> dict:
        return self.outputs["fleet"]

    def client(self, service: str):
        return self.emulator.client(service)

    def group(self) -> dict:
        (group,) = self.client("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[self.pieces["autoscaling_group_name"]]
        )["AutoScalingGroups"]
        return group


def _apply_fleet(emulator: Emulator, directory: Path, name: str, replicas: str) -> Fleet:
    """Apply as `apply --replicas` does: the load balancer first, then a certificate for its
    DNS name imported into ACM, then everything."""
    tf = Terraform(directory)
    variables = {
        **BASE, "name": name, "allowed_cidrs": ALLOWED, "ami_id": MOTO_DLAMI, "replicas": replicas,
    }  # fmt: skip
    tf.prepare(variables)
    tf.apply(targets=["aws_lb.this"])
    dns_name = tf.resources()["aws_lb.this[0]"]["dns_name"]
    variables["certificate_arn"] = import_certificate(
        emulator.client("acm"), make_certificate(dns_name), name
    )
    tf.prepare(variables)
    tf.apply()
    return Fleet(emulator, tf, variables)


@pytest.fixture(scope="module")
def environment(emulator: Emulator) -> Iterator[Emulator]:
    """The emulator's environment in this process (Terraform, boto3); the emulator's process
    closes moto's fleet gaps (rig.moto_fidelity.keep_fleet_settings).

    As the emulator's admin: this module checks the module's settings with Terraform driven
    directly. `apply --replicas` through the CLI, as the operator holding docs/iam-policy.json
    with every call judged against it, is tests/integration/test_fleet_cli.py.
    """
    admin = replace(emulator, env={**emulator.env, **emulator.iam.admin.env()})
    with pytest.MonkeyPatch.context() as mp:
        for name, value in admin.env.items():
            mp.setenv(name, value)
        yield admin


@pytest.fixture(scope="module")
def fleet(environment: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    return _apply_fleet(environment, tmp_path_factory.mktemp("fleet"), "fleettest", "2:4")


def test_a_plan_without_replicas_creates_no_fleet_resource(environment, tmp_path) -> None:
    planned = _planned(tmp_path, {"ami_id": MOTO_DLAMI})
    assert "aws_instance.this[0]" in planned and "aws_eip.this[0]" in planned
    fleet_pieces = [a for a in planned if a.startswith(FLEET_TYPES) or ".fleet" in a]
    assert fleet_pieces == []


@pytest.mark.parametrize(
    ("replicas", "message"),
    [("3", 'replicas must be "MIN:MAX"'), ("4:2", "MIN must not exceed MAX"), ("0:0", "MAX")],
)
def test_bad_replicas_are_refused_at_plan(environment, tmp_path, replicas, message) -> None:
    from qwen3vl_aws.errors import TerraformError

    with pytest.raises(TerraformError, match=message):
        _planned(tmp_path, {"ami_id": MOTO_DLAMI, "replicas": replicas})


def test_group_spans_two_zones_between_the_bounds(fleet: Fleet) -> None:
    group = fleet.group()
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (2, 4, 2)
    subnets = group["VPCZoneIdentifier"].split(",")
    zones = {
        s["AvailabilityZone"]
        for s in fleet.client("ec2").describe_subnets(SubnetIds=subnets)["Subnets"]
    }
    offered = {
        o["Location"]
        for o in fleet.client("ec2").describe_instance_type_offerings(
            LocationType="availability-zone",
            Filters=[{"Name": "instance-type", "Values": ["g5.xlarge"]}],
        )["InstanceTypeOfferings"]
    }
    assert len(zones) >= 2 and zones <= offered
    assert group["HealthCheckType"] == "ELB"
    assert group["TargetGroupARNs"] == [fleet.pieces["target_group_arn"]]
    assert len(group["Instances"]) == 2
    assert {m["Metric"] for m in group["EnabledMetrics"]} >= {
        "GroupDesiredCapacity",
        "GroupInServiceInstances",
    }


def test_launch_template_is_the_single_instances_image(fleet: Fleet) -> None:
    template_id = fleet.group()["LaunchTemplate"]["LaunchTemplateId"]
    (version,) = fleet.client("ec2").describe_launch_template_versions(
        LaunchTemplateId=template_id, Versions=["$Latest"]
    )["LaunchTemplateVersions"]
    data = version["LaunchTemplateData"]
    assert data["ImageId"] == MOTO_DLAMI
    assert data["InstanceType"] == "g5.xlarge"
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    (device,) = data["BlockDeviceMappings"]
    assert device["Ebs"]["VolumeType"] == "gp3" and device["Ebs"]["Encrypted"] is True
    assert data["IamInstanceProfile"]["Name"] == fleet.outputs["instance_profile_name"]
    assert data["SecurityGroupIds"] == [fleet.outputs["security_group_id"]]
    assert "KeyName" not in data


def test_user_data_makes_a_replica_that_publishes_and_drains(fleet: Fleet, tmp_path) -> None:
    template_id = fleet.group()["LaunchTemplate"]["LaunchTemplateId"]
    (version,) = fleet.client("ec2").describe_launch_template_versions(
        LaunchTemplateId=template_id, Versions=["$Latest"]
    )["LaunchTemplateVersions"]
    raw = base64.b64decode(version["LaunchTemplateData"]["UserData"])
    assert len(raw) <= 16384
    config = cloud_config(raw)
    install_write_files(tmp_path, config)
    settings = read_env_file(tmp_path / DEPLOY_ENV)
    assert settings["FLEET_GROUP"] == fleet.pieces["autoscaling_group_name"]
    assert settings["FLEET_DRAIN_HOOK"] == fleet.pieces["drain_hook_name"]
    assert settings["FLEET_METRIC_NAMESPACE"] == fleet.pieces["metric_namespace"]
    assert settings["PUBLIC_HOST"] == fleet.pieces["load_balancer_dns_name"]
    # The agent travels in the replica's bundle, which stage 0 fetches (digest in deploy.env).
    bundle = (
        fleet.client("s3")
        .get_object(Bucket=settings["BUNDLE_BUCKET"], Key=settings["BUNDLE_KEY"])["Body"]
        .read()
    )
    assert hashlib.sha256(bundle).hexdigest() == settings["BUNDLE_SHA256"]
    assert "/opt/qwen3vl/bin/qwen3vl-fleet" in json.loads(bundle)
    assert "sk-qwen-" not in gzip.decompress(raw).decode()


def test_load_balancer_admits_only_the_allowed_cidrs(fleet: Fleet) -> None:
    elbv2, ec2 = fleet.client("elbv2"), fleet.client("ec2")
    (lb,) = elbv2.describe_load_balancers(LoadBalancerArns=[fleet.pieces["load_balancer_arn"]])[
        "LoadBalancers"
    ]
    assert lb["Type"] == "application"
    # Internet-facing is AWS's default scheme, so the provider sends none and moto reports none.
    assert lb.get("Scheme", "internet-facing") == "internet-facing"
    assert fleet.tf.resources()["aws_lb.this[0]"]["internal"] is False
    assert len({z["ZoneName"] for z in lb["AvailabilityZones"]}) >= 2
    attributes = {
        a["Key"]: a["Value"]
        for a in elbv2.describe_load_balancer_attributes(LoadBalancerArn=lb["LoadBalancerArn"])[
            "Attributes"
        ]
    }
    assert int(attributes["idle_timeout.timeout_seconds"]) >= 600  # long non-streamed answers
    (alb_group,) = lb["SecurityGroups"]

    def ingress(group_id: str) -> list[tuple]:
        rules = ec2.describe_security_group_rules(
            Filters=[{"Name": "group-id", "Values": [group_id]}]
        )["SecurityGroupRules"]
        return sorted(
            (
                r["FromPort"],
                r.get("CidrIpv4")
                or r.get("CidrIpv6")
                or r.get("ReferencedGroupInfo", {}).get("GroupId"),
            )
            for r in rules
            if not r["IsEgress"]
        )

    assert ingress(alb_group) == sorted((443, cidr) for cidr in ALLOWED)
    # The instances: the gateway port from the load balancer's group, nothing else.
    assert ingress(fleet.outputs["security_group_id"]) == [(443, alb_group)]


def test_listener_serves_the_imported_certificate_to_the_target_group(fleet: Fleet) -> None:
    elbv2 = fleet.client("elbv2")
    (listener,) = elbv2.describe_listeners(LoadBalancerArn=fleet.pieces["load_balancer_arn"])[
        "Listeners"
    ]
    assert (listener["Protocol"], listener["Port"]) == ("HTTPS", 443)
    assert listener["SslPolicy"].startswith("ELBSecurityPolicy-TLS13")
    assert listener["Certificates"][0]["CertificateArn"] == fleet.variables["certificate_arn"]
    (action,) = listener["DefaultActions"]
    assert action["Type"] == "forward"
    assert action["TargetGroupArn"] == fleet.pieces["target_group_arn"]
    (certificate,) = [
        c
        for c in fleet.client("acm").list_certificates()["CertificateSummaryList"]
        if c["CertificateArn"] == fleet.variables["certificate_arn"]
    ]
    assert certificate["DomainName"] == fleet.pieces["load_balancer_dns_name"]


def test_target_group_checks_health_and_routes_least_outstanding(fleet: Fleet) -> None:
    elbv2 = fleet.client("elbv2")
    (group,) = elbv2.describe_target_groups(TargetGroupArns=[fleet.pieces["target_group_arn"]])[
        "TargetGroups"
    ]
    assert (group["Protocol"], group["Port"]) == ("HTTPS", 443)
    assert (group["HealthCheckProtocol"], group["HealthCheckPath"]) == ("HTTPS", "/health")
    assert group["Matcher"]["HttpCode"] == "200"
    attributes = {
        a["Key"]: a["Value"]
        for a in elbv2.describe_target_group_attributes(TargetGroupArn=group["TargetGroupArn"])[
            "Attributes"
        ]
    }
    assert attributes["load_balancing.algorithm.type"] == "least_outstanding_requests"
    # Long streamed answers: minutes to finish before a leaving target is cut.
    assert int(attributes["deregistration_delay.timeout_seconds"]) >= 600


def test_termination_hook_outlasts_the_deregistration_delay(fleet: Fleet) -> None:
    (hook,) = fleet.client("autoscaling").describe_lifecycle_hooks(
        AutoScalingGroupName=fleet.pieces["autoscaling_group_name"]
    )["LifecycleHooks"]
    assert hook["LifecycleHookName"] == fleet.pieces["drain_hook_name"]
    assert hook["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
    assert hook["DefaultResult"] == "CONTINUE"
    delay = fleet.variables.get("deregistration_delay_seconds", 900)
    assert hook["HeartbeatTimeout"] > delay


def test_target_tracking_keeps_the_load_per_instance_at_the_target(fleet: Fleet) -> None:
    (policy,) = fleet.client("autoscaling").describe_policies(
        AutoScalingGroupName=fleet.pieces["autoscaling_group_name"]
    )["ScalingPolicies"]
    assert policy["PolicyType"] == "TargetTrackingScaling"
    config = policy["TargetTrackingConfiguration"]
    assert config["TargetValue"] == 8  # the module's default target_load
    metrics = {m["Id"]: m for m in config["CustomizedMetricSpecification"]["Metrics"]}
    (returned,) = [m for m in metrics.values() if m["ReturnData"]]
    # The expression divides the group's engine queue by its in-service instances.
    assert "in_service" in returned["Expression"]
    for name in ("running", "waiting"):
        stat = metrics[name]["MetricStat"]["Metric"]
        assert stat["Namespace"] == fleet.pieces["metric_namespace"]
        assert stat["Dimensions"] == [
            {"Name": "AutoScalingGroupName", "Value": fleet.pieces["autoscaling_group_name"]}
        ]
    assert metrics["in_service"]["MetricStat"]["Metric"]["MetricName"] == (
        "GroupInServiceInstances"
    )
    # No scale-to-zero pieces when MIN > 0.
    assert fleet.pieces["at_zero_rule_arn"] is None


def test_instance_role_publishes_only_its_namespace_and_completes_only_its_group(
    fleet: Fleet,
) -> None:
    iam = fleet.client("iam")
    role = fleet.outputs["iam_role_name"]
    document = iam.get_role_policy(RoleName=role, PolicyName="fleet-metrics-and-drain")[
        "PolicyDocument"
    ]
    if isinstance(document, str):
        document = json.loads(document)
    by_action = {}
    for statement in document["Statement"]:
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            by_action[action] = statement
    put = by_action["cloudwatch:PutMetricData"]
    assert put["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": fleet.pieces["metric_namespace"]}
    }
    complete = by_action["autoscaling:CompleteLifecycleAction"]
    assert complete["Resource"] == fleet.group()["AutoScalingGroupARN"]


def test_fleet_view_lists_the_groups_replicas_with_their_target_health(fleet: Fleet) -> None:
    view = fleet_view(
        fleet.client("autoscaling"),
        fleet.client("elbv2"),
        fleet.pieces["autoscaling_group_name"],
        fleet.pieces["target_group_arn"],
    )
    group = fleet.group()
    assert sorted(r.instance_id for r in view.replicas) == sorted(
        i["InstanceId"] for i in group["Instances"]
    )
    assert {r.zone for r in view.replicas} <= set(fleet.pieces["zones"])
    assert all(r.lifecycle_state == "InService" for r in view.replicas)
    assert all(r.target_health != "absent" for r in view.replicas)  # registered in the group
    assert (view.min_size, view.max_size) == (2, 4)


def test_second_plan_shows_no_changes_even_after_scaling(fleet: Fleet) -> None:
    assert not fleet.tf.plan().has_changes
    # Scaling moves the desired capacity; Terraform leaves it to the policies.
    fleet.client("autoscaling").set_desired_capacity(
        AutoScalingGroupName=fleet.pieces["autoscaling_group_name"], DesiredCapacity=3
    )
    assert fleet.group()["DesiredCapacity"] == 3
    summary = fleet.tf.plan()
    assert not summary.has_changes, summary.resources


def test_scale_to_zero_pieces(environment: Emulator, tmp_path: Path) -> None:
    zero = _apply_fleet(environment, tmp_path / "zero", "zerotest", "0:3")
    try:
        pieces = zero.pieces
        assert zero.group()["MinSize"] == 0 and zero.group()["DesiredCapacity"] == 0
        autoscaling, cloudwatch = zero.client("autoscaling"), zero.client("cloudwatch")
        policies = {
            p["PolicyName"]: p
            for p in autoscaling.describe_policies(
                AutoScalingGroupName=pieces["autoscaling_group_name"]
            )["ScalingPolicies"]
        }
        alarms = {
            a["AlarmName"]: a
            for a in cloudwatch.describe_alarms(AlarmNamePrefix="zerotest-fleet-")["MetricAlarms"]
        }
        idle, wake = alarms["zerotest-fleet-idle"], alarms["zerotest-fleet-wake"]
        # Idle: idle_minutes one-minute periods, missing data (no requests at all) breaches.
        assert idle["EvaluationPeriods"] == 30 and idle["TreatMissingData"] == "breaching"
        assert idle["AlarmActions"] == [policies["idle-to-zero"]["PolicyARN"]]
        assert policies["idle-to-zero"]["AdjustmentType"] == "ExactCapacity"
        assert policies["idle-to-zero"]["StepAdjustments"][0]["ScalingAdjustment"] == 0
        idle_metrics = {q["Id"]: q for q in idle["Metrics"]}
        assert idle_metrics["requests"]["MetricStat"]["Metric"]["MetricName"] == "RequestCount"
        # Wake: only while the desired capacity is 0, any load-balancer answer sets it to 1.
        assert wake["AlarmActions"] == [policies["wake-from-zero"]["PolicyARN"]]
        assert policies["wake-from-zero"]["StepAdjustments"][0]["ScalingAdjustment"] == 1
        wake_metrics = {q["Id"]: q for q in wake["Metrics"]}
        assert {
            wake_metrics[i]["MetricStat"]["Metric"]["MetricName"] for i in ("desired", "fixed")
        } == {"GroupDesiredCapacity", "HTTP_Fixed_Response_Count"}
        expression = next(q["Expression"] for q in wake["Metrics"] if q.get("ReturnData"))
        assert "desired" in expression
        # The 503 rule answers JSON with the retry time.
        (rule,) = zero.client("elbv2").describe_rules(RuleArns=[pieces["at_zero_rule_arn"]])[
            "Rules"
        ]
        (action,) = rule["Actions"]
        assert action["FixedResponseConfig"]["StatusCode"] == "503"
        assert action["FixedResponseConfig"]["ContentType"] == "application/json"
        body = json.loads(action["FixedResponseConfig"]["MessageBody"])
        assert body["error"]["code"] == "scaled_to_zero" and body["error"]["retry_after"] > 0
        # moto never fires the wake alarm (nor runs a step policy): take the step it would take.
        (step,) = policies["wake-from-zero"]["StepAdjustments"]
        autoscaling.set_desired_capacity(
            AutoScalingGroupName=pieces["autoscaling_group_name"],
            DesiredCapacity=step["ScalingAdjustment"],
        )
        assert zero.group()["DesiredCapacity"] == 1
        assert not zero.tf.plan().has_changes
    finally:
        zero.tf.destroy()
        zero.client("acm").delete_certificate(CertificateArn=zero.variables["certificate_arn"])


def test_a_new_launch_template_version_rolls_out_by_instance_refresh(fleet: Fleet) -> None:
    """A new serving plan or AMI is a new launch template version; the group replaces its
    instances a few at a time, never below the healthy count it had. moto never runs a refresh
    (an apply that changes the template does not finish there), so this checks the group's
    refresh settings as Terraform applied them."""
    resources = fleet.tf.resources()
    group, template = (
        resources["aws_autoscaling_group.this[0]"],
        resources["aws_launch_template.this[0]"],
    )
    (refresh,) = group["instance_refresh"]
    assert refresh["strategy"] == "Rolling"
    (preferences,) = refresh["preferences"]
    assert preferences["min_healthy_percentage"] == 100
    assert preferences["max_healthy_percentage"] > 100  # room to launch before terminating
    # The group follows the template's newest version by number, so a new version is a change
    # of the group, which is what starts the refresh.
    assert group["launch_template"][0]["version"] == str(template["latest_version"])


def test_destroy_leaves_nothing(fleet: Fleet) -> None:
    fleet.tf.destroy()
    fleet.client("acm").delete_certificate(CertificateArn=fleet.variables["certificate_arn"])
    leftovers = created_resources(fleet.emulator)
    leftovers["auto_scaling_groups"] = fleet.client("autoscaling").describe_auto_scaling_groups()[
        "AutoScalingGroups"
    ]
    leftovers["load_balancers"] = fleet.client("elbv2").describe_load_balancers()["LoadBalancers"]
    leftovers["target_groups"] = fleet.client("elbv2").describe_target_groups()["TargetGroups"]
    leftovers["launch_templates"] = fleet.client("ec2").describe_launch_templates()[
        "LaunchTemplates"
    ]
    leftovers["alarms"] = fleet.client("cloudwatch").describe_alarms()["MetricAlarms"]
    leftovers["certificates"] = fleet.client("acm").list_certificates()["CertificateSummaryList"]
    assert not any(leftovers.values()), {k: v for k, v in leftovers.items() if v}
    assert managed_resources(fleet.tf.show().get("values", {})) == {}
