"""The serving planner's override options, shared by ``plan-serving`` and ``apply``.

    @click.command()
    @click.option("--instance-type", ...)
    @serving_options
    def command(instance_type, serving: ServingOverrides, **other):
        plan = serving.plan_for(instance_type, app.clients())

:func:`serving_options` adds one option per field of
:class:`~qwen3vl_aws.serving.overrides.ServingOverrides` and hands the command their values as one
``serving`` argument.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import fields
from typing import Any, TypeVar

import click

from ..serving.model_profile import MODEL_IDS
from ..serving.overrides import ServingOverrides

F = TypeVar("F", bound=Callable[..., Any])

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
    from ..serving.engine_flags import DEFAULT_ENGINE, ENGINES

    return click.option(
        "--engine",
        type=click.Choice(ENGINES),
        default=DEFAULT_ENGINE,
        show_default=True,
        help="Inference server on the instance; the plan is rendered as its flags.",
    )(func)


def serving_options(func: F) -> F:
    """Add the planner's override options; the command receives them as ``serving``."""

    @functools.wraps(func)
    def command(*args: Any, **kwargs: Any) -> Any:
        values = {f.name: kwargs.pop(f.name) for f in fields(ServingOverrides)}
        return func(*args, serving=ServingOverrides(**values), **kwargs)

    for option in reversed(_OPTIONS):
        command = option(command)
    return command  # type: ignore[return-value]
