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
interfaces: ``instance.keysync`` and ``instance.endpoint`` implement them over the command channel
and the pinned HTTPS client, ``session.DeploymentSession.rotation`` wires them, and tests run the
state machine against moto with doubles for both. Keys never appear in messages; only version ids
do.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import CheckFailed, Qwen3vlError, UsageError
from .keygen import generate_key
from .secret import Labels, SecretStore


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
