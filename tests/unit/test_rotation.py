"""The rotation state machine against moto's Secrets Manager; doubles for instance and endpoint."""

from __future__ import annotations

import os

import pytest
from qwen3vl_aws.errors import AwsError, ChannelError, UsageError
from qwen3vl_aws.instance.keysync import ChannelKeySync
from qwen3vl_aws.keys.rotation import Rotation, RotationFailed
from qwen3vl_aws.keys.secret import Labels, SecretStore
from rotation_doubles import NEW, OLD, deploy_secret, interrupt, keysync_fails, secrets_manager

from rig.local import LocalChannel


@pytest.fixture
def sm(monkeypatch: pytest.MonkeyPatch):
    with secrets_manager(monkeypatch) as client:
        yield client


class World:
    """A deployed secret holding OLD, an instance that accepts it, and a rotation to drive."""

    def __init__(self, sm) -> None:
        self.sm = sm
        self.arn, self.old_version, self.gateway = deploy_secret(sm)
        self.store = SecretStore(sm, self.arn)
        self.messages: list[str] = []
        self.sleeps: list[float] = []

    def rotation(self, store: SecretStore | None = None) -> Rotation:
        return Rotation(
            store or self.store,
            self.gateway,
            self.gateway,
            report=self.messages.append,
            sleep=self.sleeps.append,
            settle=0,
        )

    def labels(self) -> Labels:
        return self.store.labels()

    def assert_rolled_back(self) -> None:
        """The state every failure must end in: old key current and working, nothing pending."""
        labels = self.labels()
        assert (labels.current, labels.pending) == (self.old_version, None)
        assert self.gateway.accepted == {OLD}

    def assert_rotated(self) -> str:
        labels = self.labels()
        assert labels.pending is None
        assert labels.previous == self.old_version
        assert self.store.value(labels.current) == NEW
        assert self.gateway.accepted == {NEW}
        return labels.current

    def assert_no_key_in_output(self, *texts: str) -> None:
        for text in [*self.messages, *texts]:
            assert OLD not in text and NEW not in text


@pytest.fixture
def world(sm) -> World:
    return World(sm)


def test_rotation_walks_the_labels_and_ends_with_only_the_new_key(world: World):
    outcome = world.rotation().rotate(NEW, grace=42)

    new_version = world.assert_rotated()
    assert outcome.current == new_version and outcome.previous == world.old_version
    # both keys accepted first, then only the new one; the grace period in between
    assert world.gateway.syncs == [(world.old_version, new_version), (new_version, None)]
    assert world.sleeps[0] == 42
    assert any("AWSPENDING" in m for m in world.messages)
    assert world.messages[-1] == "Rotation finished: only the new key is accepted"
    world.assert_no_key_in_output()


def test_generated_key_when_none_is_given(world: World):
    outcome = world.rotation().rotate(grace=0)

    key = world.store.value(outcome.current)
    assert key.startswith("sk-qwen-") and key != OLD
    assert world.gateway.accepted == {key}
    assert world.sleeps == []  # --grace 0: no wait at all


def test_back_to_back_rotations_each_retire_the_key_before(world: World):
    first = world.rotation().rotate(NEW, grace=0)
    third_key = "sk-qwen-" + "t" * 43

    second = world.rotation().rotate(third_key, grace=0)

    labels = world.labels()
    assert (labels.current, labels.previous, labels.pending) == (
        second.current,
        first.current,
        None,
    )
    assert world.store.current_value() == third_key
    assert world.gateway.accepted == {third_key}


def test_the_client_token_is_the_new_version_id(world: World):
    world.gateway.sync_faults[1] = interrupt
    with pytest.raises(KeyboardInterrupt):
        world.rotation().rotate(NEW, grace=0)
    pending = world.labels().pending

    outcome = world.rotation().rotate(grace=0)

    assert outcome.current == pending
    assert len(world.sm.list_secret_version_ids(SecretId=world.arn)["Versions"]) == 2


def test_pending_key_refused_by_endpoint_rolls_back(world: World):
    world.gateway.refused = {NEW}

    with pytest.raises(RotationFailed) as err:
        world.rotation().rotate(NEW, grace=0)

    world.assert_rolled_back()
    message = str(err.value)
    assert "while verifying the pending key through the endpoint" in message
    assert "refused the pending key" in message
    assert "removed AWSPENDING" in message and "NOT DONE" not in message
    world.assert_no_key_in_output(message)


def test_sync_failing_on_the_instance_rolls_back(world: World):
    world.gateway.sync_faults[1] = keysync_fails

    with pytest.raises(RotationFailed, match="while syncing the instance to accept both keys"):
        world.rotation().rotate(NEW, grace=0)

    world.assert_rolled_back()


def test_promotion_failing_rolls_back(world: World):
    class DeniedPromotion(SecretStore):
        def promote(self, new: str, old: str) -> None:
            raise AwsError("Promoting the new key to AWSCURRENT: AccessDeniedException: denied")

    with pytest.raises(RotationFailed, match=r"while promoting the pending key.*AccessDenied"):
        world.rotation(DeniedPromotion(world.sm, world.arn)).rotate(NEW, grace=0)

    world.assert_rolled_back()


