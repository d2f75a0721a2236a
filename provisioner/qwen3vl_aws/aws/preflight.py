"""Checks that run before anything is created, so bad input fails fast and changes nothing.

Instance type family, CIDRs (the whole internet only when asked for explicitly), the caller's
public IP when no CIDR is given, AWS credentials (STS), whether the region offers the type,
media domains, and a given subnet (it exists, in a zone offering the type).
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import AwsError, UsageError
from .catalog import get_instance_type, instance_types
from .clients import aws_errors

OPEN_NETWORKS = ("0.0.0.0/0", "::/0")
# The widest ingress allowed without --allow-anywhere, as a prefix length per IP version: all the
# CIDRs of a version together may cover at most a /8 of IPv4 (16.7 M addresses), or a /32 of
# IPv6 (what a whole ISP is allocated; an IPv6 /8 would be 2^120 addresses, no one's network).
WIDEST_PREFIX = {4: 8, 6: 32}
# Plain-text "what is my IP" services over HTTPS; the first that answers wins.
IP_ECHO_URLS = ("https://checkip.amazonaws.com", "https://api.ipify.org")


def validate_cidrs(
    cidrs: Iterable[str], *, allow_open: bool = False, what: str = "--allow"
) -> list[str]:
    """Normalise CIDRs; reject malformed ones and the whole internet unless ``allow_open``."""
    result: list[str] = []
    for raw in cidrs:
        text = raw.strip()
        try:
            network = ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            hint = ""
            with contextlib.suppress(ValueError):
                hint = f" Did you mean {ipaddress.ip_network(text, strict=False)}?"
            raise UsageError(
                f"{what} {raw!r} is not a valid CIDR ({exc}).{hint} Use a network like "
                "203.0.113.7/32 (one address) or 10.0.0.0/16."
            ) from None
        if "/" not in text:  # a bare address: make the single-host prefix explicit
            network = ipaddress.ip_network(f"{network.network_address}/{network.max_prefixlen}")
        if str(network) in OPEN_NETWORKS and not allow_open:
            raise UsageError(
                f"{what} {network} would open the endpoint to the whole internet. Pass "
                "--allow-anywhere as well if that is really what you want."
            )
        if str(network) not in result:
            result.append(str(network))
    if not allow_open:
        _refuse_too_wide(result, what)
    return result


def covered_addresses(cidrs: Iterable[str], version: int) -> int:
    """How many addresses of IP ``version`` the CIDRs admit together (overlaps counted once)."""
    networks = [ipaddress.ip_network(c) for c in cidrs]
    same = [n for n in networks if n.version == version]
    return sum(n.num_addresses for n in ipaddress.collapse_addresses(same))  # type: ignore[arg-type]


def too_wide(cidrs: Iterable[str]) -> list[tuple[int, int, int]]:
    """``(version, covered, limit)`` for each IP version whose CIDRs cover more than allowed."""
    cidrs = list(cidrs)
    wide = []
    for version, prefix in WIDEST_PREFIX.items():
        bits = 32 if version == 4 else 128
        covered, limit = covered_addresses(cidrs, version), 2 ** (bits - prefix)
        if covered > limit:
            wide.append((version, covered, limit))
    return wide


def _refuse_too_wide(cidrs: list[str], what: str) -> None:
    for version, covered, limit in too_wide(cidrs):
        prefix = WIDEST_PREFIX[version]
        raise UsageError(
            f"{what} {', '.join(c for c in cidrs if ipaddress.ip_network(c).version == version)} "
            f"together admit {covered:,} IPv{version} addresses, more than a /{prefix} "
            f"({limit:,}): that opens the endpoint to a large part of the internet. Allow only "
            "the networks your clients use, or pass --allow-anywhere if that is really what you "
            "want."
        )


# The userdata module's allowed_media_domains validation (lowercase DNS names).
DNS_NAME = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")


def validate_media_domains(domains: Iterable[str]) -> list[str]:
    """Normalise media domains (lowercase, no duplicates); reject anything but a DNS name."""
    result: list[str] = []
    for raw in domains:
        name = raw.strip().lower().rstrip(".")
        if not DNS_NAME.match(name):
            raise UsageError(
                f"--allow-media-domain {raw!r} is not a domain name: give the host part only, "
                "like upload.wikimedia.org (no scheme, port, path or wildcard)."
            )
        if name not in result:
            result.append(name)
    return result


def validate_subnet_id(subnet_id: str | None) -> str | None:
    if subnet_id is not None and not SUBNET_ID.match(subnet_id):
        raise UsageError(
            f"--subnet-id {subnet_id!r} is not a subnet id: it looks like subnet-0123456789abcdef0."
        )
    return subnet_id


def check_subnet(ec2_client: Any, subnet_id: str, zones: Iterable[str], instance_type: str) -> str:
    """The subnet's zone, after checking that it exists and offers ``instance_type``."""
    import botocore.exceptions

    with aws_errors(f"Describing subnet {subnet_id}"):
        try:
            subnet = ec2_client.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "InvalidSubnetID.NotFound":
                raise
            raise UsageError(
                f"Subnet {subnet_id} does not exist in this region: check --subnet-id and --region."
            ) from None
    zone, offered = subnet["AvailabilityZone"], list(zones)
    if zone not in offered:
        raise UsageError(
            f"Subnet {subnet_id} is in {zone}, which does not offer {instance_type} (zones "
            f"offering it: {', '.join(offered)}). Choose a subnet in one of those zones."
        )
    return zone


