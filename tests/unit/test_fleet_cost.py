"""The fleet's plan summary: hourly cost at MIN and MAX with the load balancer's charge, and the
spot price from EC2 DescribeSpotPriceHistory beside the on-demand price."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws
from qwen3vl_aws.aws.pricing import Price, SpotPrice, spot_price
from qwen3vl_aws.fleet.cost import ALB_USD_PER_HOUR, fleet_cost
from qwen3vl_aws.fleet.options import fleet_options

ON_DEMAND = Price(1.0, "test")


def _entry(zone: str, price: str, age_h: float, product: str = "Linux/UNIX") -> dict:
    return {
        "AvailabilityZone": zone,
        "InstanceType": "g5.xlarge",
        "ProductDescription": product,
        "SpotPrice": price,
        "Timestamp": datetime.now(UTC) - timedelta(hours=age_h),
    }


def test_spot_price_keeps_each_zones_newest_linux_price() -> None:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    history = [
        _entry("us-east-1a", "0.40", 3),
        _entry("us-east-1a", "0.45", 1),  # newer: in force now
        _entry("us-east-1b", "0.50", 2),
        _entry("us-east-1c", "0.30", 1),
        _entry("us-east-1c", "0.90", 0, "Windows"),
        _entry("us-east-1d", "0.10", 1),  # a zone the group does not use
    ]
    with Stubber(ec2) as stub:
        stub.add_response(
            "describe_spot_price_history",
            {"SpotPriceHistory": history},
            {
                "InstanceTypes": ["g5.xlarge"],
                "ProductDescriptions": ["Linux/UNIX"],
                "StartTime": ANY,
            },
        )
        found = spot_price(ec2, "g5.xlarge", ["us-east-1a", "us-east-1b", "us-east-1c"])
    assert found is not None
    assert found.by_zone == {"us-east-1a": 0.45, "us-east-1b": 0.50, "us-east-1c": 0.30}
    assert (found.lowest, found.typical) == (0.30, 0.45)


@mock_aws
def test_spot_price_from_moto() -> None:
    """moto answers every zone with one fixed price, labelled "Linux/UNIX (Amazon VPC)"."""
    ec2 = boto3.client("ec2", region_name="us-east-1")
    found = spot_price(ec2, "g5.xlarge", ["us-east-1a", "us-east-1b"])
    assert found is not None and sorted(found.by_zone) == ["us-east-1a", "us-east-1b"]
    assert found.lowest > 0


def test_no_spot_price_is_none() -> None:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    with Stubber(ec2) as stub:
        stub.add_response("describe_spot_price_history", {"SpotPriceHistory": []})
        assert spot_price(ec2, "g5.xlarge") is None


def test_on_demand_fleet_cost_at_its_bounds() -> None:
    cost = fleet_cost(fleet_options("2:4"), ON_DEMAND, None)
    assert cost.at(2) == pytest.approx(2 * ON_DEMAND.usd_per_hour + ALB_USD_PER_HOUR)
    assert cost.at(4) == pytest.approx(4 * ON_DEMAND.usd_per_hour + ALB_USD_PER_HOUR)
    doc = cost.to_json()
    assert doc["spot_usd_per_hour"] is None
    assert doc["usd_per_hour_at_max"] > doc["usd_per_hour_at_min"]


def test_a_fleet_at_zero_pays_only_the_load_balancer() -> None:
    cost = fleet_cost(fleet_options("0:3", idle_minutes=15), ON_DEMAND, None)
    assert cost.at(0) == ALB_USD_PER_HOUR


def test_spot_fleet_pays_on_demand_for_its_base_and_spot_above() -> None:
    spot = SpotPrice("g5.xlarge", {"us-east-1a": 0.3, "us-east-1b": 0.4, "us-east-1c": 0.5})
    options = fleet_options("2:5", spot=True, on_demand_base=1)
    cost = fleet_cost(options, ON_DEMAND, spot)
    assert cost.replicas_usd(2) == pytest.approx(ON_DEMAND.usd_per_hour + spot.typical)
    assert cost.replicas_usd(5) == pytest.approx(ON_DEMAND.usd_per_hour + 4 * spot.typical)
    assert cost.replicas_usd(1) == pytest.approx(ON_DEMAND.usd_per_hour)
    text = "\n".join(cost.lines())
    assert "us-east-1a $0.3000" in text and f"${ON_DEMAND.usd_per_hour:.3f} on demand" in text
    # Without --spot the spot price is not used even when known.
    assert fleet_cost(fleet_options("2:5"), ON_DEMAND, spot).spot is None
