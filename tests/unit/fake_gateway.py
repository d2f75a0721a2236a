"""A small HTTPS stand-in for the gateway, for unit tests of the client side of health and wait.

It speaks real TLS with a self-signed certificate for 127.0.0.1 (made here with cryptography, like
the instance's own), checks the Bearer key like nginx does (all but /health), and answers the routes
like vLLM does. ``engine_up = False`` makes it answer 502, as nginx does with vLLM stopped. The
real nginx + vLLM pair is exercised by tests/node/test_health_rig.py.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

MODEL = "Qwen/Qwen3-VL-8B-Instruct"


def self_signed(directory: Path, name: str = "gateway") -> tuple[Path, Path]:
    """A self-signed certificate for IP 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}-cert.pem", directory / f"{name}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class FakeGateway:
    url: str
    cert_path: Path
    key: str
    engine_up: bool = True
    requests: list[tuple[str, str, dict]] = field(default_factory=list)


def _handler(gateway: FakeGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self, body: dict) -> None:
            gateway.requests.append((self.command, self.path, body))
            keyed = self.path != "/health"  # like nginx's map: /health is open
            if keyed and self.headers.get("Authorization") != f"Bearer {gateway.key}":
                return self._reply(401, {"error": "unauthorized"})
            if not gateway.engine_up:
                return self._reply(502, {"error": "bad gateway"})
            if self.path == "/health":
                return self._reply(200, {})
            if self.path == "/v1/models":
                return self._reply(200, {"object": "list", "data": [{"id": MODEL}]})
            if self.path == "/v1/chat/completions" and body.get("model") == MODEL:
                return self._reply(
                    200,
                    {
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": "A"}}],
                        "usage": {"prompt_tokens": 12, "completion_tokens": 1},
                    },
                )
            return self._reply(404, {"error": "not found"})

        def do_GET(self) -> None:
            self._handle({})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            self._handle(json.loads(self.rfile.read(length) or b"{}"))

    return Handler


@contextmanager
def serve(directory: Path, key: str) -> Iterator[FakeGateway]:
    """Run a fake gateway on a free loopback port until the block ends."""
    cert_path, key_path = self_signed(directory)
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    gateway = FakeGateway(f"https://127.0.0.1:{server.server_address[1]}", cert_path, key)
    server.RequestHandlerClass = _handler(gateway)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield gateway
    finally:
        server.shutdown()
        server.server_close()
