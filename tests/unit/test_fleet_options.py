"""`apply --replicas` and its companions: every refusal happens before any AWS call, and the
values map onto the fleet's Terraform variables (terraform/fleet_variables.tf)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from qwen3vl_aws.errors import UsageError
from qwen3vl_aws.fleet.options import (
    check_alternatives,
    check_zones,
    fleet_options,
    parse_replicas,
)
from qwen3vl_aws.serving.overrides import ServingOverrides

TERRAFORM = Path(__file__).resolve().parents[2] / "terraform"


@pytest.mark.parametrize(("text", "bounds"), [("2:4", (2, 4)), ("0:3", (0, 3)), ("1:1", (1, 1))])
def test_replicas_parse(text: str, bounds: tuple[int, int]) -> None:
    assert parse_replicas(text) == bounds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3", "give MIN:MAX"),
        ("a:b", "give MIN:MAX"),
        ("4:2", "MIN (4) must not exceed MAX (2)"),
        ("0:0", "MAX must be between 1 and 100"),
        ("2:101", "MAX must be between 1 and 100"),
    ],
)
def test_bad_replicas_are_refused(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        parse_replicas(text)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"replicas": "2:4", "idle_minutes": 10}, "needs MIN 0 (--replicas 0:4)"),
        ({"replicas": "0:4", "idle_minutes": 2}, "--idle-minutes 2: give 5 to 1440"),
        ({"replicas": "2:4", "on_demand_base": 1}, "--on-demand-base only apply with --spot"),
        (
            {"replicas": "2:4", "alternative_instance_types": ["g5.2xlarge"]},
            "--alternative-instance-types only apply with --spot",
        ),
        ({"replicas": "2:4", "spot": True, "on_demand_base": 5}, "give 0 to MAX (4)"),
        ({"replicas": "2:4", "target_load": 0}, "--target-load 0"),
        ({"replicas": "2:4", "route53_zone_id": "Z123456"}, "pass --domain too"),
        ({"replicas": None, "spot": True}, "--spot only apply to a fleet: add --replicas"),
        ({"replicas": None, "idle_minutes": 10}, "--idle-minutes only apply to a fleet"),
    ],
)
def test_inconsistent_fleet_options_are_refused(kwargs: dict, message: str) -> None:
    replicas = kwargs.pop("replicas")
    with pytest.raises(UsageError, match=re.escape(message)):
        fleet_options(replicas, **kwargs)


def test_no_replicas_is_a_single_instance() -> None:
    assert fleet_options(None) is None


def _declared_variables() -> set[str]:
    text = "".join(p.read_text() for p in TERRAFORM.glob("*.tf"))
    return set(re.findall(r'^variable "(\w+)"', text, re.MULTILINE))


def test_options_become_the_modules_variables() -> None:
    options = fleet_options(
        "0:6",
        target_load=12.5,
        idle_minutes=45,
        spot=True,
        on_demand_base=1,
        alternative_instance_types=["g5.2xlarge", "g5.2xlarge"],
        domain="vl.example.com",
        route53_zone_id="Z0123456789ABC",
    )
    variables = options.terraform_variables()
    assert variables == {
        "replicas": "0:6",
        "target_load": 12.5,
        "idle_minutes": 45,
        "spot": True,
        "on_demand_base": 1,
        "alternative_instance_types": ["g5.2xlarge"],
        "route53_zone_id": "Z0123456789ABC",
    }
    assert set(variables) <= _declared_variables()
    # What the user did not give is left to the module's defaults.
    assert fleet_options("2:4").terraform_variables() == {"replicas": "2:4", "spot": False}
    json.dumps(variables)  # the var file is JSON


def test_a_fleet_needs_two_zones_offering_the_type() -> None:
    check_zones(["us-east-1a", "us-east-1b"], "g5.xlarge", "us-east-1")
    with pytest.raises(UsageError, match=r"us-west-9 has 1 \(us-west-9a\)"):
        check_zones(["us-west-9a"], "g6e.xlarge", "us-west-9")


def test_alternatives_must_run_the_primary_types_plan() -> None:
    plan = ServingOverrides().plan_for("g5.xlarge")
    pinned = ServingOverrides.pinned_to(plan)
    check_alternatives("g5.xlarge", ["g5.2xlarge", "g5.4xlarge"], pinned.plan_for)
    with pytest.raises(UsageError, match=r"g6e\.xlarge has 1x L40S, not g5\.xlarge's 1x A10G"):
        check_alternatives("g5.xlarge", ["g5.2xlarge", "g6e.xlarge"], pinned.plan_for)
    with pytest.raises(UsageError, match=r"g5\.12xlarge has 4x A10G"):
        check_alternatives("g5.xlarge", ["g5.12xlarge"], pinned.plan_for)


def test_an_alternative_the_planner_refuses_is_named() -> None:
    """A plan pinned to a long context made on the L40S does not fit a smaller GPU."""
    plan = ServingOverrides(max_model_len=65536).plan_for("g6e.xlarge")
    pinned = ServingOverrides.pinned_to(plan)
    assert pinned.plan_for("g6e.2xlarge").max_model_len == 65536

    def refuse(name: str):
        raise UsageError("the context does not fit")

    with pytest.raises(UsageError, match=r"g6e\.2xlarge: the context does not fit"):
        check_alternatives("g6e.xlarge", ["g6e.2xlarge"], refuse)


def test_the_defaults_shown_are_the_modules() -> None:
    """The help and the plan summary show the module's defaults for what the user leaves out;
    the module, which applies them, is the source."""
    from qwen3vl_aws.fleet.options import MODULE_DEFAULTS

    text = (TERRAFORM / "fleet_variables.tf").read_text()
    found = {
        name: float(re.search(rf'variable "{name}" {{.*?\n  default\s+=\s+(\S+)', text, re.S)[1])
        for name in MODULE_DEFAULTS
    }
    assert found == MODULE_DEFAULTS
    options = fleet_options("0:3", spot=True)
    assert {n: options.effective(n) for n in MODULE_DEFAULTS} == MODULE_DEFAULTS
    assert fleet_options("0:3", idle_minutes=45).effective("idle_minutes") == 45
