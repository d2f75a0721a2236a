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
