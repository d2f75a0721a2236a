"""One factory for boto3 clients, so every AWS call shares retries and error handling.

boto3 honours ``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_<SERVICE>``) by itself, which is how the
whole toolkit is pointed at an emulator. Tests swap the factory for one returning stubbed clients.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from ..errors import AwsError
from . import denied

RETRY_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 8}, connect_timeout=10, read_timeout=60
)


class ClientFactory:
    """Builds (and caches) boto3 clients for one region and profile."""

    def __init__(self, region: str | None = None, profile: str | None = None) -> None:
        self._session = boto3.session.Session(region_name=region, profile_name=profile)
        self._clients: dict[tuple[str, str | None, int], Any] = {}

    @property
    def region(self) -> str:
        """The region in force: the one given, else the profile's or environment's."""
        region = self._session.region_name
        if not region:
            raise AwsError(
                "No AWS region is set: pass --region, or set AWS_REGION / AWS_DEFAULT_REGION."
            )
        return region

    def client(
        self, service: str, region: str | None = None, *, config: Config | None = None
    ) -> Any:
        """A boto3 client for ``service`` (in ``region``, default the factory's).

        ``config`` is merged over the shared retry settings (e.g. fewer attempts for a call that
        is only nice to have).
        """
        key = (service, region, id(config))
        if key not in self._clients:
            self._clients[key] = denied.install(
                self._session.client(
                    service,
                    region_name=region or self.region,
                    config=RETRY_CONFIG.merge(config) if config else RETRY_CONFIG,
                )
            )
        return self._clients[key]

    def credentials_available(self) -> bool:
        """True when boto3 can find credentials (it does not call AWS)."""
        return self._session.get_credentials() is not None


ClientSource = Callable[[str], Any]


@contextmanager
def aws_errors(action: str) -> Iterator[None]:
    """Turn botocore failures into an :class:`AwsError` that says what was being done."""
    try:
        yield
    except botocore.exceptions.NoCredentialsError as exc:
        raise AwsError(
            f"{action}: no AWS credentials found. Run `aws configure`, set AWS_PROFILE, or "
            "export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
        ) from exc
    except botocore.exceptions.EndpointConnectionError as exc:
        raise AwsError(f"{action}: cannot reach AWS at {exc.kwargs.get('endpoint_url')}.") from exc
    except botocore.exceptions.ClientError as exc:
        refused = denied.denied(exc.response, exc.operation_name)
        if refused is not None:
            raise AwsError(denied.denied_message(action, *refused)) from exc
        err = exc.response.get("Error", {})
        raise AwsError(f"{action}: {err.get('Code', 'Error')}: {err.get('Message', exc)}") from exc
