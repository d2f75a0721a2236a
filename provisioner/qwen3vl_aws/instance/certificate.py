"""The endpoint's TLS certificate as clients pin it: what it is, when it expires, renewing it.

The instance makes a self-signed server leaf for its address (qwen3vl-bootstrap); ``wait`` pins
it. ``health`` compares the presented certificate with the pin and reads the pin's expiry here;
``renew-cert`` has the instance make a new one over the command channel, then re-pins it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ..deployment import Deployment
from ..errors import CheckFailed
from .channel.base import CommandChannel

#: ``health`` warns this many days before the pinned certificate expires.
WARN_DAYS = 30
RENEW_HINT = "Renew it: `qwen3vl-aws renew-cert` (the instance makes a new one; it is re-pinned)."
BOOTSTRAP = '"${QWEN3VL_ROOT:-}"/opt/qwen3vl/bin/qwen3vl-bootstrap'


@dataclass(frozen=True)
class CertificateInfo:
    """A certificate's SHA-256 fingerprint (hex) and validity end."""

    sha256: str
    not_after: datetime

    def days_left(self, now: datetime) -> float:
        return (self.not_after - now).total_seconds() / 86400


def inspect_certificate(pem: str) -> CertificateInfo:
    """Parse a PEM certificate (``cryptography``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    cert = x509.load_pem_x509_certificate(pem.encode())
    return CertificateInfo(cert.fingerprint(hashes.SHA256()).hex(), cert.not_valid_after_utc)


def expiry_status(info: CertificateInfo, now: datetime) -> tuple[str, str]:
    """``("ok" | "warn" | "expired", what to say)`` for the certificate's remaining validity."""
    day = info.not_after.strftime("%Y-%m-%d")
    days = info.days_left(now)
    if days <= 0:
        return "expired", f"the certificate expired on {day}"
    if days <= WARN_DAYS:
        return "warn", f"the certificate expires in {int(days)} days ({day})"
    return "ok", f"valid until {day}"


def renew_certificate(
    deployment: Deployment,
    channel: CommandChannel,
    *,
    verify: Callable[[Deployment], bool],
    settle_s: float = 15.0,
) -> CertificateInfo:
    """Make a new certificate on the instance, pin it, and wait until the endpoint presents it.

    ``verify`` says whether the endpoint presents the pinned certificate (``health.check_tls``).
    """
    from .endpoint import pin_certificate
    from .status import read_certificate

    channel.run(f"{BOOTSTRAP} renew-cert", timeout=120).check(
        "Renewing the TLS certificate (qwen3vl-bootstrap renew-cert)"
    )
    pem = read_certificate(channel)
    pin_certificate(deployment, pem)
    deadline = time.monotonic() + settle_s
    while not verify(deployment):
        if time.monotonic() >= deadline:
            raise CheckFailed(
                f"The new certificate is pinned, but the endpoint did not present it within "
                f"{settle_s:g} s: check the gateway with `qwen3vl-aws logs --unit gateway`."
            )
        time.sleep(0.5)
    return inspect_certificate(pem)
