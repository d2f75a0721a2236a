"""The fleet's key sync over SSM (fleet.keysync): the paths moto cannot show, since its SSM never
runs a command and reports every invocation a success. Each replica's answers are scripted with
botocore's Stubber, as the single instance's channel tests do (test_ssm_channel.py)."""

from __future__ import annotations

import pytest
from botocore.stub import ANY, Stubber
from qwen3vl_aws.errors import ChannelError, CheckFailed
from qwen3vl_aws.fleet.keysync import FleetKeySync, in_service_instances
from qwen3vl_aws.instance.channel.ssm import SsmCommands, wrap_in_bash
from qwen3vl_aws.instance.keysync import keysync_script

COMMAND = "11111111-2222-3333-4444-555555555555"
REPLICAS = ["i-0aaaaaaaaaaaaaaa1", "i-0aaaaaaaaaaaaaaa2", "i-0aaaaaaaaaaaaaaa3"]


def fleet_sync(client, reports: list[str], replicas=REPLICAS) -> FleetKeySync:
    commands = SsmCommands(client, poll_delay=0, delivery_timeout=30)
    return FleetKeySync(commands, lambda: list(replicas), reports.append, timeout=60)


def expect_send(stubber: Stubber, replicas=REPLICAS) -> None:
    stubber.add_response(
        "send_command",
        {"Command": {"CommandId": COMMAND}},
        {
            "InstanceIds": replicas,
            "DocumentName": "AWS-RunShellScript",
            "TimeoutSeconds": 30 + 60 * len(replicas),
            "MaxConcurrency": "1",
            "MaxErrors": "0",
            "Parameters": {
                "commands": [wrap_in_bash(keysync_script("v-cur", "v-pend"))],
                "executionTimeout": ["60"],
            },
            "Comment": ANY,
        },
    )


def expect_poll(stubber: Stubber, instance: str, status: str, **extra) -> None:
    stubber.add_response(
        "get_command_invocation",
        {"CommandId": COMMAND, "InstanceId": instance, "Status": status,
         "StatusDetails": extra.pop("details", status), **extra},
        {"CommandId": COMMAND, "InstanceId": instance},
    )  # fmt: skip


def expect_success(stubber: Stubber, instance: str) -> None:
    expect_poll(stubber, instance, "InProgress")
    done = {"ResponseCode": 0, "StandardOutputContent": "current=v-cur pending=v-pend reloaded\n"}
    expect_poll(stubber, instance, "Success", **done)
    expect_poll(stubber, instance, "Success", **done)  # the final read of the output


def test_one_command_over_every_replica_one_at_a_time_and_each_is_reported(ssm) -> None:
    client, stubber = ssm
    expect_send(stubber)
    for instance in REPLICAS:
        expect_success(stubber, instance)
    reports: list[str] = []

    fleet_sync(client, reports).sync("v-cur", "v-pend")

    stubber.assert_no_pending_responses()
    assert f"(SSM command {COMMAND})" in reports[0] and "3 replica(s), 1 at a time" in reports[0]
    assert reports[1:] == [f"  replica {i} ({n}/3): key synced" for n, i in enumerate(REPLICAS, 1)]


def test_a_failing_replica_is_named_with_its_output_and_the_rest_are_not_run(ssm) -> None:
    client, stubber = ssm
    expect_send(stubber)
    expect_success(stubber, REPLICAS[0])
    expect_poll(
        stubber, REPLICAS[1], "Failed", ResponseCode=3,
        StandardErrorContent="qwen3vl-keysync: AccessDenied: secretsmanager:GetSecretValue\n",
    )  # fmt: skip
    # MaxErrors 0: SSM sends it to no one else; the third invocation never starts.
    stubber.add_client_error("get_command_invocation", "InvocationDoesNotExist")
    reports: list[str] = []

    with pytest.raises(ChannelError) as err:
        fleet_sync(client, reports).sync("v-cur", "v-pend")

    message = str(err.value)
    assert "failed on 2 of 3 replicas" in message
    assert f"{REPLICAS[1]}: exit 3: qwen3vl-keysync: AccessDenied" in message
    assert f"{REPLICAS[2]}: not run: SSM stopped at the first failure" in message
    assert REPLICAS[0] + ":" not in message
    assert reports[2].startswith(f"  replica {REPLICAS[1]} (2/3): FAILED: exit 3")


def test_a_replica_still_running_when_another_failed_is_waited_for(ssm) -> None:
    """With more than one at a time, a replica already running finishes; its result counts."""
    client, stubber = ssm
    expect_send(stubber, REPLICAS[:2])
    expect_poll(stubber, REPLICAS[0], "Failed", ResponseCode=1, StandardErrorContent="boom\n")
    expect_poll(stubber, REPLICAS[1], "InProgress")  # it had started: wait for it
    expect_success(stubber, REPLICAS[1])

    with pytest.raises(ChannelError, match=r"failed on 1 of 2 replicas.*exit 1: boom"):
        fleet_sync(client, [], REPLICAS[:2]).sync("v-cur", "v-pend")
    stubber.assert_no_pending_responses()