def test_final_sync_failing_restores_the_old_key_as_current(world: World):
    world.gateway.sync_faults[2] = keysync_fails

    with pytest.raises(RotationFailed) as err:
        world.rotation().rotate(NEW, grace=0)

    world.assert_rolled_back()
    assert "while syncing the instance to accept only the new key" in str(err.value)
    assert f"AWSCURRENT is version {world.old_version} again" in str(err.value)


def test_old_key_still_accepted_after_final_sync_fails_and_rolls_back(world: World):
    world.gateway.sticky = True

    with pytest.raises(RotationFailed, match="still accepted the old key"):
        world.rotation().rotate(NEW, grace=0)

    labels = world.labels()
    assert (labels.current, labels.pending) == (world.old_version, None)
    assert OLD in world.gateway.accepted


def test_a_rollback_that_cannot_reach_the_instance_says_so(world: World):
    world.gateway.sync_faults = {1: keysync_fails, 2: keysync_fails}

    with pytest.raises(RotationFailed) as err:
        world.rotation().rotate(NEW, grace=0)

    message = str(err.value)
    assert "NOT DONE (the instance accepts only the current key)" in message
    assert world.labels().pending is None  # the labels are rolled back all the same


# Where a run can be cut off (Ctrl-C or a crash), and the phase the labels then show.
INTERRUPTIONS = {
    "before the first sync": ("sync", 1, "started"),
    "while verifying the pending key": ("check", 1, "started"),
    "during the grace period": ("sleep", 1, "promoted"),
    "during the final sync": ("sync", 2, "promoted"),
    "while verifying the old key is refused": ("check", 4, "promoted"),
}


def cut_off(world: World, where: str) -> str:
    kind, call, phase = INTERRUPTIONS[where]
    rotation = world.rotation()
    if kind == "sync":
        world.gateway.sync_faults[call] = interrupt
    elif kind == "check":
        world.gateway.check_faults[call] = interrupt
    else:
        rotation._sleep = lambda _s: interrupt()
    with pytest.raises(KeyboardInterrupt):
        rotation.rotate(NEW, grace=5)
    world.gateway.sync_faults.clear()
    world.gateway.check_faults.clear()
    return phase


@pytest.mark.parametrize("where", INTERRUPTIONS)
def test_an_interrupted_rotation_resumes_from_the_labels(world: World, where: str):
    phase = cut_off(world, where)
    assert world.labels().phase == phase
    # the current key keeps working while the rotation is stuck
    assert world.gateway.accepts(world.store.current_value())

    world.rotation().rotate(grace=0)

    world.assert_rotated()
    assert any("Resuming the rotation" in m for m in world.messages)


@pytest.mark.parametrize("where", INTERRUPTIONS)
def test_an_interrupted_rotation_can_be_rolled_back(world: World, where: str):
    cut_off(world, where)

    outcome = world.rotation().abort()

    assert outcome is not None and outcome.current == world.old_version
    world.assert_rolled_back()
    assert "NOT DONE" not in world.messages[-1]


def test_a_new_key_is_refused_while_a_rotation_is_in_progress(world: World):
    cut_off(world, "before the first sync")
    before = world.labels()

    with pytest.raises(UsageError, match=r"already in progress.*--abort"):
        world.rotation().rotate("sk-qwen-" + "x" * 43, grace=0)

    assert world.labels() == before


def test_abort_with_nothing_in_progress_changes_nothing(world: World):
    assert world.rotation().abort() is None
    world.assert_rolled_back()


def test_negative_grace_is_refused_before_anything_changes(world: World):
    with pytest.raises(UsageError, match="--grace"):
        world.rotation().rotate(NEW, grace=-1)
    world.assert_rolled_back()
    assert world.gateway.syncs == []


def test_a_secret_without_a_current_key_says_to_apply(sm):
    arn = sm.create_secret(Name="empty")["ARN"]
    with pytest.raises(UsageError, match=r"no AWSCURRENT version.*apply"):
        SecretStore(sm, arn).labels()


def fake_keysync(root, exit_code: int) -> None:
    script = root / "opt" / "qwen3vl" / "bin" / "qwen3vl-keysync"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(f'#!/bin/sh\necho "$@" >> "$QWEN3VL_ROOT/calls"\nexit {exit_code}\n')
    script.chmod(0o755)


def test_channel_key_sync_runs_the_rooted_script_with_version_ids(tmp_path):
    fake_keysync(tmp_path, 0)
    sync = ChannelKeySync(LocalChannel(env={**os.environ, "QWEN3VL_ROOT": str(tmp_path)}))

    sync.sync("version-c", "version-p")
    sync.sync("version-p", None)

    assert (tmp_path / "calls").read_text().splitlines() == [
        "--current version-c --pending version-p",
        "--current version-p",
    ]


def test_channel_key_sync_failure_is_a_channel_error(tmp_path):
    fake_keysync(tmp_path, 1)
    sync = ChannelKeySync(LocalChannel(env={**os.environ, "QWEN3VL_ROOT": str(tmp_path)}))

    with pytest.raises(ChannelError, match=r"key sync \(qwen3vl-keysync\) failed.*exit 1"):
        sync.sync("version-c", None)
