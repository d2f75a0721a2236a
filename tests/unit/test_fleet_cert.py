"""The fleet listener's certificate: names the load balancer, is its own trust anchor, P-256."""

from __future__ import annotations

import ssl

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from qwen3vl_aws.fleet.certificate import make_certificate

NAME = "fleettest-1234567890.us-east-1.elb.amazonaws.com"


def test_certificate_names_the_load_balancer_and_matches_its_key(tmp_path) -> None:
    made = make_certificate(NAME)
    cert = x509.load_pem_x509_certificate(made.cert_pem)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [NAME]
    key = serialization.load_pem_private_key(made.key_pem, password=None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days >= 825
    # Clients pin it: it must load as the only trusted certificate of a TLS context.
    pinned = tmp_path / "cert.pem"
    pinned.write_bytes(made.cert_pem)
    context = ssl.create_default_context(cafile=str(pinned))
    assert context.get_ca_certs()[0]["subject"] == ((("commonName", NAME),),)


def test_every_certificate_has_its_own_key() -> None:
    assert make_certificate(NAME).key_pem != make_certificate(NAME).key_pem