def test_a_replica_that_never_picks_it_up_is_a_delivery_timeout(ssm) -> None:
    client, stubber = ssm
    expect_send(stubber, REPLICAS[:1])
    expect_poll(stubber, REPLICAS[0], "TimedOut", details="DeliveryTimedOut", ResponseCode=-1)
    stubber.add_response(
        "describe_instance_information",
        {"InstanceInformationList": [{"InstanceId": REPLICAS[0], "PingStatus": "ConnectionLost"}]},
        {"Filters": [{"Key": "InstanceIds", "Values": [REPLICAS[0]]}]},
    )

    with pytest.raises(ChannelError, match=r"Delivery time-out.*ConnectionLost"):
        fleet_sync(client, [], REPLICAS[:1]).sync("v-cur", "v-pend")


def test_with_no_replica_in_service_nothing_is_sent_and_the_user_is_told_what_to_do(ssm) -> None:
    client, _stubber = ssm  # no response queued: a send_command would fail the test
    with pytest.raises(CheckFailed, match=r"No replica is InService.*qwen3vl-aws start"):
        fleet_sync(client, [], []).sync("v-cur", "v-pend")


def test_only_in_service_instances_are_synced() -> None:
    class Autoscaling:
        def describe_auto_scaling_groups(self, AutoScalingGroupNames):
            states = {"i-3": "InService", "i-1": "InService", "i-2": "Pending",
                      "i-4": "Terminating:Wait"}  # fmt: skip
            instances = [{"InstanceId": i, "LifecycleState": s} for i, s in states.items()]
            return {"AutoScalingGroups": [{"Instances": instances}]}

    assert in_service_instances(Autoscaling(), "g") == ["i-1", "i-3"]


def test_a_fleet_session_syncs_its_group_and_checks_keys_through_the_load_balancer() -> None:
    from qwen3vl_aws.deployment import Deployment
    from qwen3vl_aws.fleet.certificate import make_certificate
    from qwen3vl_aws.instance.endpoint import pin_certificate
    from qwen3vl_aws.instance.keysync import ChannelKeySync
    from qwen3vl_aws.session import DeploymentSession
    from test_ssm_channel import Clients

    alb = "q3vl-123.us-east-1.elb.amazonaws.com"
    fleet = Deployment(
        name="fleet", region="us-east-1", instance_type="g6.xlarge",
        endpoint=f"https://{alb}/v1", fleet={"autoscaling_group_name": "fleet-fleet"},
    )  # fmt: skip
    pin_certificate(fleet, make_certificate(alb).cert_pem.decode())
    session = DeploymentSession(fleet, Clients())

    assert isinstance(session.key_sync(), FleetKeySync)
    session.key_check()  # the listener's certificate is pinned: no error
    assert str(session.endpoint().base_url) == f"https://{alb}"
    single = Deployment(name="one", region="us-east-1", instance_type="g6.xlarge",
                        instance_id="i-0123456789abcdef0")  # fmt: skip
    assert isinstance(DeploymentSession(single, Clients()).key_sync(), ChannelKeySync)


def replica_root(tmp_path, name: str, exit_code: int) -> dict[str, str]:
    """A replica whose qwen3vl-keysync stand-in logs its arguments, and when it started and
    ended, then exits with ``exit_code``."""
    import os
    import stat

    from qwen3vl_aws.contract import instance_contract

    root = tmp_path / name
    script = root / instance_contract().paths["keysync"].lstrip("/")
    script.parent.mkdir(parents=True)
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$(date +%s.%N) start {name} $*" >> "{tmp_path}/log"\n'
        "sleep 0.3\n"
        f'echo "$(date +%s.%N) end {name}" >> "{tmp_path}/log"\n'
        f'[ {exit_code} = 0 ] || echo "keysync failed on {name}" >&2\n'
        f"exit {exit_code}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return {**os.environ, "QWEN3VL_ROOT": str(root)}


def test_over_run_command_replicas_run_one_at_a_time_and_stop_at_the_first_failure(
    tmp_path,
) -> None:
    """The product's SSM code (send, botocore's command_executed waiter, outcomes) against the
    rig's Run Command, which runs the command for real: one replica at a time, no replica
    started after the first failure."""
    from rig.run_command import LocalRunCommand

    replicas = {"i-1": replica_root(tmp_path, "i-1", 0), "i-2": replica_root(tmp_path, "i-2", 1),
                "i-3": replica_root(tmp_path, "i-3", 0)}  # fmt: skip
    ssm = LocalRunCommand(replicas)
    reports: list[str] = []
    sync = FleetKeySync(SsmCommands(ssm, poll_delay=0.1, delivery_timeout=30),
                        lambda: list(replicas), reports.append, timeout=30)  # fmt: skip

    with pytest.raises(ChannelError) as err:
        sync.sync("v-cur", "v-pend")

    log = [line.split()[1:] for line in (tmp_path / "log").read_text().splitlines()]
    args = ["--current", "v-cur", "--pending", "v-pend"]
    assert log == [["start", "i-1", *args], ["end", "i-1"], ["start", "i-2", *args], ["end", "i-2"]]
    assert ssm.peak_running == 1 and len(ssm.requests) == 1
    assert "i-2: exit 1: keysync failed on i-2" in str(err.value)
    assert "i-3: not run" in str(err.value)
