"""``wait``: a scripted instance moves through the bootstrap stages (its status file rewritten over
time under a scratch ``QWEN3VL_ROOT``, read by the real scripts over :class:`LocalChannel`); the
endpoint is a real TLS server (tests/unit/fake_gateway.py); EC2 is moto, SSM is Stubber."""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from click.testing import CliRunner
from fake_gateway import FakeGateway, serve
from moto import mock_aws
from qwen3vl_aws.aws.clients import ClientFactory
from qwen3vl_aws.cli import cli
from qwen3vl_aws.deployment import Deployment
from qwen3vl_aws.errors import CheckFailed
from qwen3vl_aws.instance.readiness import Stalled, wait_until_ready
from qwen3vl_aws.instance.status import BOOTSTRAP_LOG, CERT_FILE, STATUS_FILE
from rich.console import Console

from rig.cli import app_with_channel
from rig.local import LocalChannel

KEY = "sk-qwen-" + "r" * 43
STAGES = ("packages", "model", "configure", "engine", "ready")
STEP_S = 0.1


def status(states: dict[str, str], model_bytes: int | None = None) -> dict:
    stages = [
        {
            "name": name,
            "state": states.get(name, "pending"),
            "started_at": None if states.get(name, "pending") == "pending" else "2026-11-24T10:00Z",
            "finished_at": "2026-11-24T10:01:00Z" if states.get(name) == "done" else None,
        }
        for name in STAGES
    ]
    return {"stages": stages, "model_bytes": model_bytes, "model_bytes_total": 16_000_000_000}


PROGRESSION = [
    status({"packages": "running", "model": "running"}, 0),
    status({"packages": "done", "model": "running"}, 8_000_000_000),
    status({"packages": "done", "model": "done"}, 16_000_000_000),
    # the bootstrap keeps the final byte count in the file from here on
    status({"packages": "done", "model": "done", "configure": "running"}, 16_000_000_000),
    status(
        {"packages": "done", "model": "done", "configure": "done", "engine": "running"},
        16_000_000_000,
    ),
    status(dict.fromkeys(STAGES, "done"), 16_000_000_000),
]


