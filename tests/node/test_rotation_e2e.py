"""``qwen3vl-aws rotate-key`` end to end on the node rig, under continuous load.

Real nginx (the rendered gateway config) in front of real vLLM, the real qwen3vl-keysync run
through LocalChannel against the emulator's Secrets Manager, and the CLI command itself. A client
fires requests back to back with whichever key is AWSCURRENT: none may fail; afterwards the old
key gets 401 and the new one 200; the key never shows in output, logs or any process's argv.
"""

from __future__ import annotations

import importlib.util
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from qwen3vl_aws.cli import cli
from qwen3vl_aws.instance.channel.base import CommandChannel, CommandResult
from qwen3vl_aws.keys.keygen import generate_key
from qwen3vl_aws.keys.secret import SecretStore

from rig.cli import app_with_channel
from rig.local import LocalChannel

pytestmark = [pytest.mark.node, pytest.mark.slow]

GRACE_S = 5
KEY_CHECK = "/key-check"  # answered by the gateway itself, engine or not
MIN_REQUESTS = 200


def load_bench():
    """bench/rotation.py: the load client shared with the benchmark."""
    path = Path(__file__).resolve().parents[2] / "bench" / "rotation.py"
    spec = importlib.util.spec_from_file_location("bench_rotation", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


bench = load_bench()


class RecordingChannel:
    """LocalChannel that keeps every script and result, to search them for keys."""

    def __init__(self, inner: LocalChannel) -> None:
        self._inner = inner
        self.runs: list[tuple[str, CommandResult]] = []

    def run(self, script: str, *, timeout: float = 120.0) -> CommandResult:
        result = self._inner.run(script, timeout=timeout)
        self.runs.append((script, result))
        return result


@contextmanager
def argv_watch(interval: float = 0.02) -> Iterator[set[str]]:
    """Collect every process command line seen while the block runs (sampled from /proc)."""
    seen: set[str] = set()
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    seen.add(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
                except OSError:
                    continue  # the process ended meanwhile
            time.sleep(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join(timeout=10)


def status_with(gateway, key: str, route: str = "/v1/models") -> int:
    context = ssl.create_default_context(cafile=str(gateway.cert_path))
    response = httpx.get(
        f"{gateway.base_url}{route}",
        headers={"Authorization": f"Bearer {key}"},
        verify=context,
        timeout=30,
    )
    return response.status_code


def texts_under(root: Path, *, skip: Path) -> dict[str, str]:
    """Every file under the scratch root except the key file itself (where keys belong)."""
    return {
        str(path): path.read_text(errors="replace")
        for path in root.rglob("*")
        if path.is_file() and path != skip and not path.name.startswith(skip.name + ".")
    }


@dataclass
class Rig:
    """The rig's gateway recorded as deployment ``qwen3vl``, its secret holding ``old_key``."""

    gateway: object
    store: SecretStore
    old_key: str
    old_version: str
    channel: CommandChannel | None = None

    def use_channel(self, channel: CommandChannel) -> None:
        """Later `rotate-key` runs reach the instance through ``channel``."""
        self.channel = channel


@pytest.fixture
def rig(gateway, aws_env: str) -> Iterator[Rig]:
    """The shared gateway in front of the real vLLM."""
    with recorded_rig(gateway, aws_env) as made:
        yield made


@pytest.fixture
def engineless_rig(engineless_gateway, aws_env: str) -> Iterator[Rig]:
    """A gateway whose engine is down (stopped, crashed or still loading)."""
    with recorded_rig(engineless_gateway, aws_env) as made:
        yield made


@contextmanager
def recorded_rig(gateway, aws_env: str) -> Iterator[Rig]:
    # aws_env reset the emulator: give the rig a fresh secret holding a fresh current key
    synced = gateway.set_keys(generate_key())
    assert synced.returncode == 0, synced.stderr
    sm = bench.secrets_client(aws_env)
    store = SecretStore(sm, gateway.secret_arn)
    gateway.record()

    try:
        yield Rig(gateway, store, gateway.current_key, store.labels().current)
    finally:
        # Leave the shared rig with a known, working key, on a fresh secret: moto's
        # PutSecretValue after update_secret_version_stage would leave two AWSCURRENT versions.
        sm.delete_secret(SecretId=gateway.secret_arn, ForceDeleteWithoutRecovery=True)
        restored = gateway.set_keys(generate_key())
        assert restored.returncode == 0, restored.stderr


def rotate_key(rig: Rig, *args: str, stdin: str | None = None):
    app = app_with_channel(rig.channel)
    return CliRunner().invoke(cli, ["rotate-key", *args], input=stdin, obj=app)


def test_rotate_key_under_load_fails_no_request_and_leaks_no_key(rig: Rig, vllm_server):
    gateway, store = rig.gateway, rig.store
    channel = RecordingChannel(LocalChannel(env=bench.instance_env(gateway)))
    rig.use_channel(channel)
    client = bench.LoadClient(
        gateway.base_url,
        gateway.cert_path,
        store.current_value,
        served_model_name=vllm_server.served_model_name,
    )
    results = []

    with argv_watch() as argvs:
        run = bench.rotate_under_load(
            lambda: results.append(rotate_key(rig, "--grace", str(GRACE_S))), client
        )

    (cli_result,) = results
    assert cli_result.exit_code == 0, cli_result.output
    new_key = store.current_value()
    labels = store.labels()

    # zero failed requests across the rotation, and enough of them to mean something
    print(run.stats.line(), f"sent_during={run.sent_during} seconds={run.seconds:.1f}")
    assert run.stats.failed == 0, run.stats.failures[:20]
    assert run.sent_during >= MIN_REQUESTS

    # after the grace period: old key refused, new key accepted; labels finished
    assert new_key != rig.old_key
    assert (status_with(gateway, rig.old_key), status_with(gateway, new_key)) == (401, 200)
    assert (labels.pending, labels.previous) == (None, rig.old_version)
    assert [script.split("qwen3vl-keysync", 1)[1] for script, _ in channel.runs] == [
        f" --current {rig.old_version} --pending {labels.current}",
        f" --current {labels.current}",
    ]

    # the keys appear nowhere: CLI output, scripts sent and their output, the instance's
    # logs and files (but the key file), vLLM's log, any process's argv during the run
    places = {
        "CLI output": cli_result.output,
        **{f"script {i}": script for i, (script, _) in enumerate(channel.runs)},
        **{f"output {i}": r.stdout + r.stderr for i, (_, r) in enumerate(channel.runs)},
        **texts_under(gateway.root, skip=gateway.key_file),
        "vLLM log": vllm_server.log_path.read_text(errors="replace"),
        "process argv": "\n".join(argvs),
    }
    assert len(argvs) > 10 and any("nginx" in argv for argv in argvs)
    for name, text in places.items():
        for label, key in (("old", rig.old_key), ("new", new_key)):
            assert key not in text, f"the {label} key appears in {name}"
    assert new_key in gateway.key_file.read_text()  # the search above would find it


class FirstRunBroken:
    """The instance cannot reach Secrets Manager for the first key sync, then recovers."""

    def __init__(self, gateway) -> None:
        env = bench.instance_env(gateway)
        self._broken = LocalChannel(env={**env, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
        self._working = LocalChannel(env=env)
        self.calls = 0

    def run(self, script: str, *, timeout: float = 120.0) -> CommandResult:
        self.calls += 1
        channel = self._broken if self.calls == 1 else self._working
        return channel.run(script, timeout=timeout)


def test_a_failing_key_sync_rolls_back_on_the_rig(rig: Rig):
    pending_key = generate_key()
    rig.use_channel(FirstRunBroken(rig.gateway))

    result = rotate_key(rig, "--grace", "0", "--key", "-", stdin=pending_key)

    assert result.exit_code == 7, result.output
    assert "while syncing the instance to accept both keys" in result.output
    assert "Rolled back: removed AWSPENDING from version " in result.output
    assert "the instance accepts only the current key; the current key works" in result.output
    assert "NOT DONE" not in result.output and pending_key not in result.output
    labels = rig.store.labels()
    assert (labels.current, labels.pending) == (rig.old_version, None)
    assert (status_with(rig.gateway, rig.old_key), status_with(rig.gateway, pending_key)) == (
        200,
        401,
    )


def test_grace_0_revokes_a_key_while_the_engine_is_down(engineless_rig: Rig):
    """A leaked key must be revocable exactly when the engine is stopped or loading: the keys
    are checked at the gateway itself, not through the engine."""
    rig = engineless_rig
    rig.use_channel(LocalChannel(env=bench.instance_env(rig.gateway)))

    result = rotate_key(rig, "--grace", "0")

    assert result.exit_code == 0, result.output
    new_key = rig.store.current_value()
    labels = rig.store.labels()
    assert (labels.pending, labels.previous) == (None, rig.old_version)
    assert status_with(rig.gateway, rig.old_key, KEY_CHECK) == 401
    assert status_with(rig.gateway, new_key, KEY_CHECK) == 200


def test_the_current_key_given_as_new_key_is_a_clear_error(engineless_rig: Rig):
    rig = engineless_rig
    rig.use_channel(LocalChannel(env=bench.instance_env(rig.gateway)))

    result = rotate_key(rig, "--grace", "0", "--key", "-", stdin=rig.old_key)

    assert result.exit_code == 2, result.output
    assert "is the one in force now (AWSCURRENT)" in result.output
    assert rig.old_key not in result.output
    labels = rig.store.labels()
    assert (labels.current, labels.pending) == (rig.old_version, None)
    assert status_with(rig.gateway, rig.old_key, KEY_CHECK) == 200


def test_a_second_rotate_key_on_this_machine_is_refused_while_one_runs(engineless_rig: Rig):
    from qwen3vl_aws.deployment import load_deployment
    from qwen3vl_aws.keys.locks import exclusive

    rig = engineless_rig
    rig.use_channel(LocalChannel(env=bench.instance_env(rig.gateway)))
    with exclusive(load_deployment("qwen3vl"), "rotate-key"):  # as a running rotate-key holds it
        result = rotate_key(rig, "--grace", "0")
    assert result.exit_code == 2, result.output
    assert "Another `qwen3vl-aws rotate-key` for deployment 'qwen3vl' is running" in result.output
    assert rig.store.labels().pending is None  # nothing was started
    assert rotate_key(rig, "--grace", "0").exit_code == 0  # released: it runs
