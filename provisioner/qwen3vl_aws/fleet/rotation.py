"""Key rotation across a fleet: the same state machine (rotation.Rotation), with a key sync that
rolls over every replica in turn.

One replica at a time keeps the fleet serving while each gateway reloads, and the first replica
that fails stops the roll, so the rotation reports it and can resume or roll back from the
secret's labels. A replica that boots mid-rotation reads both AWSCURRENT and AWSPENDING itself
(qwen3vl-keysync without arguments), so it never misses the pending key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..keys.rotation import InstanceSync


class RollingKeySync:
    """An ``InstanceSync`` over several replicas, synced one after another."""

    def __init__(
        self, replicas: Sequence[tuple[str, InstanceSync]], report: Callable[[str], None]
    ) -> None:
        self._replicas = list(replicas)
        self._report = report

    def sync(self, current: str, pending: str | None) -> None:
        for n, (name, replica) in enumerate(self._replicas, 1):
            self._report(f"Syncing the key on replica {name} ({n}/{len(self._replicas)})")
            replica.sync(current, pending)
