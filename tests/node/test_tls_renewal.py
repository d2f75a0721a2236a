"""The endpoint's certificate over its life, on the real gateway: ``health`` reads the pin's expiry
(warns 30 days ahead, fails once expired) as well as comparing it, and ``renew-cert`` has the
instance (its real bootstrap, through the local command channel) make a new leaf, reload nginx
gracefully, and pins the new one."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from qwen3vl_aws.cli import cli
from qwen3vl_aws.deployment import Deployment
from qwen3vl_aws.instance.endpoint import fingerprint
from qwen3vl_aws.instance.health import check_tls

from rig.gateway import Gateway, require, run_script
from rig.local import register
from rig.wait import caught_up

pytestmark = [pytest.mark.node, pytest.mark.slow]


@pytest.fixture
def deployment(engineless_gateway: Gateway) -> Deployment:
    """The rig's gateway recorded as a deployment on the local transport, its cert pinned."""
    gateway = engineless_gateway
    register()  # the rig's `local` transport, as `python -m rig.cli` registers it
    return gateway.record(transport="local", extra={"local_root": str(gateway.root)})


def presented(gateway: Gateway) -> str:
    return ssl.get_server_certificate(("127.0.0.1", gateway.port), timeout=10)


def serve_certificate(gateway: Gateway, not_after: dt.datetime) -> str:
    """Give the gateway a leaf for 127.0.0.1 ending at ``not_after``; reload; return its PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "127.0.0.1")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_after - dt.timedelta(days=365))
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    tls = gateway.cert_path.parent
    (tls / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    gateway.cert_path.write_text(pem)
    nginx = require("nginx", "apt-get install nginx")
    old_workers = gateway.accepting_workers()
    subprocess.run([nginx, "-c", str(gateway.conf_path), "-s", "reload"], check=True)
    # until no worker that holds the old certificate accepts (a graceful reload)
    still = caught_up(lambda: gateway.accepting_workers() & old_workers, lambda s: not s)
    assert not still, "nginx's old workers still accept connections"
    assert fingerprint(presented(gateway)) == fingerprint(pem)
    return pem


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def test_health_fails_on_an_expired_certificate_even_when_it_matches_the_pin(
    engineless_gateway: Gateway, deployment: Deployment
):
    pem = serve_certificate(engineless_gateway, now() - dt.timedelta(days=1))
    deployment.cert_path.write_text(pem)

    result = check_tls(deployment)

    assert not result.ok
    assert "expired" in result.detail
    assert "qwen3vl-aws renew-cert" in result.hint


def test_health_warns_during_the_last_30_days(engineless_gateway: Gateway, deployment: Deployment):
    pem = serve_certificate(engineless_gateway, now() + dt.timedelta(days=10, hours=1))
    deployment.cert_path.write_text(pem)

    result = check_tls(deployment)

    assert result.ok
    assert "expires in 10 days" in result.detail
    assert "qwen3vl-aws renew-cert" in result.hint


def test_renew_cert_makes_a_new_leaf_and_pins_it(
    engineless_gateway: Gateway, deployment: Deployment
):
    gateway = engineless_gateway
    old = deployment.cert_path.read_text()

    result = CliRunner().invoke(cli, ["renew-cert", "--yes"])

    assert result.exit_code == 0, result.output
    pinned = deployment.cert_path.read_text()
    assert fingerprint(pinned) != fingerprint(old)
    assert fingerprint(presented(gateway)) == fingerprint(pinned)
    assert Path(gateway.cert_path).read_text() == pinned
    cert = x509.load_pem_x509_certificate(pinned.encode())
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert check_tls(deployment).ok
    assert f"New certificate pinned at {deployment.cert_path}" in result.output


def test_the_instance_renewal_returns_once_no_worker_holds_the_old_certificate(
    engineless_gateway: Gateway,
):
    """Until nginx's old workers stop accepting, a new connection can still get the old
    certificate, which a client holding the new pin refuses. `renew-cert` returns after them."""
    gateway = engineless_gateway
    before = gateway.accepting_workers()
    assert before

    result = run_script(gateway.root, "qwen3vl-bootstrap", "renew-cert")

    assert result.returncode == 0, result.stdout + result.stderr
    assert not gateway.accepting_workers() & before, "old workers still accept connections"
    new = fingerprint(gateway.cert_path.read_text())
    assert {fingerprint(presented(gateway)) for _ in range(10)} == {new}


def test_renew_cert_asks_first(engineless_gateway: Gateway, deployment: Deployment):
    old = deployment.cert_path.read_text()
    result = CliRunner().invoke(cli, ["renew-cert"], input="n\n")
    assert result.exit_code == 1, result.output
    assert "Clients that pinned the old one" in result.output
    assert deployment.cert_path.read_text() == old
    assert fingerprint(presented(engineless_gateway)) == fingerprint(old)
