"""What a deployment remembers of its serving plan, to hold the running engine against it.

``apply`` records the plan's predictions in the deployment record (``extra["plan"]``), so that
``health`` and ``status`` compare the engine with the plan it was started from, whatever flags
the user overrode. A deployment recorded before that falls back to the default plan of its
instance type, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..deployment import Deployment
    from .planner import ServingPlan

RECORD_KEY = "plan"


def plan_summary(plan: ServingPlan) -> dict[str, object]:
    """The plan's predictions that the running engine is checked against (plain JSON)."""
    return {
        "kv_tokens": plan.kv_tokens,
        "max_model_len": plan.max_model_len,
        "tensor_parallel_size": plan.tensor_parallel_size,
        "gpu_memory_utilization": plan.gpu_memory_utilization,
        "usable_bytes_per_gpu": plan.usable_bytes_per_gpu,
        "gpu_memory_mib": plan.gpu.memory_mib,
    }


@dataclass(frozen=True)
class PlannedServing:
    """The predictions and where they came from."""

    kv_tokens: int
    tensor_parallel_size: int
    usable_bytes_per_gpu: int
    gpu_memory_mib: int
    source: str


def planned_serving(deployment: Deployment) -> PlannedServing:
    """The deployment's recorded plan, or the default plan for its instance type."""
    recorded = deployment.extra.get(RECORD_KEY)
    if isinstance(recorded, dict):
        values, source = recorded, "plan recorded at apply"
    else:
        from .planner import plan_serving

        values = plan_summary(plan_serving(deployment.instance_type))
        source = f"default plan for {deployment.instance_type} (none recorded)"
    return PlannedServing(
        kv_tokens=int(values["kv_tokens"]),
        tensor_parallel_size=int(values["tensor_parallel_size"]),
        usable_bytes_per_gpu=int(values["usable_bytes_per_gpu"]),
        gpu_memory_mib=int(values["gpu_memory_mib"]),
        source=source,
    )
