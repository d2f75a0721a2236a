"""The fleet's listener certificate when there is no domain: made here, imported into ACM.

The load balancer's DNS name is known only once it exists, so `apply` creates the load balancer
first, makes a self-signed certificate naming that DNS name (the private key never leaves this
process except into ACM), imports it, and passes its ARN to Terraform. Clients pin the
certificate (saved beside the deployment record) exactly as they pin a single instance's.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY_DAYS = 825  # the longest validity clients such as Apple's accept for a TLS server


@dataclass(frozen=True)
class Certificate:
    """A PEM certificate and its PEM private key (unencrypted: it goes straight into ACM)."""

    cert_pem: bytes
    key_pem: bytes


def make_certificate(dns_name: str, *, days: int = VALIDITY_DAYS) -> Certificate:
    """A self-signed P-256 certificate for ``dns_name``, usable as its own trust anchor."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_name[:64])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Certificate(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def import_certificate(acm: Any, certificate: Certificate, deployment: str) -> str:
    """Import into ACM (tagged with the deployment); return the certificate's ARN."""
    response = acm.import_certificate(
        Certificate=certificate.cert_pem,
        PrivateKey=certificate.key_pem,
        Tags=[
            {"Key": "Project", "Value": "qwen3vl-aws"},
            {"Key": "Deployment", "Value": deployment},
        ],
    )
    return response["CertificateArn"]


#: Re-import a certificate this close to its end (ACM keeps the ARN, the listener follows).
RENEW_WITHIN_DAYS = 30


@dataclass(frozen=True)
class Imported:
    """The listener's imported certificate: its ACM ARN and its PEM (what clients pin)."""

    arn: str
    cert_pem: str


def ensure_imported(
    acm: Any, deployment: str, dns_name: str, arn: str | None, pinned: str | None
) -> Imported:
    """The imported certificate for ``dns_name``: the recorded one (``arn``, whose PEM is
    ``pinned``) while it names ``dns_name`` and has more than :data:`RENEW_WITHIN_DAYS` left;
    otherwise a new one, re-imported under the same ARN when ACM still has it (the listener
    keeps its ARN), or imported afresh. A re-apply therefore never piles up certificates."""
    current = _describe(acm, arn) if arn else None
    if current is not None and pinned and _still_good(current, dns_name):
        return Imported(arn, pinned)  # type: ignore[arg-type]
    made = make_certificate(dns_name)
    if current is not None:
        acm.import_certificate(
            CertificateArn=arn, Certificate=made.cert_pem, PrivateKey=made.key_pem
        )
        new_arn = arn
    else:
        new_arn = import_certificate(acm, made, deployment)
    return Imported(new_arn, made.cert_pem.decode())  # type: ignore[arg-type]


def _describe(acm: Any, arn: str) -> dict[str, Any] | None:
    import botocore.exceptions

    try:
        return acm.describe_certificate(CertificateArn=arn)["Certificate"]
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise


def _still_good(described: dict[str, Any], dns_name: str) -> bool:
    not_after = described.get("NotAfter")
    if described.get("DomainName") != dns_name or not isinstance(not_after, datetime.datetime):
        return False
    left = not_after - datetime.datetime.now(datetime.UTC)
    return left > datetime.timedelta(days=RENEW_WITHIN_DAYS)


def delete_imported(acm: Any, arn: str, *, timeout: float = 300, sleep: Any = None) -> bool:
    """Delete the imported certificate once the listener has let go of it; False when ACM
    no longer has it. ACM refuses (ResourceInUseException) for a while after the load
    balancer is deleted, so this retries for up to ``timeout`` seconds."""
    import time

    import botocore.exceptions

    pause = sleep or time.sleep
    deadline = time.monotonic() + timeout
    while True:
        try:
            acm.delete_certificate(CertificateArn=arn)
            return True
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "ResourceNotFoundException":
                return False
            if code != "ResourceInUseException" or time.monotonic() >= deadline:
                raise
        pause(10)
