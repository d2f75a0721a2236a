"""Test doubles for the two sides of a rotation that are not Secrets Manager.

:class:`FakeGateway` plays both the instance (``sync`` fetches the versions by id from the real
moto Secrets Manager, as ``qwen3vl-keysync`` does with the instance role) and the endpoint
(``accepts`` answers like nginx's key map). Failures and interruptions are injected per call.
:func:`secrets_manager` and :func:`deploy_secret` set up the deployed state both rotation test
modules start from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from moto import mock_aws
from qwen3vl_aws.errors import ChannelError

Fault = Callable[[], None]

OLD = "sk-qwen-" + "o" * 43
NEW = "sk-qwen-" + "n" * 43


def interrupt() -> None:
    raise KeyboardInterrupt


def keysync_fails() -> None:
    raise ChannelError("The key sync (qwen3vl-keysync) failed on the instance (exit 1): boom")


class FakeGateway:
    def __init__(self, sm: Any, secret_id: str) -> None:
        self._sm = sm
        self._secret_id = secret_id
        self.accepted: set[str] = set()
        self.refused: set[str] = set()  # keys the endpoint refuses whatever the key file says
        self.sticky = False  # the reload never drops a key (old key still accepted)
        self.sync_faults: dict[int, Fault] = {}  # call number (1-based) -> fault
        self.check_faults: dict[int, Fault] = {}
        self.syncs: list[tuple[str, str | None]] = []
        self.checks = 0

    def value(self, version_id: str) -> str:
        return self._sm.get_secret_value(SecretId=self._secret_id, VersionId=version_id)[
            "SecretString"
        ]

    def sync(self, current: str, pending: str | None) -> None:
        self.syncs.append((current, pending))
        fault = self.sync_faults.get(len(self.syncs))
        if fault:
            fault()
        keys = {self.value(current)} | ({self.value(pending)} if pending else set())
        self.accepted = (self.accepted | keys) if self.sticky else keys

    def accepts(self, key: str) -> bool:
        self.checks += 1
        fault = self.check_faults.get(self.checks)
        if fault:
            fault()
        return key in self.accepted and key not in self.refused


@contextmanager
def secrets_manager(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's Secrets Manager in-process, with fake credentials and no emulator or profile."""
    for var, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


def deploy_secret(sm: Any) -> tuple[str, str, FakeGateway]:
    """A secret holding OLD and a gateway that accepts it: (ARN, OLD's version id, gateway)."""
    arn = sm.create_secret(Name="qwen3vl/api-key")["ARN"]
    old_version = sm.put_secret_value(SecretId=arn, SecretString=OLD)["VersionId"]
    gateway = FakeGateway(sm, arn)
    gateway.sync(old_version, None)
    gateway.syncs.clear()
    return arn, old_version, gateway
