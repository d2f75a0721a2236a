"""`apply --yes --no-wait`, a second plan without changes, `status`, `destroy --yes`: real Terraform
and the AWS provider from the local mirror against the moto server.

One deployment is applied per module and shared by the assertions; the destroy test runs last.
"""

from __future__ import annotations

import base64
import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from aws_emulator import MOTO_DLAMI, Emulator, created_resources, nothing_created
from qwen3vl_aws.terraform import Terraform

pytestmark = pytest.mark.slow

NAME = "itest"
KEY = "sk-qwen-integration-test-key-" + "k" * 24  # a recognisable value to search for
ALLOWED = ["203.0.113.7/32", "2001:db8::/32"]


@dataclass
class Applied:
    emulator: Emulator
    stdout: str
    stderr: str

    @property
    def directory(self) -> Path:
        return self.emulator.home / NAME

    @property
    def record(self) -> dict:
        return json.loads((self.directory / "deployment.json").read_text())

    def terraform(self) -> Terraform:
        return Terraform(self.directory)


@pytest.fixture(scope="module")
def applied(emulator: Emulator) -> Applied:
    args = ["--name", NAME, "apply", "--yes", "--no-wait", "--key", "-", "--ami-id", MOTO_DLAMI]
    for cidr in ALLOWED:
        args += ["--allow", cidr]
    result = emulator.run(*args, stdin=KEY + "\n")
    assert result.returncode == 0, result.stderr + result.stdout
    return Applied(emulator, result.stdout, result.stderr)


def _instance(applied: Applied) -> dict:
    ec2 = applied.emulator.client("ec2")
    (reservation,) = ec2.describe_instances(InstanceIds=[applied.record["instance_id"]])[
        "Reservations"
    ]
    return reservation["Instances"][0]


def test_apply_prints_endpoint_and_how_to_get_the_key(applied: Applied) -> None:
    record = applied.record
    assert record["endpoint"] == f"https://{record['public_ip']}/v1"
    assert f"Endpoint: {record['endpoint']}" in applied.stdout
    assert f"qwen3vl-aws --name {NAME} key" in applied.stdout
    assert f"--cacert {applied.directory / 'endpoint-cert.pem'}" in applied.stdout
    # 12 resources plus one ingress rule per allowed CIDR
    assert f"{12 + len(ALLOWED)} to add, 0 to change, 0 to destroy" in applied.stderr
    assert "$1.006/hour" in applied.stderr


def test_second_plan_shows_no_changes(applied: Applied, in_emulator: Emulator) -> None:
    summary = applied.terraform().plan()
    assert not summary.has_changes, summary.resources


def test_a_state_from_before_the_fleet_shape_plans_no_changes(
    applied: Applied, in_emulator: Emulator
) -> None:
    """Deployments applied before the instance, its Elastic IP and their association got a
    count (the fleet shape) keep planning without changes: the module's moved blocks."""
    tf = applied.terraform()
    for address in ("aws_instance.this", "aws_eip.this", "aws_eip_association.this"):
        tf._run(tf._command("state mv", f"{address}[0]", address, no_color=None))
    assert "aws_instance.this" in tf.resources()
    summary = tf.plan()
    assert not summary.has_changes, summary.resources


def test_security_group_admits_only_the_endpoint_port_from_the_given_cidrs(
    applied: Applied,
) -> None:
    ec2 = applied.emulator.client("ec2")
    (instance_group,) = _instance(applied)["SecurityGroups"]
    rules = ec2.describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [instance_group["GroupId"]]}]
    )["SecurityGroupRules"]
    ingress = sorted(
        (r["IpProtocol"], r["FromPort"], r["ToPort"], r.get("CidrIpv4") or r.get("CidrIpv6"))
        for r in rules
        if not r["IsEgress"]
    )
    assert ingress == sorted(("tcp", 443, 443, cidr) for cidr in ALLOWED)


