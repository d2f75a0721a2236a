"""A fleet's rotate-key over SSM by instance ids, run as the operator against the enforcing
emulator: the session's fleet key sync lists the group's InService replicas and sends ONE
command per sync naming them, one at a time, stopping at the first error, with version ids only;
every call is within docs/iam-policy.json (resources and tag conditions checked by rig.iam).

moto never runs the command (every invocation reports Success at once), so the endpoint here is
a stand-in that accepts exactly the keys of the versions the last command named: the rolling
behaviour with the real qwen3vl-keysync is tests/node/test_fleet_balancer.py's, and the failure
paths are tests/unit/test_fleet_keysync.py's.
"""

from __future__ import annotations

import json

import pytest
from aws_emulator import MOTO_DLAMI, REGION, Emulator
from qwen3vl_aws.aws.clients import ClientFactory
from qwen3vl_aws.deployment import Deployment
from qwen3vl_aws.keys.keygen import generate_key
from qwen3vl_aws.keys.rotation import Rotation
from qwen3vl_aws.session import DeploymentSession

from rig.iam.check import out_of_scope, refused, unmapped
from rig.iam.policy import operator_policy

pytestmark = pytest.mark.slow  # its own enforcing emulator process

NAME = "keysynctest"
GROUP = f"{NAME}-fleet"


class LastCommandEndpoint:
    """Accepts the keys of the secret versions the latest SSM command told the replicas to load
    (what the replicas would accept had SSM run it)."""

    def __init__(self, emulator: Emulator, secret_arn: str) -> None:
        self._ssm = emulator.client("ssm")
        self._sm = emulator.client("secretsmanager")
        self._secret = secret_arn

    def accepts(self, key: str) -> bool:
        commands = self._ssm.list_commands()["Commands"]
        latest = max(commands, key=lambda c: c["RequestedDateTime"])
        script = latest["Parameters"]["commands"][0]
        versions = [w for w in script.split() if len(w) == 36 and w.count("-") == 4]
        return any(
            self._sm.get_secret_value(SecretId=self._secret, VersionId=v)["SecretString"] == key
            for v in versions
        )


@pytest.fixture(scope="module")
def fleet(emulator: Emulator) -> dict:
    """As the admin: a group of two replicas tagged like the module's launch template tags
    them, and the deployment's key secret holding its first key."""
    ec2, autoscaling = emulator.client("ec2"), emulator.client("autoscaling")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    tags = [{"Key": "Project", "Value": "qwen3vl-aws"}, {"Key": "Deployment", "Value": NAME}]
    template = ec2.create_launch_template(
        LaunchTemplateName=NAME,
        LaunchTemplateData={
            "ImageId": MOTO_DLAMI,
            "InstanceType": "g5.xlarge",
            "TagSpecifications": [{"ResourceType": "instance", "Tags": tags}],
        },
    )["LaunchTemplate"]
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=GROUP,
        LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"], "Version": "$Latest"},
        MinSize=2, MaxSize=3, DesiredCapacity=2, VPCZoneIdentifier=subnet,
    )  # fmt: skip
    (group,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])[
        "AutoScalingGroups"
    ]
    ids = sorted(i["InstanceId"] for i in group["Instances"])
    described = ec2.describe_instances(InstanceIds=ids)["Reservations"]
    seen = {t["Key"]: t["Value"] for r in described for i in r["Instances"] for t in i["Tags"]}
    assert seen.get("Project") == "qwen3vl-aws", "moto did not tag the group's instances"
    sm = emulator.client("secretsmanager")
    secret_arn = sm.create_secret(Name=f"qwen3vl/{NAME}/api-key-x", SecretString=generate_key())[
        "ARN"
    ]
    return {"ids": ids, "secret_arn": secret_arn}


def test_rotate_key_syncs_every_in_service_replica_with_one_command_per_sync(
    in_emulator: Emulator, fleet: dict
) -> None:
    aws = in_emulator.iam
    record = Deployment(
        name=NAME, region=REGION, instance_type="g5.xlarge", secret_arn=fleet["secret_arn"],
        fleet={"autoscaling_group_name": GROUP},
    )  # fmt: skip
    session = DeploymentSession(record, ClientFactory(REGION))
    reports: list[str] = []
    endpoint = LastCommandEndpoint(in_emulator, fleet["secret_arn"])
    store = session.secret()
    old_key = store.current_value()

    outcome = Rotation(
        store, session.key_sync(reports.append), endpoint, report=reports.append,
        sleep=lambda _s: None, settle=1,
    ).rotate(grace=0)  # fmt: skip

    new_key = store.value(outcome.current)
    commands = sorted(
        (c for c in in_emulator.client("ssm").list_commands()["Commands"]
         if set(c["InstanceIds"]) & set(fleet["ids"])),
        key=lambda c: c["RequestedDateTime"],
    )  # fmt: skip
    # Two syncs (both keys; then the new key only), each ONE command over both replicas.
    assert len(commands) == 2
    for command in commands:
        assert sorted(command["InstanceIds"]) == fleet["ids"]
        assert command["DocumentName"] == "AWS-RunShellScript"
        assert (command["MaxConcurrency"], command["MaxErrors"]) == ("1", "0")
        # SSM keeps a command's parameters in its history: version ids only, never a key.
        kept = json.dumps(command, default=str)
        assert old_key not in kept and new_key not in kept
    assert f"--pending {outcome.current}" in commands[0]["Parameters"]["commands"][0]
    assert "--pending" not in commands[1]["Parameters"]["commands"][0]
    for n, instance in enumerate(fleet["ids"], 1):
        assert f"  replica {instance} ({n}/2): key synced" in reports
    # Every operator call, with its resources and tag conditions, is within the real policy.
    operator = in_emulator.env["AWS_ACCESS_KEY_ID"]
    calls = [r for r in aws.records() if r.get("access_key") == operator]
    assert {c["action"] for c in calls} >= {
        "autoscaling:DescribeAutoScalingGroups",
        "ssm:SendCommand",
        "ssm:GetCommandInvocation",
    }
    assert refused(calls) == []
    assert unmapped(calls) == []
    assert out_of_scope(calls, [operator_policy()]) == []


def test_send_command_to_an_untagged_instance_is_out_of_the_policys_scope(
    in_emulator: Emulator,
) -> None:
    """The check above can fail: the policy grants SendCommand on the toolkit's tagged instances
    only, so the same command to an instance without the Project tag is out of scope."""
    ec2 = in_emulator.client("ec2")
    (other,) = ec2.run_instances(ImageId=MOTO_DLAMI, MinCount=1, MaxCount=1)["Instances"]
    from qwen3vl_aws.instance.channel.ssm import SsmCommands

    aws = in_emulator.iam
    operator = in_emulator.env["AWS_ACCESS_KEY_ID"]
    before = len(aws.records())
    SsmCommands(ClientFactory(REGION).client("ssm")).send([other["InstanceId"]], "true", 10)
    calls = [r for r in aws.records()[before:] if r.get("access_key") == operator]
    problems = out_of_scope(calls, [operator_policy()])
    assert any(other["InstanceId"] in p and "ssm:SendCommand" in p for p in problems), problems
