"""qwen3vl-keysync run for real against the AWS emulator: it fetches the key(s) by version id
through boto3 in the bootstrap's tools environment (PATH: the base OS only), writes the root-only
key file atomically and never prints a key."""

from __future__ import annotations

import contextlib
import json
import stat
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from qwen3vl_aws.keys.keygen import generate_key

from rig.gateway import SECRET_NAME, Gateway, emulator_env

pytestmark = [pytest.mark.node, pytest.mark.slow]


@pytest.fixture
def instance(moto_server: str, tmp_path: Path) -> Iterator[Gateway]:
    """The instance's files rendered in a scratch root (no nginx: keysync only writes)."""
    env = emulator_env(moto_server, tmp_path)
    boto_args = {
        "endpoint_url": moto_server,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "region_name": "us-east-1",
    }
    client = boto3.client("secretsmanager", **boto_args)
    with contextlib.suppress(client.exceptions.ResourceNotFoundException):  # a fresh secret
        client.delete_secret(SecretId=SECRET_NAME, ForceDeleteWithoutRecovery=True)
    gateway = Gateway(tmp_path / "root", 8443, 8000, "qwen3-vl", env)
    gateway.render()
    yield gateway


def line(key: str) -> str:
    """The key file's entry for ``key``: an exact, case-sensitive match of the header."""
    return f'"~^Bearer {key.replace(".", "[.]")}$" 1;'


def key_lines(gateway: Gateway) -> list[str]:
    return [line for line in gateway.key_file.read_text().splitlines() if not line.startswith("#")]


def versions(gateway: Gateway) -> dict[str, list[str]]:
    client = boto3.client(
        "secretsmanager",
        region_name="us-east-1",
        endpoint_url=gateway.aws_env["AWS_ENDPOINT_URL"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    listed = client.list_secret_version_ids(SecretId=gateway.secret_arn)["Versions"]
    return {v["VersionId"]: v["VersionStages"] for v in listed}


def stage_of(gateway: Gateway, label: str) -> str:
    return next(v for v, stages in versions(gateway).items() if label in stages)


def test_resolves_awscurrent_and_writes_a_root_only_key_file(instance: Gateway):
    key = generate_key()
    result = instance.set_keys(key)
    assert result.returncode == 0, result.stderr
    current = stage_of(instance, "AWSCURRENT")
    assert result.stdout == f"current={current} pending=- written; the gateway is not running\n"
    assert key not in result.stdout + result.stderr
    assert key_lines(instance) == [line(key)]
    assert stat.S_IMODE(instance.key_file.stat().st_mode) == 0o600
    record = json.loads((instance.root / "var/lib/qwen3vl/keys.json").read_text())
    assert (record["current"], record["pending"]) == (current, "")


def test_pending_key_is_accepted_alongside_the_current_one(instance: Gateway):
    old, new = generate_key(), generate_key()
    result = instance.set_keys(old, pending=new)
    assert result.returncode == 0, result.stderr
    pending = stage_of(instance, "AWSPENDING")
    assert f"pending={pending}" in result.stdout
    assert key_lines(instance) == [line(old), line(new)]
    assert old not in result.stdout and new not in result.stdout


def test_second_sync_with_nothing_new_changes_nothing(instance: Gateway):
    instance.set_keys(generate_key())
    before = instance.key_file.stat().st_mtime_ns
    result = instance.keysync()
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(" unchanged\n")
    assert instance.key_file.stat().st_mtime_ns == before


def test_explicit_version_ids_select_exactly_those_versions(instance: Gateway):
    first, second = generate_key(), generate_key()
    instance.set_keys(first)
    first_version = stage_of(instance, "AWSCURRENT")
    instance.set_keys(second)
    result = instance.keysync("--current", first_version)
    assert result.returncode == 0, result.stderr
    assert key_lines(instance) == [line(first)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--current", "$(reboot)"], "is not a secret version id"),
        (["--current"], "usage: qwen3vl-keysync"),
        (["--bogus", "x"], "usage: qwen3vl-keysync"),
        (["--current", "00000000-0000-0000-0000-000000000000"], "does not exist"),
    ],
)
def test_bad_arguments_fail_and_keep_the_key_file(instance: Gateway, args: list[str], message: str):
    key = generate_key()
    instance.set_keys(key)
    before = instance.key_file.read_text()
    result = instance.keysync(*args)
    assert result.returncode == 1
    assert message in result.stderr
    assert instance.key_file.read_text() == before


def test_a_malformed_secret_is_refused_without_echoing_it(instance: Gateway):
    good = generate_key()
    instance.set_keys(good)
    before = instance.key_file.read_text()
    bad = "short key with spaces"
    result = instance.set_keys(bad)
    assert result.returncode == 1
    assert "is not a valid key" in result.stderr
    assert bad not in result.stdout + result.stderr
    assert instance.key_file.read_text() == before


def test_a_sync_waits_for_the_one_in_progress(instance: Gateway):
    """Syncs run one at a time (flock), from reading the labels to the reload: a sync started
    while another holds the lock neither reads nor writes until it is released."""
    import fcntl
    import threading
    import time

    old, new = generate_key(), generate_key()
    started = time.monotonic()
    assert instance.set_keys(old).returncode == 0
    one_sync = time.monotonic() - started  # how long a sync takes when nothing holds the lock
    lock = instance.root / "var" / "lib" / "qwen3vl" / "keysync.lock"
    results = []
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # a sync in progress
        waiting = threading.Thread(target=lambda: results.append(instance.set_keys(new)))
        waiting.start()
        deadline = time.monotonic() + 2 * one_sync + 2
        while time.monotonic() < deadline:
            assert key_lines(instance) == [line(old)], "the second sync did not wait"
            time.sleep(0.2)
        assert waiting.is_alive()
    waiting.join(timeout=60)
    assert results and results[0].returncode == 0, results
    assert key_lines(instance) == [line(new)]
