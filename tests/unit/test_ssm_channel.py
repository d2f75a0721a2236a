"""The SSM transport's paths that moto cannot show (its SSM always succeeds): botocore Stubber."""

from __future__ import annotations

import subprocess

import boto3
import pytest
from botocore.stub import Stubber
from channel_doubles import COMMAND_ID, INSTANCE, expect_poll, expect_send_command, ssm_channel
from qwen3vl_aws.deployment import Deployment
from qwen3vl_aws.errors import ChannelError, UsageError
from qwen3vl_aws.instance.channel.factory import channel_for
from qwen3vl_aws.instance.channel.ssh import SshChannel
from qwen3vl_aws.instance.channel.ssm import STDOUT_CAP, SsmChannel, wrap_in_bash

SCRIPT = 'echo "hello from $(hostname)"'


def expect_send(stubber: Stubber, *, timeout: int = 60) -> None:
    parameters = {"commands": [wrap_in_bash(SCRIPT)], "executionTimeout": [str(timeout)]}
    expect_send_command(stubber, parameters)


def expect_registration(stubber: Stubber, ping: str | None) -> None:
    info = [{"InstanceId": INSTANCE, "PingStatus": ping}] if ping else []
    stubber.add_response(
        "describe_instance_information",
        {"InstanceInformationList": info},
        {"Filters": [{"Key": "InstanceIds", "Values": [INSTANCE]}]},
    )


def test_success_returns_output_after_waiting_through_pending_states(ssm):
    client, stubber = ssm
    expect_send(stubber)
    stubber.add_client_error("get_command_invocation", "InvocationDoesNotExist")
    expect_poll(stubber, "Pending")
    expect_poll(stubber, "InProgress")
    done = {"ResponseCode": 0, "StandardOutputContent": "hello from box\n"}
    expect_poll(stubber, "Success", **done)
    expect_poll(stubber, "Success", **done)  # the final read of the output

    result = ssm_channel(client).run(SCRIPT, timeout=60)

    assert (result.exit_code, result.stdout, result.truncated) == (0, "hello from box\n", False)


def test_execution_failure_is_a_result_with_the_scripts_exit_code(ssm):
    client, stubber = ssm
    expect_send(stubber)
    expect_poll(stubber, "InProgress")
    expect_poll(
        stubber, "Failed", ResponseCode=3, StandardErrorContent="keysync: cannot read secret\n"
    )

    result = ssm_channel(client).run(SCRIPT, timeout=60)

    assert (result.exit_code, result.ok) == (3, False)
    with pytest.raises(ChannelError, match=r"exit 3.*cannot read secret"):
        result.check("The key sync")


def test_delivery_timeout_says_the_agent_never_picked_it_up(ssm):
    client, stubber = ssm
    expect_send(stubber)
    expect_poll(stubber, "Pending")
    expect_poll(stubber, "Delayed")
    expect_poll(stubber, "TimedOut", "DeliveryTimedOut", ResponseCode=-1)
    expect_registration(stubber, "ConnectionLost")

    with pytest.raises(ChannelError) as err:
        ssm_channel(client).run(SCRIPT, timeout=60)

    message = str(err.value)
    assert message.startswith("Delivery time-out")
    assert "never picked the command up" in message
    assert "ConnectionLost" in message


def test_delayed_until_the_waiter_gives_up_cancels_and_reports_delivery(ssm):
    client, stubber = ssm
    expect_send(stubber, timeout=1)
    attempts = 30 + 1 + 30  # delivery time-out + execution time-out + slack, one poll a second
    for _ in range(attempts):
        expect_poll(stubber, "Delayed")
    stubber.add_response("cancel_command", {}, {"CommandId": COMMAND_ID, "InstanceIds": [INSTANCE]})
    expect_registration(stubber, "Online")

    with pytest.raises(ChannelError, match=r"^Delivery time-out.*status Delayed"):
        ssm_channel(client).run(SCRIPT, timeout=1)


