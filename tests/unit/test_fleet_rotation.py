"""RollingKeySync: a fleet's key sync visits the replicas one after another and stops at the
first one that fails, so the rotation reports it and can resume from the secret's labels."""

from __future__ import annotations

import pytest
from qwen3vl_aws.errors import CheckFailed
from qwen3vl_aws.fleet.rotation import RollingKeySync


class Replica:
    def __init__(self, name: str, log: list[str], fail: bool = False) -> None:
        self.name, self.log, self.fail = name, log, fail

    def sync(self, current: str, pending: str | None) -> None:
        self.log.append(f"{self.name} {current} {pending}")
        if self.fail:
            raise CheckFailed(f"The key sync failed on {self.name}")


def test_every_replica_is_synced_in_turn_with_both_versions() -> None:
    log: list[str] = []
    reports: list[str] = []
    replicas = [(n, Replica(n, log)) for n in ("i-1", "i-2", "i-3")]
    RollingKeySync(replicas, reports.append).sync("v-cur", "v-pend")
    assert log == ["i-1 v-cur v-pend", "i-2 v-cur v-pend", "i-3 v-cur v-pend"]
    assert reports[1] == "Syncing the key on replica i-2 (2/3)"


def test_the_roll_stops_at_the_first_failing_replica() -> None:
    log: list[str] = []
    replicas = [("i-1", Replica("i-1", log)), ("i-2", Replica("i-2", log, fail=True)),
                ("i-3", Replica("i-3", log))]  # fmt: skip
    with pytest.raises(CheckFailed, match="i-2"):
        RollingKeySync(replicas, lambda _m: None).sync("v-cur", None)
    assert log == ["i-1 v-cur None", "i-2 v-cur None"]
