"""GPU count and memory of an instance type: EC2 DescribeInstanceTypes when AWS answers, else the
built-in catalog (``catalog.py``), so the serving plan also works offline.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import botocore.exceptions

from ..aws.catalog import get_instance_type
from ..aws.clients import aws_errors
from ..errors import AwsError

MIB = 1024**2

# GPUs with FP8 tensor cores (Ada Lovelace and newer). The pinned vLLM runs the block-FP8
# checkpoint on the others of compute capability 7.5 and up too (A10G: 8.6), weight-only through
# its Marlin kernels: MarlinFP8ScaledMMLinearKernel.is_supported needs only
# is_fp8_marlin_supported(), i.e. has_device_capability(75)
# (vllm/model_executor/kernels/linear/scaled_mm/marlin.py, layers/quantization/utils/
# marlin_utils_fp8.py; Fp8Config.get_min_capability() is 75). The planner uses this to count
# Marlin's repacked weights and to say so.
FP8_GPUS = frozenset({"L4", "L40S"})


@dataclass(frozen=True)
class GpuSpec:
    """The GPUs of one instance type."""

    name: str
    count: int
    memory_mib: int  # per GPU, as EC2 reports it
    source: str  # where the numbers came from, shown in the plan's explanation

    @property
    def memory_bytes(self) -> int:
        return self.memory_mib * MIB

    @property
    def supports_fp8(self) -> bool:
        return self.name in FP8_GPUS


def catalog_gpu(instance_type: str) -> GpuSpec:
    """From the built-in table (raises ``UsageError`` for an unsupported type)."""
    row = get_instance_type(instance_type)
    return GpuSpec(row.gpu_name, row.gpu_count, row.gpu_memory_mib, "built-in catalog")


def ec2_gpu(instance_type: str, ec2) -> GpuSpec:
    """From EC2 DescribeInstanceTypes (raises ``AwsError`` when AWS refuses or has no GPU data)."""
    with aws_errors(f"Describing instance type {instance_type}"):
        answer = ec2.describe_instance_types(InstanceTypes=[instance_type])
    types = answer.get("InstanceTypes") or []
    gpus = (types[0].get("GpuInfo") or {}).get("Gpus") if types else None
    if not gpus:
        raise AwsError(f"EC2 reports no GPU for instance type {instance_type}.")
    if len({(gpu["Name"], gpu["MemoryInfo"]["SizeInMiB"]) for gpu in gpus}) != 1:
        raise AwsError(f"EC2 reports mixed GPUs for {instance_type}; expected one kind.")
    return GpuSpec(
        name=gpus[0]["Name"],
        count=sum(gpu["Count"] for gpu in gpus),
        memory_mib=gpus[0]["MemoryInfo"]["SizeInMiB"],
        source="EC2 DescribeInstanceTypes",
    )


def gpu_for(instance_type: str, clients=None) -> GpuSpec:
    """EC2's answer when ``clients`` (a ``ClientFactory``) has credentials and AWS answers,
    otherwise the catalog, whose source line then says why AWS was not used.

    The type must be in the catalog either way: that is the list of supported types.
    """
    fallback = catalog_gpu(instance_type)
    if clients is None:
        return fallback
    if not clients.credentials_available():
        return replace(fallback, source="built-in catalog; no AWS credentials")
    try:
        return ec2_gpu(instance_type, clients.client("ec2"))
    except (AwsError, botocore.exceptions.BotoCoreError) as exc:
        return replace(fallback, source=f"built-in catalog; AWS not used: {exc}")