def test_instance_type_metadata_options_and_root_volume(applied: Applied) -> None:
    instance = _instance(applied)
    assert instance["InstanceType"] == "g5.xlarge"
    assert instance["ImageId"] == MOTO_DLAMI
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert instance["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    assert instance.get("KeyName") is None
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert tags["Deployment"] == NAME and tags["Name"] == NAME
    (mapping,) = instance["BlockDeviceMappings"]
    volume = applied.emulator.client("ec2").describe_volumes(
        VolumeIds=[mapping["Ebs"]["VolumeId"]]
    )["Volumes"][0]
    assert volume["Encrypted"] is True
    assert volume["VolumeType"] == "gp3"
    assert volume["Throughput"] > 125
    assert volume["Size"] >= 100


def test_elastic_ip_is_attached(applied: Applied) -> None:
    (address,) = applied.emulator.client("ec2").describe_addresses()["Addresses"]
    assert address["PublicIp"] == applied.record["public_ip"]
    assert address["InstanceId"] == applied.record["instance_id"]


def test_role_reads_only_this_deployments_secret(applied: Applied) -> None:
    iam = applied.emulator.client("iam")
    instance = _instance(applied)
    profile_name = instance["IamInstanceProfile"]["Arn"].rsplit("/", 1)[1]
    (role,) = iam.get_instance_profile(InstanceProfileName=profile_name)["InstanceProfile"]["Roles"]
    attached = iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AmazonSSMManagedInstanceCore"]
    (policy_name,) = iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]
    document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=policy_name)[
        "PolicyDocument"
    ]
    if isinstance(document, str):
        document = json.loads(document)
    (statement,) = document["Statement"]
    assert statement["Effect"] == "Allow"
    assert sorted(statement["Action"]) == [
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
    ]
    assert statement["Resource"] == applied.record["secret_arn"]


def test_the_cli_wrote_the_key_into_the_secret(applied: Applied) -> None:
    secrets = applied.emulator.client("secretsmanager")
    value = secrets.get_secret_value(SecretId=applied.record["secret_arn"])["SecretString"]
    assert value == KEY


def test_user_data_is_the_rendered_cloud_config_without_the_key(applied: Applied) -> None:
    attribute = applied.emulator.client("ec2").describe_instance_attribute(
        InstanceId=applied.record["instance_id"], Attribute="userData"
    )
    text = gzip.decompress(base64.b64decode(attribute["UserData"]["Value"])).decode()
    assert text.startswith("#cloud-config")
    assert applied.record["secret_arn"] in text
    assert KEY not in text


def test_key_is_in_no_state_plan_output_or_cli_output(
    applied: Applied, in_emulator: Emulator
) -> None:
    tf = applied.terraform()
    plan_file = applied.directory / "check.tfplan"
    tf.plan(out=plan_file)
    texts = {
        "cli stdout": applied.stdout,
        "cli stderr": applied.stderr,
        "terraform output": json.dumps(tf.outputs()),
        "terraform show (state)": json.dumps(tf.show()),
        "terraform show (plan)": json.dumps(tf.show(plan_file)),
    }
    files = [
        p
        for p in applied.directory.rglob("*")
        if p.is_file() and "providers" not in p.relative_to(applied.directory).parts
    ]
    assert any(p.name == "terraform.tfstate" for p in files)
    for path in files:
        texts[str(path)] = path.read_bytes().decode("utf-8", errors="replace")
    leaked = [where for where, text in texts.items() if KEY in text]
    assert leaked == []


def test_status_json_reports_the_running_deployment(applied: Applied) -> None:
    result = applied.emulator.run("--name", NAME, "status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["state"] == "running"
    assert status["instance_type"] == "g5.xlarge"
    assert status["endpoint"] == applied.record["endpoint"]
    assert status["hourly_usd"] == 1.006
    assert status["region"] == "us-east-1"
    assert status["instance_id"] == applied.record["instance_id"]
    assert status["uptime_seconds"] >= 0
    assert status["cost_since_launch_usd"] >= 0


def test_destroy_removes_everything_and_forgets_the_deployment(applied: Applied) -> None:
    assert not nothing_created(applied.emulator)
    result = applied.emulator.run("--name", NAME, "destroy", "--yes")
    assert result.returncode == 0, result.stderr
    assert created_resources(applied.emulator) == {
        "instances": [],
        "addresses": [],
        "security_groups": [],
        "roles": [],
        "instance_profiles": [],
        "secrets": [],
    }
    assert not applied.directory.exists()
    again = applied.emulator.run("--name", NAME, "status")
    assert again.returncode == 5
    assert "No deployment named 'itest'" in again.stderr
