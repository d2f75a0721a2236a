"""Hourly price: the Pricing API's answer when there is one, else the built-in catalog."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber
from qwen3vl_aws.aws.catalog import get_instance_type
from qwen3vl_aws.aws.pricing import catalog_price, hourly_price, live_price, parse_on_demand_usd
from qwen3vl_aws.errors import UsageError


def _price_item(usd: str, unit: str = "Hrs") -> str:
    """One PriceList entry shaped like the Pricing API's (trimmed)."""
    return json.dumps(
        {
            "product": {"attributes": {"instanceType": "g5.xlarge", "regionCode": "eu-west-1"}},
            "terms": {
                "OnDemand": {
                    "SKU.TERM": {
                        "priceDimensions": {
                            "SKU.TERM.DIM": {"unit": unit, "pricePerUnit": {"USD": usd}}
                        }
                    }
                }
            },
        }
    )


class PricingOnly:
    """A client factory that has only the Pricing API client, and notes where it was asked for."""

    def __init__(self, client) -> None:
        self._client = client
        self.asked: list[tuple[str, str | None]] = []

    def client(self, service: str, region: str | None = None, *, config=None):
        self.asked.append((service, region))
        return self._client


def _pricing_client():
    return boto3.client(
        "pricing",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )


def test_parse_on_demand_usd() -> None:
    assert parse_on_demand_usd(_price_item("1.1230000000")) == pytest.approx(1.123)
    assert parse_on_demand_usd(_price_item("0.0000000000")) is None
    assert parse_on_demand_usd(_price_item("5", unit="Quantity")) is None


def test_live_price_from_the_pricing_api() -> None:
    client = _pricing_client()
    with Stubber(client) as stub:
        stub.add_response(
            "get_products", {"PriceList": [_price_item("1.258")], "FormatVersion": "aws_v1"}
        )
        price = live_price(client, "g5.xlarge", "eu-west-1")
    assert price is not None
    assert price.usd_per_hour == pytest.approx(1.258)
    assert price.source == "AWS Pricing API (eu-west-1)"


def test_catalog_when_the_api_refuses() -> None:
    client = _pricing_client()
    with Stubber(client) as stub:
        stub.add_client_error("get_products", "AccessDeniedException", http_status_code=403)
        clients = PricingOnly(client)
        price = hourly_price("g6.xlarge", "eu-west-1", clients)
    assert clients.asked == [("pricing", "us-east-1")]  # the Pricing API's region, not eu-west-1
    assert price == catalog_price("g6.xlarge")
    assert price.usd_per_hour == get_instance_type("g6.xlarge").on_demand_usd_per_hour
    assert "catalog" in price.source


def test_catalog_when_the_api_has_no_match() -> None:
    client = _pricing_client()
    with Stubber(client) as stub:
        stub.add_response("get_products", {"PriceList": [], "FormatVersion": "aws_v1"})
        assert hourly_price("g6e.xlarge", "us-east-1", PricingOnly(client)) == catalog_price(
            "g6e.xlarge"
        )


def test_unsupported_type_is_refused_before_any_call() -> None:
    with pytest.raises(UsageError, match="Unsupported instance type"):
        hourly_price("m5.large", "us-east-1", object())
