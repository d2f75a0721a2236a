"""The built-in table of supported GPU instance types (g5 = A10G, g6 = L4, g6e = L40S).

The CSV comes from a public catalog and carries us-east-1 prices; a live AWS Pricing API answer
replaces the price when it can be had (see ``pricing``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache

from ..errors import UsageError
from ..paths import data_file

SUPPORTED_FAMILIES = ("g5", "g6", "g6e")
DEFAULT_INSTANCE_TYPE = "g5.xlarge"


@dataclass(frozen=True)
class InstanceType:
    """One row of the catalog."""

    name: str
    gpu_name: str
    gpu_count: int
    gpu_memory_mib: int  # per GPU, as EC2 reports it
    vcpus: int
    memory_gib: int
    on_demand_usd_per_hour: float  # us-east-1
    spot_usd_per_hour_min: float  # us-east-1, lowest seen

    @property
    def family(self) -> str:
        return self.name.split(".", 1)[0]


@cache
def instance_types() -> dict[str, InstanceType]:
    """All supported types by name, in catalog order."""
    with data_file("ec2-gpu-types.csv").open(newline="") as fh:
        return {
            row["instance_type"]: InstanceType(
                name=row["instance_type"],
                gpu_name=row["gpu_name"],
                gpu_count=int(row["gpu_count"]),
                gpu_memory_mib=int(row["gpu_memory_mib_each"]),
                vcpus=int(row["vcpus"]),
                memory_gib=int(row["memory_gib"]),
                on_demand_usd_per_hour=float(row["on_demand_usd_per_hour_us_east_1"]),
                spot_usd_per_hour_min=float(row["spot_usd_per_hour_min_us_east_1"]),
            )
            for row in csv.DictReader(fh)
        }


def get_instance_type(name: str) -> InstanceType:
    """Look up a supported type, or fail with the list of what is allowed."""
    try:
        return instance_types()[name]
    except KeyError:
        allowed = ", ".join(instance_types())
        raise UsageError(
            f"Unsupported instance type {name!r}: qwen3vl-aws runs on the g5 (A10G), g6 (L4) and "
            f"g6e (L40S) families. Allowed: {allowed}."
        ) from None
