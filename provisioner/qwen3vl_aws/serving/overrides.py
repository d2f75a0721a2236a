"""What the user asked of the serving plan, as one typed value the planner takes.

The CLI's ``--model``, ``--max-model-len``, ... options fill a :class:`ServingOverrides`; ``apply``
and ``plan-serving`` hand it to :meth:`ServingOverrides.plan_for`, which asks EC2 for the GPU
when it can and runs the planner.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .gpu_specs import gpu_for
from .planner import ModeOutcome, ServingPlan, plan_modes, plan_serving


@dataclass(frozen=True)
class ServingOverrides:
    """The planner's overridable choices; ``None`` (``False`` for video) leaves them to it."""

    model: str | None = None
    kv_cache_dtype: str | None = None
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    tensor_parallel_size: int | None = None
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    video: bool = False
    speculative: str | None = None

    @classmethod
    def pinned_to(cls, plan: ServingPlan) -> ServingOverrides:
        """Overrides that repeat ``plan``'s own choices: planning another type with them says
        whether that type runs the very same plan (a fleet's alternative sizes)."""
        return cls(
            model=plan.model_id,
            kv_cache_dtype=plan.kv_cache_dtype,
            max_model_len=plan.max_model_len,
            gpu_memory_utilization=plan.gpu_memory_utilization,
            tensor_parallel_size=plan.tensor_parallel_size,
            max_num_seqs=plan.max_num_seqs,
            max_num_batched_tokens=plan.max_num_batched_tokens,
            video=plan.video,
            speculative=plan.speculative,
        )

    def plan_for(self, instance_type: str, clients: Any = None) -> ServingPlan:
        """The plan for ``instance_type`` with these overrides.

        ``clients`` (a ``ClientFactory``) lets the GPU data come from EC2 DescribeInstanceTypes;
        without it, or when AWS does not answer, the built-in catalog is used. Raises
        ``UsageError`` (nothing created) when an override cannot fit, saying what would.
        """
        return plan_serving(instance_type, gpu=gpu_for(instance_type, clients), **asdict(self))

    def modes_for(self, instance_type: str, clients: Any = None) -> list[ModeOutcome]:
        """Each serving mode (BF16; FP8; FP8 + FP8 KV cache) under these other overrides, for
        ``plan-serving``'s side-by-side table."""
        return plan_modes(instance_type, gpu=gpu_for(instance_type, clients), **asdict(self))
