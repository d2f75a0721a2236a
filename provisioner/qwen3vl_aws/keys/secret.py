"""The deployment's API key in Secrets Manager, seen as versions and rotation labels.

Only version ids ever appear in messages; values are returned to the caller and held in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..aws.clients import aws_errors
from ..deployment import Deployment
from ..errors import NotDeployedError, UsageError

CURRENT, PENDING, PREVIOUS = "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"


@dataclass(frozen=True)
class Labels:
    """Which version holds which rotation label."""

    current: str
    pending: str | None = None
    previous: str | None = None

    @property
    def phase(self) -> str:
        if self.pending is None:
            return "idle"
        return "promoted" if self.pending == self.current else "started"


class SecretStore:
    """The deployment's secret in Secrets Manager, seen as labels and versions."""

    def __init__(self, secretsmanager: Any, secret_id: str) -> None:
        self._sm = secretsmanager
        self._id = secret_id

    def labels(self) -> Labels:
        with aws_errors("Reading the key's versions from Secrets Manager"):
            stages = self._sm.describe_secret(SecretId=self._id).get("VersionIdsToStages", {})
        holder = {label: vid for vid, labels in stages.items() for label in labels}
        if CURRENT not in holder:
            raise UsageError(
                f"The secret {self._id} has no AWSCURRENT version yet: run `qwen3vl-aws apply`, "
                "which stores the first key."
            )
        return Labels(holder[CURRENT], holder.get(PENDING), holder.get(PREVIOUS))

    def value(self, version_id: str) -> str:
        with aws_errors(f"Reading key version {version_id}"):
            return self._sm.get_secret_value(SecretId=self._id, VersionId=version_id)[
                "SecretString"
            ]

    def current_value(self) -> str:
        with aws_errors("Reading the current key"):
            return self._sm.get_secret_value(SecretId=self._id, VersionStage=CURRENT)[
                "SecretString"
            ]

    def put_pending(self, token: str, key: str) -> None:
        with aws_errors("Storing the new key as AWSPENDING"):
            self._sm.put_secret_value(
                SecretId=self._id,
                ClientRequestToken=token,
                SecretString=key,
                VersionStages=[PENDING],
            )

    def promote(self, new: str, old: str) -> None:
        """AWSCURRENT moves to ``new``; Secrets Manager labels ``old`` AWSPREVIOUS itself."""
        with aws_errors("Promoting the new key to AWSCURRENT"):
            self._move(CURRENT, to=new, away_from=old)

    def demote(self, old: str, new: str) -> None:
        """Undo :meth:`promote`: AWSCURRENT back on ``old``."""
        with aws_errors("Restoring the previous key as AWSCURRENT"):
            self._move(CURRENT, to=old, away_from=new)

    def drop_pending(self, version: str) -> None:
        with aws_errors("Removing the AWSPENDING label"):
            self._sm.update_secret_version_stage(
                SecretId=self._id, VersionStage=PENDING, RemoveFromVersionId=version
            )

    def _move(self, label: str, *, to: str, away_from: str) -> None:
        self._sm.update_secret_version_stage(
            SecretId=self._id, VersionStage=label, MoveToVersionId=to, RemoveFromVersionId=away_from
        )


def secret_store(deployment: Deployment, clients: Any) -> SecretStore:
    """The deployment's key secret (``clients`` is a ClientFactory)."""
    if not deployment.secret_arn:
        raise NotDeployedError(
            f"Deployment {deployment.name!r} has no key secret recorded: run `qwen3vl-aws apply`."
        )
    return SecretStore(clients.client("secretsmanager"), deployment.secret_arn)
