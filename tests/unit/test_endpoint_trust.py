"""Which certificate a client of the endpoint trusts: the pinned file for a single instance and
for a fleet whose listener certificate the CLI imported; the system's CAs for a fleet whose
certificate ACM issued for --domain (nothing to pin, and rotate-key's check must still run)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from qwen3vl_aws.deployment import IMPORTED_CERTIFICATE_KEY, Deployment
from qwen3vl_aws.errors import UsageError
from qwen3vl_aws.instance import endpoint

IMPORTED = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
ISSUED = "arn:aws:acm:us-east-1:123456789012:certificate/66666666-7777-8888-9999-000000000000"


def _fleet(certificate_arn: str, imported: str | None) -> Deployment:
    return Deployment(
        name="trusttest",
        region="us-east-1",
        instance_type="g5.xlarge",
        endpoint="https://llm.example.com/v1",
        fleet={"certificate_arn": certificate_arn},
        extra={IMPORTED_CERTIFICATE_KEY: imported} if imported else {},
    )


def _cafile_seen(monkeypatch: pytest.MonkeyPatch, record: Deployment) -> list[str | None]:
    seen: list[str | None] = []
    real = ssl.create_default_context

    def spy(*args, cafile: str | None = None, **kwargs):
        seen.append(cafile)
        return real(*args, **kwargs)

    monkeypatch.setattr(endpoint.ssl, "create_default_context", spy)
    endpoint.pinned_client(record, None).close()
    return seen


def test_a_domain_fleet_trusts_the_public_cas_and_needs_no_pin(
    monkeypatch: pytest.MonkeyPatch, state_home: Path
) -> None:
    record = _fleet(ISSUED, None)
    assert record.publicly_trusted
    endpoint.require_pinned(record)  # no pin file, no error
    assert _cafile_seen(monkeypatch, record) == [None]


def test_a_fleet_with_the_imported_certificate_uses_the_pin(
    monkeypatch: pytest.MonkeyPatch, state_home: Path
) -> None:
    record = _fleet(IMPORTED, IMPORTED)
    assert not record.publicly_trusted
    with pytest.raises(UsageError, match="not pinned yet"):
        endpoint.require_pinned(record)
    assert _cafile_seen(monkeypatch, record) == [str(record.cert_path)]


def test_a_single_instance_uses_the_pin(state_home: Path) -> None:
    record = Deployment(name="trusttest", region="us-east-1", instance_type="g5.xlarge")
    assert not record.publicly_trusted
    with pytest.raises(UsageError, match="not pinned yet"):
        endpoint.require_pinned(record)
