"""Hourly on-demand price of an instance type: the AWS Pricing API if it answers, else the catalog.

The catalog's prices are us-east-1 list prices; other regions usually cost a little more, which
the returned :class:`Price` says in its ``source``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from statistics import median
from typing import Any

from botocore.config import Config

from .catalog import get_instance_type

# The Pricing API is served from a few regions only; us-east-1 answers for every region's prices.
PRICING_REGION = "us-east-1"


@dataclass(frozen=True)
class Price:
    """An hourly USD price and where it came from."""

    usd_per_hour: float
    source: str  # "AWS Pricing API (<region>)" or "built-in catalog (us-east-1 list price)"


def catalog_price(instance_type: str) -> Price:
    """The built-in list price (us-east-1)."""
    return Price(
        get_instance_type(instance_type).on_demand_usd_per_hour,
        "built-in catalog (us-east-1 list price)",
    )


def _pricing_filters(instance_type: str, region: str) -> list[dict[str, str]]:
    terms = {
        "instanceType": instance_type,
        "regionCode": region,
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
        "licenseModel": "No License required",
    }
    return [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in terms.items()]


def parse_on_demand_usd(price_list_item: str) -> float | None:
    """The hourly USD on-demand price from one Pricing API ``PriceList`` entry (a JSON string)."""
    product: dict[str, Any] = json.loads(price_list_item)
    for term in product.get("terms", {}).get("OnDemand", {}).values():
        for dimension in term.get("priceDimensions", {}).values():
            usd = dimension.get("pricePerUnit", {}).get("USD")
            if usd is not None and dimension.get("unit") in ("Hrs", "Hours"):
                value = float(usd)
                if value > 0:
                    return value
    return None


def live_price(pricing_client: Any, instance_type: str, region: str) -> Price | None:
    """Ask the Pricing API; None when it cannot answer (no permission, no endpoint, no match)."""
    import botocore.exceptions

    try:
        response = pricing_client.get_products(
            ServiceCode="AmazonEC2",
            Filters=_pricing_filters(instance_type, region),
            FormatVersion="aws_v1",
            MaxResults=10,
        )
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
        return None
    for item in response.get("PriceList", []):
        usd = parse_on_demand_usd(item)
        if usd is not None:
            return Price(usd, f"AWS Pricing API ({region})")
    return None


#: The price is nice to have, never worth a wait: one attempt, short timeouts.
PRICING_CONFIG = Config(retries={"max_attempts": 1}, connect_timeout=3, read_timeout=5)


def hourly_price(instance_type: str, region: str, clients: Any) -> Price:
    """The on-demand price per hour: live when the Pricing API answers, else the catalog's.

    ``clients`` is the deployment's ``ClientFactory``; the Pricing API client it gives is in
    :data:`PRICING_REGION` whatever the deployment's region.
    """
    fallback = catalog_price(instance_type)  # also validates the type
    client = clients.client("pricing", region=PRICING_REGION, config=PRICING_CONFIG)
    return live_price(client, instance_type, region) or fallback


@dataclass(frozen=True)
class SpotPrice:
    """The current Linux spot price of one type, per zone (EC2 DescribeSpotPriceHistory)."""

    instance_type: str
    by_zone: dict[str, float]

    @property
    def lowest(self) -> float:
        return min(self.by_zone.values())

    @property
    def typical(self) -> float:
        """The median over the zones (what a group spread over them mostly pays)."""
        return median(self.by_zone.values())


#: Linux spot prices; EC2 names them "Linux/UNIX" (EC2-Classic's) and "Linux/UNIX (Amazon VPC)".
SPOT_PRODUCT = "Linux/UNIX"


def spot_price(
    ec2_client: Any, instance_type: str, zones: list[str] | None = None
) -> SpotPrice | None:
    """The newest spot price per zone (only ``zones`` when given); None when EC2 has none.

    With a start time of now, EC2 returns the price in force in each zone; the newest entry
    per zone is kept in case it returns more.
    """
    from datetime import UTC, datetime

    from .clients import aws_errors

    newest: dict[str, tuple[datetime, float]] = {}
    with aws_errors(f"Reading the spot price of {instance_type}"):
        paginator = ec2_client.get_paginator("describe_spot_price_history")
        for page in paginator.paginate(
            InstanceTypes=[instance_type],
            ProductDescriptions=[SPOT_PRODUCT],
            StartTime=datetime.now(UTC),
        ):
            for entry in page["SpotPriceHistory"]:
                zone = entry["AvailabilityZone"]
                if not entry.get("ProductDescription", "").startswith(SPOT_PRODUCT):
                    continue
                if zones is not None and zone not in zones:
                    continue
                stamp = entry["Timestamp"]
                if zone not in newest or stamp > newest[zone][0]:
                    newest[zone] = (stamp, float(entry["SpotPrice"]))
    if not newest:
        return None
    return SpotPrice(instance_type, {zone: price for zone, (_, price) in sorted(newest.items())})