def test_execution_timeout_is_not_a_delivery_problem(ssm):
    client, stubber = ssm
    expect_send(stubber)
    expect_poll(stubber, "InProgress")
    expect_poll(
        stubber, "TimedOut", "ExecutionTimedOut", ResponseCode=-1, StandardOutputContent="step 1\n"
    )

    with pytest.raises(ChannelError, match=r"^Execution time-out.*within 60 s.*step 1"):
        ssm_channel(client).run(SCRIPT, timeout=60)


def test_unregistered_instance_says_what_to_check(ssm):
    client, stubber = ssm
    stubber.add_client_error(
        "send_command", "InvalidInstanceId", "Instances not in a valid state for account"
    )
    expect_registration(stubber, None)

    with pytest.raises(ChannelError) as err:
        ssm_channel(client).run(SCRIPT, timeout=60)

    message = str(err.value)
    assert f"{INSTANCE} is not registered with SSM" in message
    assert "ssm:UpdateInstanceInformation" in message
    assert "no record of this instance" in message


def test_output_at_the_24000_character_cap_is_flagged_truncated(ssm):
    client, stubber = ssm
    expect_send(stubber)
    full = {"ResponseCode": 0, "StandardOutputContent": "x" * STDOUT_CAP}
    expect_poll(stubber, "Success", **full)
    expect_poll(stubber, "Success", **full)

    result = ssm_channel(client).run(SCRIPT, timeout=60)

    assert result.ok and result.truncated and len(result.stdout) == STDOUT_CAP


def test_output_under_the_cap_is_not_flagged(ssm):
    client, stubber = ssm
    expect_send(stubber)
    short = {"ResponseCode": 0, "StandardOutputContent": "x" * (STDOUT_CAP - 1)}
    expect_poll(stubber, "Success", **short)
    expect_poll(stubber, "Success", **short)

    assert not ssm_channel(client).run(SCRIPT, timeout=60).truncated


def test_wrapped_script_runs_under_bash_even_when_sh_starts_it():
    script = (
        '[[ -n "$BASH_VERSION" ]] && echo bash\ncat <<QWEN3VL_SCRIPT_END\ninner\nQWEN3VL_SCRIPT_END'
    )
    proc = subprocess.run(
        ["sh", "-c", wrap_in_bash(script)], capture_output=True, text=True, check=False
    )
    assert (proc.returncode, proc.stdout) == (0, "bash\ninner\n")


def deployment(**overrides) -> Deployment:
    settings = {
        "name": "qwen3vl",
        "region": "us-east-1",
        "instance_type": "g6.xlarge",
        "instance_id": INSTANCE,
        "public_ip": "203.0.113.7",
    }
    return Deployment(**{**settings, **overrides})


class Clients:
    """A ClientFactory stand-in: real (unused) boto3 clients, no calls are made."""

    def client(self, service: str):
        return boto3.client(
            service,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


def test_channel_for_picks_the_transport_the_deployment_records():
    assert isinstance(channel_for(deployment(), Clients()), SsmChannel)
    ssh = channel_for(deployment(transport="ssh", ssh_user="ubuntu"), Clients())
    assert isinstance(ssh, SshChannel)


def test_channel_for_says_what_is_missing():
    with pytest.raises(UsageError, match="no instance recorded"):
        channel_for(deployment(instance_id=None), Clients())
    with pytest.raises(UsageError, match="no public address or SSH user"):
        channel_for(deployment(transport="ssh"), Clients())
    with pytest.raises(UsageError, match="Unknown transport 'telnet'"):
        channel_for(deployment(transport="telnet"), Clients())
    with pytest.raises(ChannelError, match="not an SSH fingerprint"):
        channel_for(
            deployment(transport="ssh", ssh_user="ubuntu"), Clients(), accept_host_key="abc"
        )


def test_an_unexpected_error_while_waiting_is_a_channel_error(ssm):
    client, stubber = ssm
    expect_send(stubber)
    stubber.add_client_error("get_command_invocation", "AccessDeniedException", "not allowed")

    with pytest.raises(ChannelError, match=r"could not report on command .*AccessDenied"):
        ssm_channel(client).run(SCRIPT, timeout=60)
