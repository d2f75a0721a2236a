"""`scale`, `stop` and `start` for a fleet: the Auto Scaling group's bounds, moved directly.

The bounds also live in Terraform's input ``replicas``. ``scale`` writes the new bounds there too,
so the next plan shows no change and the next ``apply`` keeps them (unless it is given other
``--replicas``). ``stop`` sets MIN, MAX and the desired capacity to 0, so neither a scaling policy
nor the wake-from-zero alarm starts a replica, and remembers the bounds in the deployment record;
``start`` restores them. Terraform's input keeps the running bounds while stopped, so an ``apply``
of a stopped fleet starts it again, and a plan while stopped shows the bounds to restore.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..aws.clients import aws_errors
from ..deployment import Deployment
from ..errors import UsageError

#: record.extra key: the bounds a stopped fleet goes back to.
STOPPED_BOUNDS = "fleet_stopped_bounds"


@dataclass(frozen=True)
class Bounds:
    min_size: int
    max_size: int
    desired: int

    @property
    def replicas(self) -> str:
        return f"{self.min_size}:{self.max_size}"


def group_name(record: Deployment) -> str:
    if not record.is_fleet:
        raise UsageError(
            f"Deployment {record.name!r} is a single instance, not a fleet: `scale` needs one "
            "made with `qwen3vl-aws apply --replicas MIN:MAX`."
        )
    return record.fleet["autoscaling_group_name"]  # type: ignore[index]


def current_bounds(autoscaling: Any, group: str) -> Bounds:
    with aws_errors(f"Reading the Auto Scaling group {group}"):
        found = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    groups = found["AutoScalingGroups"]
    if not groups:
        raise UsageError(f"The Auto Scaling group {group} is gone: run `qwen3vl-aws apply`.")
    g = groups[0]
    return Bounds(g["MinSize"], g["MaxSize"], g["DesiredCapacity"])


def set_bounds(autoscaling: Any, group: str, bounds: Bounds) -> None:
    with aws_errors(f"Changing the bounds of the Auto Scaling group {group}"):
        autoscaling.update_auto_scaling_group(
            AutoScalingGroupName=group,
            MinSize=bounds.min_size,
            MaxSize=bounds.max_size,
            DesiredCapacity=bounds.desired,
        )


def stopped_bounds(record: Deployment) -> Bounds | None:
    saved = record.extra.get(STOPPED_BOUNDS)
    return Bounds(**saved) if isinstance(saved, dict) else None


def check_scale(record: Deployment, low: int, high: int) -> None:
    """Refuse, before asking, what `scale` cannot do: a single instance, or a move to or from
    MIN 0 (that adds or removes the scale-to-zero pieces, which only `apply` makes)."""
    group_name(record)
    if (low == 0) != (record.fleet.get("min_size") == 0):  # type: ignore[union-attr]
        raise UsageError(
            "Scaling to or from MIN 0 adds or removes the scale-to-zero alarms and the 503 "
            f"rule: run `qwen3vl-aws --name {record.name} apply --replicas {low}:{high}` instead."
        )


def scale(autoscaling: Any, record: Deployment, low: int, high: int) -> tuple[Bounds, Bounds]:
    """Move the group to MIN..MAX (desired clamped into them); return (before, after).

    The caller records the new bounds (record and Terraform input) only after this succeeded.
    """
    group = group_name(record)
    if stopped_bounds(record) is not None:
        raise UsageError(
            f"Fleet {record.name!r} is stopped: `qwen3vl-aws start` it first, then scale."
        )
    before = current_bounds(autoscaling, group)
    after = Bounds(low, high, min(max(before.desired, low), high))
    set_bounds(autoscaling, group, after)
    return before, after


def stop(autoscaling: Any, record: Deployment) -> Bounds | None:
    """Set the group to 0 (MIN, MAX, desired) and remember its bounds in the record; None when
    it was already stopped."""
    group = group_name(record)
    if stopped_bounds(record) is not None:
        return None
    before = current_bounds(autoscaling, group)
    record.extra[STOPPED_BOUNDS] = {
        "min_size": before.min_size,
        "max_size": before.max_size,
        "desired": before.desired,
    }
    record.save()  # first, so a failed stop can still be started
    set_bounds(autoscaling, group, Bounds(0, 0, 0))
    return before


def start(autoscaling: Any, record: Deployment) -> Bounds | None:
    """Restore the remembered bounds, with at least one replica desired (a fleet that scales
    to zero wakes now rather than on its first request); None when it was not stopped."""
    group = group_name(record)
    saved = stopped_bounds(record)
    if saved is None:
        return None
    restored = Bounds(saved.min_size, saved.max_size, max(saved.min_size, min(1, saved.max_size)))
    set_bounds(autoscaling, group, restored)
    del record.extra[STOPPED_BOUNDS]
    record.save()
    return restored
