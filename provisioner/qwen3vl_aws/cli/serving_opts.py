"""The serving planner's override options, shared by ``plan-serving`` and ``apply``.

    @click.command()
    @click.option("--instance-type", ...)
    @serving_options
    def command(instance_type, **opts):
        plan = plan_from_options(instance_type, clients=app.clients, **opts)

``plan_from_options`` picks the serving options out of ``opts`` and ignores everything else, so a
command may hand it all of its keyword arguments. It raises ``UsageError`` (nothing created) when
an override cannot fit, saying what would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..model_profile import MODEL_IDS

if TYPE_CHECKING:
    from ..planner import ServingPlan

F = TypeVar("F", bound=Callable[..., Any])

#: Keyword arguments the decorator adds (the parameter names of ``planner.plan_serving``).
SERVING_OPTION_NAMES = (
    "model",
    "kv_cache_dtype",
    "max_model_len",
    "gpu_memory_utilization",
    "tensor_parallel_size",
    "max_num_seqs",
    "max_num_batched_tokens",
    "video",
    "speculative",
)

_OPTIONS = (
    click.option(
        "--model",
        type=click.Choice(MODEL_IDS),
        help="Weights to serve (default: BF16; FP8 when the context asks for it).",
    ),
    click.option(
        "--kv-cache-dtype",
        type=click.Choice(("auto", "fp8")),
        help="KV-cache precision (default: the weights'; fp8 when the context asks for it).",
    ),
    click.option(
        "--max-model-len",
        type=click.IntRange(min=1),
        help="Context length in tokens (default: the longest with room for two such requests).",
    ),
    click.option(
        "--gpu-memory-utilization",
        type=click.FloatRange(0.1, 0.98),
        help="Share of each GPU's memory the engine's whole process may use (default: all but "
        "768 MiB of headroom; for SGLang it becomes --mem-fraction-static).",
    ),
    click.option(
        "--tensor-parallel-size",
        type=click.IntRange(min=1),
        help="GPUs the model is split across (default: all of the instance's).",
    ),
    click.option(
        "--max-num-seqs",
        type=click.IntRange(min=1),
        help="Sequences served at once (default: 256).",
    ),
    click.option(
        "--max-num-batched-tokens",
        type=click.IntRange(min=1),
        help="Tokens per prefill chunk (default: 4096; 8192 on 48 GB GPUs).",
    ),
    click.option(
        "--video/--no-video",
        default=False,
        show_default=True,
        help="Accept video inputs (they need a larger vision reserve).",
    ),
    click.option(
        "--speculative",
        type=click.Choice(("eagle3",)),
        help="Speculative decoding with the EAGLE3 draft taobao-mnn/Qwen3-VL-8B-Instruct-Eagle3 "
        "(downloaded with the model; its memory is counted).",
    ),
)


def engine_option(func: F) -> F:
    """Add ``--engine`` (which server runs the plan; its flags are translated to match)."""
    from ..engine_flags import DEFAULT_ENGINE, ENGINES

    return click.option(
        "--engine",
        type=click.Choice(ENGINES),
        default=DEFAULT_ENGINE,
        show_default=True,
        help="Inference server on the instance; the plan is rendered as its flags.",
    )(func)


def serving_options(func: F) -> F:
    """Add the planner's override options to a Click command."""
    for option in reversed(_OPTIONS):
        func = option(func)
    return func


def plan_from_options(instance_type: str, *, clients: Any = None, **opts: Any) -> ServingPlan:
    """The serving plan for ``instance_type`` with the overrides found in ``opts``.

    ``clients`` (a ``ClientFactory``) lets the GPU data come from EC2 DescribeInstanceTypes;
    without it, or when AWS does not answer, the built-in catalog is used.
    """
    from ..gpu_specs import gpu_for
    from ..planner import plan_serving

    overrides = {name: opts[name] for name in SERVING_OPTION_NAMES if name in opts}
    return plan_serving(instance_type, gpu=gpu_for(instance_type, clients), **overrides)


def modes_from_options(instance_type: str, *, clients: Any = None, **opts: Any) -> list:
    """Each serving mode (BF16; FP8; FP8 + FP8 KV cache) under the same other overrides
    (``planner.ModeOutcome``), for ``plan-serving``'s side-by-side table."""
    from ..gpu_specs import gpu_for
    from ..planner import plan_modes

    overrides = {name: opts[name] for name in SERVING_OPTION_NAMES if name in opts}
    return plan_modes(instance_type, gpu=gpu_for(instance_type, clients), **overrides)
