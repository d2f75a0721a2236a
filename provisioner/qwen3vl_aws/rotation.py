"""Zero-downtime key rotation on Secrets Manager's own state machine.

One client token names the new secret version. The version labels are the only state, so a run
that was interrupted is picked up from them:

=================================  ====================  ======================================
labels                             phase                 next step
=================================  ====================  ======================================
AWSCURRENT only                    ``idle``              put the new key as AWSPENDING
AWSPENDING on another version      ``started``           sync both keys, verify, promote
AWSPENDING and AWSCURRENT on one   ``promoted``          grace, sync new key only, verify, finish
=================================  ====================  ======================================

The instance side (:class:`InstanceSync`) and the endpoint check (:class:`KeyCheck`) are small
interfaces so tests can run the state machine against moto with doubles for both. Keys never
appear in messages; only version ids do.
"""

from __future__ import annotations

import shlex
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .aws import aws_errors
from .channel.base import CommandChannel
from .deployment import Deployment
from .errors import CheckFailed, NotDeployedError, Qwen3vlError, UsageError
from .keys import generate_key

CURRENT, PENDING, PREVIOUS = "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"
# The instance's key sync script; QWEN3VL_ROOT (unset on an instance) lets the node rig run it in
# a scratch root.
KEYSYNC = '"${QWEN3VL_ROOT:-}"/opt/qwen3vl/bin/qwen3vl-keysync'


class RotationFailed(CheckFailed):
    """A rotation step failed; the message says which and what was rolled back."""


class InstanceSync(Protocol):
    """Makes the instance(s) accept exactly the keys of the given secret versions."""

    def sync(self, current: str, pending: str | None) -> None:
        """Raise a :class:`Qwen3vlError` if the instance could not be brought in line."""
        ...


class KeyCheck(Protocol):
    """Asks the public endpoint whether it accepts a key, with a real request."""

    def accepts(self, key: str) -> bool:
        """True for 200, False for 401/403; raise :class:`CheckFailed` for anything else."""
        ...


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


class ChannelKeySync:
    """Runs ``qwen3vl-keysync`` on the instance through the command channel (version ids only)."""

    def __init__(self, channel: CommandChannel) -> None:
        self._channel = channel

    def sync(self, current: str, pending: str | None) -> None:
        args = ["--current", current] + (["--pending", pending] if pending else [])
        script = f"{KEYSYNC} {shlex.join(args)}"
        self._channel.run(script, timeout=120).check("The key sync (qwen3vl-keysync)")


#: The gateway answers this route itself (no engine behind it), so keys can be checked, and a
#: leaked one revoked, while the engine is down or still loading.
KEY_CHECK_ROUTE = "/key-check"


