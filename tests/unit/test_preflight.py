"""Preflight: CIDRs, the caller's public IP, credentials, and where a type is offered."""

from __future__ import annotations

import boto3
import httpx
import pytest
from moto import mock_aws
from qwen3vl_aws.aws.preflight import (
    check_credentials,
    check_offering,
    check_subnet,
    detect_public_ip,
    host_cidr,
    open_networks,
    require_credentials,
    validate_cidrs,
    validate_media_domains,
)
from qwen3vl_aws.errors import AwsError, UsageError


def test_valid_cidrs_are_normalised_and_deduplicated() -> None:
    assert validate_cidrs(["203.0.113.7/32", " 10.0.0.0/16", "203.0.113.7", "2001:db8::/32"]) == [
        "203.0.113.7/32",
        "10.0.0.0/16",
        "2001:db8::/32",
    ]


@pytest.mark.parametrize(
    ("cidr", "message"),
    [
        ("10.0.0.1/24", "Did you mean 10.0.0.0/24?"),
        ("300.1.1.1/32", "is not a valid CIDR"),
        ("10.0.0.0/33", "is not a valid CIDR"),
        ("example.com", "is not a valid CIDR"),
    ],
)
def test_malformed_cidrs(cidr: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        validate_cidrs([cidr])


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0"])
def test_whole_internet_only_when_asked(cidr: str) -> None:
    with pytest.raises(UsageError, match="--allow-anywhere"):
        validate_cidrs([cidr])
    assert validate_cidrs([cidr], allow_open=True) == [cidr]
    assert open_networks(["10.0.0.0/8", cidr]) == [cidr]


def test_detect_public_ip_tries_the_next_service() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "first.example":
            return httpx.Response(503)
        return httpx.Response(200, text="198.51.100.23\n")

    client = httpx.Client(transport=httpx.MockTransport(handler))
    urls = ["https://first.example/", "https://second.example/"]
    assert detect_public_ip(client, urls) == "198.51.100.23"
    assert host_cidr("198.51.100.23") == "198.51.100.23/32"
    assert host_cidr("2001:db8::1") == "2001:db8::1/128"


def test_detect_public_ip_failure_says_to_pass_allow() -> None:
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, text="?")))
    with pytest.raises(UsageError, match="Pass --allow CIDR"):
        detect_public_ip(client, ["https://echo.example/"])


@mock_aws
def test_offering_in_us_east_1() -> None:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    zones = check_offering(ec2, "g6e.xlarge", "us-east-1")
    assert zones and all(z.startswith("us-east-1") for z in zones)


@mock_aws
def test_offering_missing_names_the_alternatives() -> None:
    ec2 = boto3.client("ec2", region_name="ca-central-1")
    with pytest.raises(UsageError) as info:
        check_offering(ec2, "g6e.xlarge", "ca-central-1")
    message = str(info.value)
    assert "g6e.xlarge is not offered in ca-central-1" in message
    assert "g5.xlarge" in message and "g6e" not in message.split("Types offered there:")[1]


@mock_aws
def test_credentials_are_checked_with_sts() -> None:
    identity = check_credentials(boto3.client("sts", region_name="us-east-1"))
    assert identity.account == "123456789012"


def test_no_credentials() -> None:
    with pytest.raises(AwsError, match="No AWS credentials found"):
        require_credentials(False)
    require_credentials(True)


def test_media_domains_are_normalised_and_checked() -> None:
    assert validate_media_domains(
        ["Upload.Wikimedia.org.", "upload.wikimedia.org", " images.example.com "]
    ) == ["upload.wikimedia.org", "images.example.com"]
    for bad in ("https://upload.wikimedia.org", "example.com:443", "*.example.com", "localhost"):
        with pytest.raises(UsageError, match="is not a domain name"):
            validate_media_domains([bad])


@mock_aws
def test_a_given_subnet_must_exist_in_a_zone_offering_the_type() -> None:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    by_zone = {s["AvailabilityZone"]: s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]}
    zone = check_subnet(ec2, by_zone["us-east-1b"], ["us-east-1a", "us-east-1b"], "g5.xlarge")
    assert zone == "us-east-1b"
    with pytest.raises(UsageError, match=r"is in us-east-1c, which does not offer g5\.xlarge"):
        check_subnet(ec2, by_zone["us-east-1c"], ["us-east-1a"], "g5.xlarge")
    with pytest.raises(UsageError, match="does not exist in this region"):
        check_subnet(ec2, "subnet-0123456789abcdef0", ["us-east-1a"], "g5.xlarge")


@pytest.mark.parametrize(
    "cidrs",
    [
        ["0.0.0.0/1", "128.0.0.0/1"],  # the whole internet in two halves
        ["10.0.0.0/7"],  # twice a /8
        ["1.0.0.0/8", "2.0.0.0/9"],  # a /8 and a bit more
        [f"{n}.0.0.0/9" for n in range(1, 4)],  # three /9s: 1.5 /8s
        ["::/1", "8000::/1"],
        ["2001::/16"],
        ["2001:db8::/33", "2001:db9::/32"],  # more than a /32 of IPv6 together
    ],
)
def test_cidrs_that_together_cover_more_than_a_slash_8_need_allow_anywhere(cidrs) -> None:
    with pytest.raises(UsageError, match="--allow-anywhere") as refused:
        validate_cidrs(cidrs)
    assert "together admit" in str(refused.value)
    assert validate_cidrs(cidrs, allow_open=True) == cidrs
    assert open_networks(cidrs)  # and apply warns about them


@pytest.mark.parametrize(
    "cidrs",
    [
        ["10.0.0.0/8"],  # exactly a /8
        ["10.0.0.0/8", "10.1.0.0/16"],  # overlapping: counted once
        ["10.0.0.0/9", "203.0.113.0/24", "2001:db8::/32"],
        ["2001:db8::/33", "2001:db8:8000::/33"],  # a /32 of IPv6 in two halves
    ],
)
def test_networks_up_to_a_slash_8_pass(cidrs) -> None:
    assert validate_cidrs(cidrs) == cidrs
    assert open_networks(cidrs) == []