def open_networks(cidrs: Iterable[str]) -> list[str]:
    """The entries that admit the whole internet; where none does but one IP version's entries
    together cover more than the guard allows, all of that version's (for a warning)."""
    cidrs = list(cidrs)
    named = []
    for version, _, _ in too_wide(cidrs):
        same = [c for c in cidrs if ipaddress.ip_network(c).version == version]
        named += [c for c in same if c in OPEN_NETWORKS] or same
    return [c for c in cidrs if c in named]


def detect_public_ip(http_client: Any | None = None, urls: Iterable[str] = IP_ECHO_URLS) -> str:
    """This machine's public IPv4/IPv6 address as the internet sees it (TLS verified)."""
    import httpx

    client = http_client or httpx.Client(timeout=5.0)
    errors = []
    with client:
        for url in urls:
            try:
                response = client.get(url)
                response.raise_for_status()
                return str(ipaddress.ip_address(response.text.strip()))
            except (httpx.HTTPError, ValueError) as exc:
                errors.append(f"{url}: {exc}")
    raise UsageError(
        "Could not detect your public IP address (" + "; ".join(errors) + "). Pass --allow CIDR "
        "with the network your requests come from."
    )


def host_cidr(address: str) -> str:
    """``address`` as a single-host CIDR (/32 or /128)."""
    ip = ipaddress.ip_address(address)
    return f"{ip}/{ip.max_prefixlen}"


@dataclass(frozen=True)
class Identity:
    """Who the credentials belong to."""

    account: str
    arn: str


def check_credentials(sts_client: Any) -> Identity:
    """Call STS GetCallerIdentity: proves the credentials work before anything is created."""
    with aws_errors("Checking your AWS credentials"):
        who = sts_client.get_caller_identity()
    return Identity(account=who["Account"], arn=who["Arn"])


def offered_zones(ec2_client: Any, instance_type: str) -> list[str]:
    """Availability zones of the client's region that offer ``instance_type``."""
    with aws_errors(f"Checking where {instance_type} is offered"):
        paginator = ec2_client.get_paginator("describe_instance_type_offerings")
        zones = {
            offering["Location"]
            for page in paginator.paginate(
                LocationType="availability-zone",
                Filters=[{"Name": "instance-type", "Values": [instance_type]}],
            )
            for offering in page["InstanceTypeOfferings"]
        }
    return sorted(zones)


def supported_types_offered(ec2_client: Any) -> list[str]:
    """The catalog's types that the client's region offers in at least one zone."""
    names = list(instance_types())
    with aws_errors("Listing the GPU types this region offers"):
        paginator = ec2_client.get_paginator("describe_instance_type_offerings")
        offered = {
            offering["InstanceType"]
            for page in paginator.paginate(
                LocationType="region", Filters=[{"Name": "instance-type", "Values": names}]
            )
            for offering in page["InstanceTypeOfferings"]
        }
    return [name for name in names if name in offered]


def check_offering(ec2_client: Any, instance_type: str, region: str) -> list[str]:
    """The zones offering the type, or a :class:`UsageError` naming what the region does offer."""
    get_instance_type(instance_type)
    zones = offered_zones(ec2_client, instance_type)
    if zones:
        return zones
    alternatives = supported_types_offered(ec2_client)
    hint = (
        f"Types offered there: {', '.join(alternatives)}."
        if alternatives
        else "It offers none of the supported g5/g6/g6e types."
    )
    raise UsageError(
        f"{instance_type} is not offered in {region}. Choose another --instance-type or "
        f"--region. {hint}"
    )


def require_credentials(credentials_available: bool) -> None:
    """Fail early, before any AWS call, when boto3 finds no credentials at all."""
    if not credentials_available:
        raise AwsError(
            "No AWS credentials found. Run `aws configure`, set AWS_PROFILE, or export "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; nothing was created."
        )
