"""``rotate-key``, ``key`` and ``exec`` as a user runs them: exact exit codes, no key in output."""

from __future__ import annotations

import pytest
from channel_doubles import RecordingChannel
from click.testing import CliRunner
from qwen3vl_aws.cli import App, cli
from qwen3vl_aws.deployment import Deployment
from qwen3vl_aws.instance.channel.base import CommandResult
from qwen3vl_aws.keys.rotation import Rotation
from qwen3vl_aws.session import DeploymentSession
from rotation_doubles import NEW, OLD, deploy_secret, interrupt, secrets_manager

from rig.cli import app_with_channel


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch):
    """A recorded deployment whose secret holds OLD; the rotation's far side is a FakeGateway."""
    with secrets_manager(monkeypatch) as sm:
        arn, _old_version, gateway = deploy_secret(sm)
        Deployment(
            name="qwen3vl",
            region="us-east-1",
            instance_type="g6.xlarge",
            instance_id="i-0123456789abcdef0",
            secret_arn=arn,
        ).save()

        yield sm, arn, gateway


@pytest.fixture
def app(deployed) -> App:
    """The CLI's App with the FakeGateway as the rotation's instance and endpoint."""
    _sm, _arn, gateway = deployed

    class GatewaySession(DeploymentSession):
        def rotation(self, *, report):
            return Rotation(
                self.secret(), gateway, gateway, report=report, sleep=lambda _s: None, settle=0
            )

    return App(session_type=GatewaySession)


def run(app: App, *args: str, stdin: str | None = None):
    return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False, obj=app)


def current_key(sm, arn: str) -> str:
    # explicit stage: moto's stage-less default does not follow update_secret_version_stage
    return sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"]


def test_rotate_key_prints_steps_and_how_to_read_the_key_but_not_the_key(deployed, app):
    sm, arn, gateway = deployed

    result = run(app, "rotate-key", "--grace", "0")

    assert result.exit_code == 0, result.output
    new = current_key(sm, arn)
    assert new != OLD and gateway.accepted == {new}
    assert "• Storing the new key as AWSPENDING" in result.output
    assert result.output.rstrip().endswith("Read it with: qwen3vl-aws --name qwen3vl key")
    assert new not in result.output and OLD not in result.output


def test_rotate_key_reads_a_chosen_key_from_stdin_and_shows_it_only_when_asked(deployed, app):
    sm, arn, gateway = deployed

    result = run(app, "rotate-key", "--grace", "0", "--key", "-", "--show-key", stdin=NEW + "\n")

    assert result.exit_code == 0, result.output
    assert current_key(sm, arn) == NEW and gateway.accepted == {NEW}
    assert result.stdout.splitlines()[-1] == NEW


def test_a_key_given_as_argument_is_refused_and_not_echoed(deployed, app):
    sm, arn, _gateway = deployed

    result = run(app, "rotate-key", "--key", NEW)

    assert result.exit_code == 2
    assert "never passed as an argument" in result.output
    assert NEW not in result.output
    assert current_key(sm, arn) == OLD


def test_a_malformed_key_on_stdin_is_refused(deployed, app):
    sm, arn, _gateway = deployed

    result = run(app, "rotate-key", "--key", "-", stdin="short key!\n")

    assert result.exit_code == 2
    assert "The key is malformed" in result.output
    assert "short key" not in result.output
    assert current_key(sm, arn) == OLD


def test_a_failed_rotation_exits_7_and_says_what_it_undid(deployed, app):
    sm, arn, gateway = deployed
    gateway.refused = {NEW}

    result = run(app, "rotate-key", "--grace", "0", "--key", "-", stdin=NEW)

    assert result.exit_code == 7
    assert "Error: Key rotation failed while verifying the pending key" in result.output
    assert "Rolled back: removed AWSPENDING" in result.output
    assert NEW not in result.output and current_key(sm, arn) == OLD


def test_interrupt_then_abort(deployed, app):
    sm, arn, gateway = deployed
    gateway.sync_faults[1] = interrupt

    interrupted = run(app, "rotate-key", "--grace", "0")
    aborted = run(app, "rotate-key", "--abort")
    again = run(app, "rotate-key", "--abort")

    assert interrupted.exit_code == 130
    assert "run `qwen3vl-aws rotate-key` to resume" in interrupted.output
    assert aborted.exit_code == 0 and "Rolled back: removed AWSPENDING" in aborted.output
    assert again.exit_code == 0 and "nothing to roll back" in again.output
    assert current_key(sm, arn) == OLD and gateway.accepted == {OLD}


def test_key_prints_the_current_key(deployed, app):
    result = run(app, "key")
    assert (result.exit_code, result.stdout) == (0, OLD + "\n")


def test_key_without_a_deployment_says_to_apply(deployed, app):
    result = run(app, "--name", "other", "key")
    assert result.exit_code == 5
    assert "Run `qwen3vl-aws apply` first" in result.output


def test_exec_runs_the_quoted_command_and_exits_with_its_code(deployed):
    chan = RecordingChannel(CommandResult(3, "out\n", "err\n"))

    result = run(app_with_channel(chan), "exec", "--", "ls", "-l", "/etc/qwen3vl dir")

    assert chan.scripts == ["ls -l '/etc/qwen3vl dir'"]
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")


def test_exec_says_when_ssm_truncated_the_output(deployed):
    chan = RecordingChannel(CommandResult(0, "x" * 24_000, "", truncated=True))

    result = run(app_with_channel(chan), "exec", "--", "journalctl")

    assert result.exit_code == 0
    assert "Output truncated by SSM" in result.stderr


class ReplicaCommands:
    """SSM stand-in for FleetKeySync: each sent key sync reaches the FakeGateway (the replicas
    behind one balancer) and every replica's invocation succeeds."""

    delivery_timeout = 30

    def __init__(self, gateway) -> None:
        self._gateway = gateway
        self.sent: list[dict] = []

    def send(self, instance_ids, script, timeout, **spread):
        words = script.split()
        versions = dict(zip(words[1::2], words[2::2], strict=False))
        self._gateway.sync(versions["--current"], versions.get("--pending"))
        self.sent.append({"InstanceIds": instance_ids, **spread})
        return "cmd-1"

    def wait(self, command_id, instance_id, timeout, budget):
        return CommandResult(0, "", "")


def test_rotate_key_on_a_fleet_prints_each_replica_under_its_step(deployed):
    from qwen3vl_aws.fleet.keysync import FleetKeySync

    _sm, _arn, gateway = deployed
    commands = ReplicaCommands(gateway)
    replicas = ["i-0aaaaaaaaaaaaaaa1", "i-0aaaaaaaaaaaaaaa2"]

    class FleetSession(DeploymentSession):
        def rotation(self, *, report):
            sync = FleetKeySync(commands, lambda: replicas, report)
            return Rotation(self.secret(), sync, gateway, report=report, sleep=lambda _s: None,
                            settle=0)  # fmt: skip

    result = run(App(session_type=FleetSession), "rotate-key", "--grace", "0")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    step = lines.index("• Instance: accept the current and the pending key (syncing the instance "
                       "to accept both keys)")  # fmt: skip
    assert lines[step + 1].startswith("• Key sync sent to 2 replica(s), 1 at a time")
    assert lines[step + 2 : step + 4] == [
        "  replica i-0aaaaaaaaaaaaaaa1 (1/2): key synced",
        "  replica i-0aaaaaaaaaaaaaaa2 (2/2): key synced",
    ]
    assert [s["MaxErrors"] for s in commands.sent] == ["0", "0"]  # both syncs, one command each