class EndpointKeyCheck:
    """``GET /key-check`` through the public gateway, TLS verified against the pinned cert."""

    def __init__(self, endpoint: str, cert_path: Path, timeout: float = 15.0) -> None:
        import httpx

        if not cert_path.is_file():
            raise UsageError(
                f"The endpoint's certificate is not pinned yet ({cert_path} is missing): run "
                "`qwen3vl-aws wait` first."
            )
        context = ssl.create_default_context(cafile=str(cert_path))
        self._client = httpx.Client(base_url=endpoint.rstrip("/"), verify=context, timeout=timeout)
        self._httpx = httpx

    def accepts(self, key: str) -> bool:
        try:
            response = self._client.get(KEY_CHECK_ROUTE, headers={"Authorization": f"Bearer {key}"})
        except self._httpx.HTTPError as exc:
            raise CheckFailed(f"The endpoint did not answer: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 200:
            return True
        if response.status_code in (401, 403):
            return False
        raise CheckFailed(
            f"The endpoint answered HTTP {response.status_code} to {KEY_CHECK_ROUTE}."
        )


@dataclass(frozen=True)
class Outcome:
    """The finished rotation (or rollback): version ids only."""

    current: str
    previous: str | None


Reporter = Callable[[str], None]


class Rotation:
    """Drives the state machine; every public method can be called again after an interruption."""

    def __init__(
        self,
        store: SecretStore,
        instance: InstanceSync,
        endpoint: KeyCheck,
        *,
        report: Reporter = lambda _msg: None,
        sleep: Callable[[float], None] = time.sleep,
        settle: float = 15.0,
    ) -> None:
        self._store = store
        self._instance = instance
        self._endpoint = endpoint
        self._report = report
        self._sleep = sleep
        self._settle = settle  # how long a graceful reload may take to show at the endpoint

    def rotate(self, new_key: str | None = None, *, grace: float) -> Outcome:
        """Start a rotation, or resume the one the labels show; return the new version."""
        if grace < 0:
            raise UsageError("--grace must be 0 or more seconds.")
        labels = self._store.labels()
        if labels.phase == "idle":
            if new_key is not None and new_key == self._store.current_value():
                raise UsageError(
                    "The key given is the one in force now (AWSCURRENT): rotating to it would "
                    "leave the same key accepted. Pipe a different key to --key -, or leave "
                    "--key out to have one generated."
                )
            key = new_key or generate_key()
            labels = Labels(current=labels.current, pending=str(uuid.uuid4()))
            self._report(f"Storing the new key as AWSPENDING (version {labels.pending})")
            self._store.put_pending(labels.pending, key)
        elif new_key is not None:
            raise UsageError(
                f"A rotation to version {labels.pending} is already in progress ({labels.phase}). "
                "Run `qwen3vl-aws rotate-key` without --key to resume it, or with --abort to roll "
                "it back."
            )
        else:
            self._report(f"Resuming the rotation to version {labels.pending} ({labels.phase})")
        if labels.phase == "started":
            self._before_promotion(labels.current, labels.pending)
            labels = Labels(current=labels.pending, pending=labels.pending, previous=labels.current)
        if labels.previous is None:
            raise Qwen3vlError(
                f"Version {labels.current} holds AWSCURRENT and AWSPENDING but no version holds "
                "AWSPREVIOUS, so the old key is unknown. Remove the AWSPENDING label in the "
                "Secrets Manager console, then rotate again."
            )
        self._after_promotion(labels.previous, labels.current, grace)
        return Outcome(current=labels.current, previous=labels.previous)

    def abort(self) -> Outcome | None:
        """Roll an interrupted rotation back; None when nothing was in progress."""
        labels = self._store.labels()
        if labels.phase == "idle":
            return None
        if labels.phase == "started":
            undone = self._undo_started(labels.current, labels.pending)
            old = labels.current
        else:
            if labels.previous is None:
                raise Qwen3vlError("Cannot roll back: no version holds AWSPREVIOUS.")
            undone = self._undo_promoted(labels.previous, labels.current)
            old = labels.previous
        self._report("Rolled back: " + "; ".join(undone))
        return Outcome(current=old, previous=None)

    def _before_promotion(self, old: str, new: str) -> None:
        step = "starting"
        try:
            old_key, new_key = self._store.value(old), self._store.value(new)
            step = "syncing the instance to accept both keys"
            self._report(f"Instance: accept the current and the pending key ({step})")
            self._instance.sync(current=old, pending=new)
            step = "verifying the pending key through the endpoint"
            self._report("Endpoint: checking the pending key with a real request")
            self._expect(new_key, accepted=True, what="the pending key")
            self._expect(old_key, accepted=True, what="the current key")
            step = "promoting the pending key to AWSCURRENT"
            self._report(f"Secrets Manager: AWSCURRENT -> {new}, AWSPREVIOUS -> {old}")
            self._store.promote(new, old)
        except Qwen3vlError as exc:
            undone = self._undo_started(old, new)
            raise RotationFailed(_failure(step, exc, undone)) from exc

    def _after_promotion(self, old: str, new: str, grace: float) -> None:
        step = "starting"
        try:
            old_key, new_key = self._store.value(old), self._store.value(new)
            if grace:
                self._report(f"Grace period: both keys accepted for {grace:g} s")
                self._sleep(grace)
            step = "syncing the instance to accept only the new key"
            self._report(f"Instance: accept only the new key ({step})")
            self._instance.sync(current=new, pending=None)
            step = "verifying the endpoint accepts the new key and refuses the old one"
            self._report("Endpoint: checking the new key works and the old one is refused")
            self._expect(new_key, accepted=True, what="the new key")
            self._expect(old_key, accepted=False, what="the old key")
            step = "removing the AWSPENDING label"
            self._store.drop_pending(new)
        except Qwen3vlError as exc:
            undone = self._undo_promoted(old, new)
            raise RotationFailed(_failure(step, exc, undone)) from exc
        self._report("Rotation finished: only the new key is accepted")

    def _undo_started(self, old: str, new: str) -> list[str]:
        return [
            self._try(f"removed AWSPENDING from version {new}", self._store.drop_pending, new),
            self._resync(old),
        ]

    def _undo_promoted(self, old: str, new: str) -> list[str]:
        return [
            self._try(f"AWSCURRENT is version {old} again", self._store.demote, old, new),
            self._try(f"removed AWSPENDING from version {new}", self._store.drop_pending, new),
            self._resync(old),
        ]

    def _resync(self, current: str) -> str:
        """Bring the instance back to the current key only, and check that key works."""
        synced = self._try(
            "the instance accepts only the current key", self._instance.sync, current, None
        )

        def works() -> None:
            self._expect(self._store.value(current), accepted=True, what="the current key")

        return synced + "; " + self._try("the current key works at the endpoint", works)

    def _try(self, done: str, action: Callable[..., None], *args: Any) -> str:
        try:
            action(*args)
        except Qwen3vlError as exc:
            return f"NOT DONE ({done}): {exc}"
        return done

    def _expect(self, key: str, *, accepted: bool, what: str) -> None:
        """Poll the endpoint until it gives the expected answer or ``settle`` seconds pass."""
        deadline = time.monotonic() + self._settle
        while self._endpoint.accepts(key) != accepted:
            if time.monotonic() >= deadline:
                verdict = "refused" if accepted else "still accepted"
                raise CheckFailed(f"The endpoint {verdict} {what} after {self._settle:g} s.")
            self._sleep(0.5)


def _failure(step: str, exc: Exception, undone: list[str]) -> str:
    return f"Key rotation failed while {step}: {exc}\nRolled back: " + "; ".join(undone) + "."


def secret_store(deployment: Deployment, clients: Any) -> SecretStore:
    """The deployment's key secret (``clients`` is a ClientFactory)."""
    if not deployment.secret_arn:
        raise NotDeployedError(
            f"Deployment {deployment.name!r} has no key secret recorded: run `qwen3vl-aws apply`."
        )
    return SecretStore(clients.client("secretsmanager"), deployment.secret_arn)


def rotation_for(
    deployment: Deployment,
    clients: Any,
    *,
    report: Reporter,
    accept_host_key: str | None = None,
) -> Rotation:
    """The rotation of a recorded deployment: its secret, its command channel, its endpoint."""
    from .channel.factory import channel_for
    from .health import endpoint_base

    channel = channel_for(deployment, clients, accept_host_key=accept_host_key)
    return Rotation(
        secret_store(deployment, clients),
        ChannelKeySync(channel),
        EndpointKeyCheck(endpoint_base(deployment), deployment.cert_path),
        report=report,
    )