class ScriptedInstance:
    """Rewrites the status file (atomically) and appends to the bootstrap log, step by step."""

    def __init__(self, root: Path, steps: list[dict]) -> None:
        self.root, self.steps = root, steps
        self.status = root / STATUS_FILE.lstrip("/")
        self.log = root / BOOTSTRAP_LOG.lstrip("/")
        for path in (self.status, self.log):
            path.parent.mkdir(parents=True, exist_ok=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for number, doc in enumerate(self.steps):
            tmp = self.status.with_suffix(".tmp")
            tmp.write_text(json.dumps(doc))
            os.replace(tmp, self.status)
            running = [s["name"] for s in doc["stages"] if s["state"] == "running"]
            with self.log.open("a") as fh:
                fh.write(f"2026-11-24T10:00:{number:02d}Z [{','.join(running)}] step {number}\n")
            if self._stop.wait(STEP_S):
                return

    def __enter__(self) -> ScriptedInstance:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def aws() -> Iterator[ClientFactory]:
    with mock_aws():
        yield ClientFactory(region="us-east-1")


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[FakeGateway]:
    with serve(tmp_path, KEY) as gw:
        yield gw


@pytest.fixture
def root(tmp_path: Path, gateway: FakeGateway) -> Path:
    """The scratch instance root, holding the certificate the gateway serves."""
    root = tmp_path / "root"
    cert = root / CERT_FILE.lstrip("/")
    cert.parent.mkdir(parents=True)
    cert.write_text(gateway.cert_path.read_text())
    return root


@pytest.fixture
def channel(root: Path, tmp_path: Path) -> LocalChannel:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    journalctl = bin_dir / "journalctl"
    journalctl.write_text(
        "#!/bin/bash\necho '2026-11-24T10:02:00+0000 host vllm[9]: Loading safetensors 2/4'\n"
        "echo '-- cursor: s=1'\n"
    )
    journalctl.chmod(0o755)
    env = dict(os.environ, QWEN3VL_ROOT=str(root), PATH=f"{bin_dir}:{os.environ['PATH']}")
    return LocalChannel(env=env)


def deployment(aws: ClientFactory, gateway: FakeGateway, transport: str = "ssh") -> Deployment:
    reservation = aws.client("ec2").run_instances(
        ImageId="ami-12345678", MinCount=1, MaxCount=1, InstanceType="g5.xlarge"
    )
    return Deployment(
        name="qwen3vl",
        region="us-east-1",
        instance_type="g5.xlarge",
        instance_id=reservation["Instances"][0]["InstanceId"],
        endpoint=gateway.url + "/v1",
        transport=transport,
    )


def console() -> Console:
    return Console(file=io.StringIO(), width=120)


def test_wait_follows_every_stage_and_pins_the_certificate(aws, gateway, root, channel) -> None:
    target = deployment(aws, gateway)
    out = console()
    with ScriptedInstance(root, PROGRESSION):
        wait_until_ready(
            target, aws, channel, timeout=30, console=out, poll_interval=0.02, api_key=KEY
        )
    assert target.cert_path.read_text() == gateway.cert_path.read_text()
    shown = out.file.getvalue()
    for label in (
        "instance running",
        "SSH answering",
        "model downloaded",
        "vLLM loading",
        "endpoint answering",
    ):
        assert label in shown
    assert "16.0/16.0 GB" in shown  # the model row counts bytes
    chats = [body for method, path, body in gateway.requests if path == "/v1/chat/completions"]
    assert chats and chats[-1]["max_tokens"] == 1


def test_a_stall_names_the_stage_and_shows_its_log(aws, gateway, root, channel) -> None:
    target = deployment(aws, gateway)
    out = console()
    with ScriptedInstance(root, PROGRESSION[:2]), pytest.raises(Stalled) as caught:
        wait_until_ready(
            target, aws, channel, timeout=2.0, console=out, poll_interval=0.02, api_key=KEY
        )
    assert caught.value.stage == "model"
    assert "model downloaded (stalled)" in out.file.getvalue()
    message = str(caught.value)
    assert (
        "stage 'model downloaded' stalled (stage model is running (8.0 GB of 16.0 GB))" in message
    )
    assert "Last lines of the bootstrap log:" in message
    assert "[model] step 1" in message
    assert not target.cert_path.exists()


def test_an_engine_stall_shows_the_engine_journal(aws, gateway, root, channel) -> None:
    target = deployment(aws, gateway)
    with ScriptedInstance(root, PROGRESSION[:5]), pytest.raises(Stalled) as caught:
        wait_until_ready(
            target, aws, channel, timeout=2.0, console=console(), poll_interval=0.02, api_key=KEY
        )
    assert caught.value.stage == "engine"
    assert "Last lines of the engine log:" in str(caught.value)
    assert "Loading safetensors 2/4" in str(caught.value)


def test_a_failed_stage_stops_the_wait_at_once(aws, gateway, root, channel) -> None:
    target = deployment(aws, gateway)
    failed = status({"packages": "failed", "model": "running"})
    with ScriptedInstance(root, [failed]), pytest.raises(CheckFailed) as caught:
        wait_until_ready(
            target, aws, channel, timeout=30, console=console(), poll_interval=0.02, api_key=KEY
        )
    assert not isinstance(caught.value, Stalled)
    assert "Bootstrap stage 'packages' failed" in str(caught.value)
    assert "step 0" in str(caught.value)


DENIED = (
    "qwen3vl-keysync: access denied: the instance role may not call "
    "secretsmanager:DescribeSecret on arn:aws:secretsmanager:us-east-1:1:secret:qwen3vl/x-AbCdEf"
)


def wait_with_configure(aws, gateway, root, channel, state: str, timeout: float) -> Exception:
    """wait_until_ready while the configure stage is ``state`` with the DENIED error recorded."""
    doc = status({"packages": "done", "model": "done", "configure": state})
    next(item for item in doc["stages"] if item["name"] == "configure")["error"] = DENIED
    with ScriptedInstance(root, [doc]), pytest.raises(CheckFailed) as caught:
        wait_until_ready(
            deployment(aws, gateway), aws, channel, timeout=timeout, console=console(),
            poll_interval=0.02, api_key=KEY,
        )  # fmt: skip
    return caught.value


def test_a_stage_failed_on_a_denied_action_says_which(aws, gateway, root, channel) -> None:
    error = wait_with_configure(aws, gateway, root, channel, "failed", timeout=30)
    assert not isinstance(error, Stalled)
    assert f"Bootstrap stage 'configure' failed on the instance: {DENIED}" in str(error)


def test_a_stage_stalled_while_retrying_a_denied_action_says_which(
    aws, gateway, root, channel
) -> None:
    error = wait_with_configure(aws, gateway, root, channel, "running", timeout=2.0)
    assert isinstance(error, Stalled) and error.stage == "configure"
    assert f"stage configure is running; last error: {DENIED}" in str(error)


def test_a_wrong_key_at_the_endpoint_fails_without_waiting_out(aws, gateway, root, channel):
    target = deployment(aws, gateway)
    with ScriptedInstance(root, PROGRESSION[-1:]), pytest.raises(CheckFailed) as caught:
        wait_until_ready(
            target,
            aws,
            channel,
            timeout=30,
            console=console(),
            poll_interval=0.02,
            api_key="sk-qwen-" + "x" * 43,
        )
    assert "the key is wrong" in str(caught.value)


def test_a_stopped_instance_says_start_it(aws, gateway, channel) -> None:
    target = deployment(aws, gateway)
    aws.client("ec2").stop_instances(InstanceIds=[target.instance_id])
    with pytest.raises(CheckFailed, match=r"is stopped: start it with `qwen3vl-aws start`"):
        wait_until_ready(target, aws, channel, timeout=5, console=console(), api_key=KEY)


class StubbedSsm:
    """Real moto EC2, and an SSM client whose answers the test scripts with Stubber."""

    def __init__(self, real: ClientFactory) -> None:
        self.real = real
        self.ssm = boto3.client(
            "ssm", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )

    def client(self, service: str):
        return self.ssm if service == "ssm" else self.real.client(service)


def test_ssm_never_online_stalls_on_the_channel_stage(aws, gateway, channel) -> None:
    target = deployment(aws, gateway, transport="ssm")
    clients = StubbedSsm(aws)
    with Stubber(clients.ssm) as stubber:
        filters = {"Filters": [{"Key": "InstanceIds", "Values": [target.instance_id]}]}
        stubber.add_response(
            "describe_instance_information", {"InstanceInformationList": []}, filters
        )
        for _ in range(200):
            stubber.add_response(
                "describe_instance_information",
                {"InstanceInformationList": [{"PingStatus": "ConnectionLost"}]},
                filters,
            )
        with pytest.raises(Stalled) as caught:
            wait_until_ready(
                target,
                clients,
                channel,
                timeout=0.5,
                console=console(),
                poll_interval=0.02,
                api_key=KEY,
            )
    assert caught.value.stage == "channel"
    assert "stage 'SSM online' stalled" in str(caught.value)
    assert "get-console-output" in str(caught.value)


def test_wait_command_names_the_stalled_stage(aws, gateway, root, channel) -> None:
    target = deployment(aws, gateway)
    target.save()
    with ScriptedInstance(root, PROGRESSION[:3]):
        result = CliRunner().invoke(cli, ["wait", "--timeout", "2"], obj=app_with_channel(channel))
    assert result.exit_code == 7
    assert "Error: Timed out after 2 s: stage 'gateway configured' stalled" in result.stderr
    assert result.stdout == ""
