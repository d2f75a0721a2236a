"""The public endpoint as a client sees it: its address, its pinned certificate, a client for it.

HTTPS trusts exactly the certificate fetched from the instance over the command channel and
pinned at ``Deployment.cert_path``; never ``verify=False``. Health checks, the readiness wait and
the key rotation all talk to the endpoint through :func:`pinned_client`.
"""

from __future__ import annotations

import hashlib
import os
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..deployment import Deployment
from ..errors import CheckFailed, UsageError

HTTP_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


def endpoint_base(deployment: Deployment) -> str:
    """``https://host:port`` of the gateway (the recorded endpoint may end in ``/v1``)."""
    if deployment.endpoint:
        base = deployment.endpoint.rstrip("/")
        return base.removesuffix("/v1")
    if deployment.public_ip:
        return f"https://{deployment.public_ip}:{deployment.port}"
    raise UsageError("The deployment has no endpoint recorded yet: run `qwen3vl-aws apply`.")


def fingerprint(pem: str) -> str:
    """SHA-256 of a PEM certificate's DER bytes, as hex."""
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def pinned_fingerprint(deployment: Deployment) -> str | None:
    """The sha256 of the certificate clients pin for ``deployment``; None before any is."""
    path = deployment.cert_path
    return fingerprint(path.read_text()) if path.is_file() else None


def fetch_endpoint_certificate(base: str, timeout: float = 10.0) -> str:
    """The certificate the endpoint presents (read without trusting it, only to compare)."""
    parts = urlsplit(base)
    return ssl.get_server_certificate((parts.hostname, parts.port or 443), timeout=timeout)


def pin_certificate(deployment: Deployment, pem: str) -> None:
    """Write the instance's certificate where every client of this deployment trusts it."""
    path = deployment.cert_path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".pem.tmp")
    tmp.write_text(pem)
    os.replace(tmp, path)


def require_pinned(deployment: Deployment) -> None:
    """Refuse to talk to the endpoint before its certificate is pinned (a publicly trusted
    one needs no pin)."""
    if not deployment.publicly_trusted and not deployment.cert_path.is_file():
        raise UsageError(
            f"The endpoint's certificate is not pinned yet ({deployment.cert_path} is missing): "
            "run `qwen3vl-aws wait` first."
        )


def pinned_client(
    deployment: Deployment, api_key: str | None, *, path: str = "", **options: Any
) -> httpx.Client:
    """An HTTPS client for the deployment's endpoint: trusts only its pinned certificate (or,
    for a fleet with an ACM-issued certificate, the system's CAs).

    ``path`` is appended to the endpoint's base URL (``/v1`` for OpenAI clients); ``options``
    (``timeout``, ``limits``) go to ``httpx.Client``.
    """
    pinned = None if deployment.publicly_trusted else deployment.cert_path
    return https_client(endpoint_base(deployment) + path, pinned, api_key, **options)


def https_client(
    base_url: str, cert_path: Path | None, api_key: str | None = None, **options: Any
) -> httpx.Client:
    """An HTTPS client that trusts only the certificate at ``cert_path`` (None: the system's
    CAs) and sends the key."""
    context = ssl.create_default_context(cafile=str(cert_path) if cert_path else None)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    options.setdefault("timeout", HTTP_TIMEOUT)
    return httpx.Client(base_url=base_url, verify=context, headers=headers, **options)


#: The gateway answers this route itself (no engine behind it), so keys can be checked, and a
#: leaked one revoked, while the engine is down or still loading.
KEY_CHECK_ROUTE = "/key-check"


class EndpointKeyCheck:
    """``GET /key-check`` through the public gateway, TLS verified against the pinned cert."""

    def __init__(self, http: httpx.Client, timeout: float = 15.0) -> None:
        self._http = http  # from pinned_client(), without a key of its own
        self._timeout = timeout

    def accepts(self, key: str) -> bool:
        try:
            response = self._http.get(
                KEY_CHECK_ROUTE, headers={"Authorization": f"Bearer {key}"}, timeout=self._timeout
            )
        except httpx.HTTPError as exc:
            raise CheckFailed(f"The endpoint did not answer: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 200:
            return True
        if response.status_code in (401, 403):
            return False
        raise CheckFailed(
            f"The endpoint answered HTTP {response.status_code} to {KEY_CHECK_ROUTE}."
        )
