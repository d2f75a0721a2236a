"""`apply --replicas MIN:MAX` and its companions: parsed and checked before anything is created.

Everything here is plain validation of the user's values (no AWS call) plus the two checks that
need the region or the serving plan, :func:`check_zones` and :func:`check_alternatives`. The
result maps onto the fleet's Terraform variables (terraform/fleet_variables.tf).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..aws.catalog import get_instance_type
from ..errors import UsageError

_REPLICAS = re.compile(r"^(\d{1,3}):(\d{1,3})$")
#: The module's limits (fleet_variables.tf), checked here so a bad value changes nothing.
MAX_REPLICAS = 100
IDLE_MINUTES = (5, 1440)
TARGET_LOAD = (0, 1024)
#: The module's defaults for what the user leaves out (fleet_variables.tf; a test holds them
#: equal): shown in the help and the plan summary, never sent, so the module stays the source.
MODULE_DEFAULTS = {"target_load": 8, "idle_minutes": 30, "on_demand_base": 0}


def parse_replicas(text: str) -> tuple[int, int]:
    """``"MIN:MAX"`` as two whole numbers with MIN <= MAX and 1 <= MAX <= 100."""
    match = _REPLICAS.match(text.strip())
    if match is None:
        raise UsageError(
            f"--replicas {text!r}: give MIN:MAX with two whole numbers, e.g. 2:4 (always at "
            "least 2 running) or 0:3 (scale to zero when idle)."
        )
    low, high = int(match[1]), int(match[2])
    if high < 1 or high > MAX_REPLICAS:
        raise UsageError(f"--replicas {text}: MAX must be between 1 and {MAX_REPLICAS}.")
    if low > high:
        raise UsageError(f"--replicas {text}: MIN ({low}) must not exceed MAX ({high}).")
    return low, high


@dataclass(frozen=True)
class FleetOptions:
    """The fleet shape the user asked for (terraform/fleet_variables.tf)."""

    min_size: int
    max_size: int
    target_load: float | None = None  # None: the module's default
    idle_minutes: int | None = None  # MIN 0 only; None: the module's default
    spot: bool = False
    on_demand_base: int | None = None  # spot only
    alternative_instance_types: tuple[str, ...] = ()  # spot only
    route53_zone_id: str | None = None  # with --domain: an ACM-issued certificate
    certificate_arn: str | None = None  # the imported certificate (set by apply, not the user)

    @property
    def replicas(self) -> str:
        return f"{self.min_size}:{self.max_size}"

    @property
    def scales_to_zero(self) -> bool:
        return self.min_size == 0

    def effective(self, name: str) -> Any:
        """The value the fleet runs with: the user's, else the module's default."""
        given = getattr(self, name)
        return MODULE_DEFAULTS[name] if given is None else given

    def terraform_variables(self) -> dict[str, Any]:
        """The fleet's inputs; a value the user did not give is left to the module's default."""
        variables: dict[str, Any] = {"replicas": self.replicas, "spot": self.spot}
        optional = {
            "target_load": self.target_load,
            "idle_minutes": self.idle_minutes,
            "on_demand_base": self.on_demand_base,
            "route53_zone_id": self.route53_zone_id,
            "certificate_arn": self.certificate_arn,
        }
        variables.update({k: v for k, v in optional.items() if v is not None})
        if self.alternative_instance_types:
            variables["alternative_instance_types"] = list(self.alternative_instance_types)
        return variables


def fleet_options(
    replicas: str | None,
    *,
    target_load: float | None = None,
    idle_minutes: int | None = None,
    spot: bool = False,
    on_demand_base: int | None = None,
    alternative_instance_types: Sequence[str] = (),
    domain: str = "",
    route53_zone_id: str | None = None,
    subnet_id: str | None = None,
    ssh_key_name: str | None = None,
) -> FleetOptions | None:
    """The user's fleet options, checked together; None (a single instance) without --replicas.

    A fleet option without ``--replicas`` is refused rather than ignored, so a typo never turns
    a fleet into a single instance silently; so are the single instance's own ``subnet_id`` and
    ``ssh_key_name`` with it.
    """
    given = {
        "--target-load": target_load is not None,
        "--idle-minutes": idle_minutes is not None,
        "--spot": spot,
        "--on-demand-base": on_demand_base is not None,
        "--alternative-instance-types": bool(alternative_instance_types),
        "--route53-zone-id": route53_zone_id is not None,
    }
    if replicas is None:
        stray = [flag for flag, used in given.items() if used]
        if stray:
            raise UsageError(f"{', '.join(stray)} only apply to a fleet: add --replicas MIN:MAX.")
        return None
    low, high = parse_replicas(replicas)
    for option, value in (("--subnet-id", subnet_id), ("--ssh-key-name", ssh_key_name)):
        if value:
            raise UsageError(
                f"{option} is for a single instance: a fleet spreads its replicas over a subnet "
                "in each zone offering the type and reaches them over SSM."
            )
    if idle_minutes is not None:
        if low != 0:
            raise UsageError(
                f"--idle-minutes scales an idle fleet to zero, so it needs MIN 0 (--replicas "
                f"0:{high}); with MIN {low} the group never goes below {low}."
            )
        if not IDLE_MINUTES[0] <= idle_minutes <= IDLE_MINUTES[1]:
            raise UsageError(
                f"--idle-minutes {idle_minutes}: give {IDLE_MINUTES[0]} to {IDLE_MINUTES[1]} "
                "(one day, CloudWatch's longest alarm window)."
            )
    if target_load is not None and not TARGET_LOAD[0] < target_load <= TARGET_LOAD[1]:
        raise UsageError(
            f"--target-load {target_load:g}: give the requests (running plus waiting) per replica "
            f"to keep, above {TARGET_LOAD[0]} and at most {TARGET_LOAD[1]}."
        )
    if not spot:
        spot_only = ["--on-demand-base"] * (on_demand_base is not None) + [
            "--alternative-instance-types"
        ] * bool(alternative_instance_types)
        if spot_only:
            raise UsageError(f"{' and '.join(spot_only)} only apply with --spot.")
    if on_demand_base is not None and not 0 <= on_demand_base <= high:
        raise UsageError(
            f"--on-demand-base {on_demand_base}: give 0 to MAX ({high}) replicas to keep on "
            "on-demand capacity."
        )
    if route53_zone_id is not None and not domain:
        raise UsageError(
            "--route53-zone-id is the hosted zone of --domain: pass --domain too (without "
            "both, the load balancer gets a certificate the CLI makes for its own name)."
        )
    if domain and route53_zone_id is None:
        raise UsageError(
            f"A fleet with --domain {domain} gets an ACM-issued certificate validated in your "
            "Route 53 hosted zone: pass --route53-zone-id ZONE, or leave out --domain to use "
            "the load balancer's own name with a certificate the CLI makes and pins."
        )
    return FleetOptions(
        min_size=low,
        max_size=high,
        target_load=target_load,
        idle_minutes=idle_minutes,
        spot=spot,
        on_demand_base=on_demand_base,
        alternative_instance_types=tuple(dict.fromkeys(alternative_instance_types)),
        route53_zone_id=route53_zone_id,
    )


def check_zones(zones: Sequence[str], instance_type: str, region: str) -> None:
    """The group and the load balancer need two or more zones that offer the type."""
    if len(zones) < 2:
        found = ", ".join(zones) or "none"
        raise UsageError(
            f"A fleet spans at least two availability zones offering {instance_type}; {region} "
            f"has {len(zones)} ({found}). Choose another --region or --instance-type."
        )


def check_alternatives(
    primary: str,
    alternatives: Sequence[str],
    plan_with_pins: Callable[[str], Any],
) -> None:
    """Refuse an alternative type the primary type's serving plan does not fit.

    The launch template carries one plan (made for ``primary``), so every size the group may
    launch must run that same plan: the same GPU model and count, and the planner must accept
    the plan's own choices (context, KV cache, memory share, ...) on it. ``plan_with_pins(t)``
    plans type ``t`` with those choices pinned and raises ``UsageError`` when they do not fit.
    """
    base = get_instance_type(primary)
    problems = []
    for name in alternatives:
        if name == primary:
            continue
        other = get_instance_type(name)
        if (other.gpu_name, other.gpu_count) != (base.gpu_name, base.gpu_count):
            problems.append(
                f"{name} has {other.gpu_count}x {other.gpu_name}, not {primary}'s "
                f"{base.gpu_count}x {base.gpu_name}"
            )
            continue
        try:
            plan_with_pins(name)
        except UsageError as exc:
            problems.append(f"{name}: {exc}")
    if problems:
        raise UsageError(
            f"Every --alternative-instance-types entry must run the serving plan made for "
            f"{primary} (the group launches one plan): " + "; ".join(problems) + "."
        )
