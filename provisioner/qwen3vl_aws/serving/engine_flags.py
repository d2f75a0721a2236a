"""A serving plan as the command-line flags of the engine that runs it (vLLM or SGLang).

The planner works in vLLM's terms (:attr:`ServingPlan.flags`). SGLang, which the deployment this
toolkit replaces ran, takes the same decisions under other names (checked against
``sglang.srt.server_args.ServerArgs.add_cli_args`` of the version pinned in
userdata/versions.env, see tests/sglang/):

=================================  ==========================================================
vLLM                               SGLang
=================================  ==========================================================
--tensor-parallel-size N           --tp-size N
--mm-encoder-tp-mode data          --mm-enable-dp-encoder
--max-model-len L                  --context-length L
--gpu-memory-utilization U         --mem-fraction-static F (see :func:`mem_fraction_static`)
--max-num-seqs S                   --max-running-requests S
--max-num-batched-tokens B         --chunked-prefill-size B
--enable-prefix-caching            (the radix cache is on by default)
--enable-chunked-prefill           (on once --chunked-prefill-size is set)
--limit-mm-per-prompt.image N      --limit-mm-data-per-request {"image":N,"video":0}
--limit-mm-per-prompt.video 0      (in the same JSON)
--mm-processor-kwargs {"images_kwargs":{"size":S}}
                                   --mm-process-config {"image":{"size":S}}
--kv-cache-dtype fp8               --kv-cache-dtype fp8_e4m3
--speculative-config {"method":"eagle3","model":D,"num_speculative_tokens":3}
                                   --speculative-algorithm EAGLE3
                                   --speculative-draft-model-path D
                                   --speculative-num-steps 3 --speculative-eagle-topk 6
                                   --speculative-num-draft-tokens 16
=================================  ==========================================================

The model id (BF16 or FP8 checkpoint) is not a flag: the bootstrap passes it, and both engines
read the FP8 quantization from the checkpoint's config. D, the EAGLE3 draft's directory, is a
placeholder the bootstrap fills in once it has downloaded the draft.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .planner import ServingPlan

ENGINES = ("vllm", "sglang")
DEFAULT_ENGINE = "vllm"
ENGINE_NAMES = {"vllm": "vLLM", "sglang": "SGLang"}


def engine_args(plan: ServingPlan, engine: str) -> list[str]:
    """The flags ``apply`` renders as the userdata module's ``engine_args`` for ``engine``."""
    if engine == "vllm":
        return list(plan.flags)
    if engine == "sglang":
        return sglang_flags(plan)
    raise ValueError(f"unknown engine {engine!r}: expected one of {', '.join(ENGINES)}")


def mem_fraction_static(plan: ServingPlan) -> float:
    """SGLang's ``--mem-fraction-static`` for the plan's memory budget.

    vLLM's ``--gpu-memory-utilization`` caps everything vLLM allocates on a GPU; SGLang's
    fraction covers only its static pools (weights and KV cache) and leaves the rest of the GPU
    for activations, the vision encoder and CUDA graphs. So the fraction is the plan's weights
    plus KV cache per GPU over the GPU's memory: SGLang then gets the KV cache the plan worked
    out, and the same room for everything else. Rounded down to 0.01 (a little more headroom).
    """
    static = plan.reserves.weights + plan.kv_cache_bytes_per_gpu
    return math.floor(static / plan.gpu.memory_bytes * 100) / 100


def translation_note(plan: ServingPlan, engine: str) -> str | None:
    """One line for ``plan-serving``: how the plan's vLLM terms became ``engine``'s flags."""
    if engine != "sglang":
        return None
    return (
        f"SGLang: --mem-fraction-static {mem_fraction_static(plan):g} = weights plus KV cache "
        f"per GPU over the GPU's {plan.gpu.memory_mib:,} MiB (SGLang's fraction covers only "
        "those; activations, the vision encoder and CUDA graphs use the rest); the context "
        "length, request and prefill-chunk limits, tensor parallelism and image cap are the "
        "plan's under SGLang's names; its radix cache does prefix caching."
    )


def sglang_flags(plan: ServingPlan) -> list[str]:
    """SGLang server arguments for ``plan`` (no model path, host, port or served name)."""
    from .model_profile import load_profile
    from .planner import (
        DRAFT_DIR_PLACEHOLDER,
        EAGLE3_DRAFT_TOKENS,
        EAGLE3_STEPS,
        EAGLE3_TOPK,
        image_size_cap,
    )

    flags = ["--tp-size", str(plan.tensor_parallel_size)]
    if plan.encoder_data_parallel:
        flags.append("--mm-enable-dp-encoder")
    flags += [
        "--context-length", str(plan.max_model_len),
        "--mem-fraction-static", f"{mem_fraction_static(plan):g}",
        "--max-running-requests", str(plan.max_num_seqs),
        "--chunked-prefill-size", str(plan.max_num_batched_tokens),
    ]  # fmt: skip
    limits = {"image": plan.max_images_per_prompt} | ({} if plan.video else {"video": 0})
    flags += ["--limit-mm-data-per-request", _compact(limits)]
    if plan.kv_cache_dtype == "fp8":
        flags += ["--kv-cache-dtype", "fp8_e4m3"]
    if plan.speculative == "eagle3":
        flags += [
            "--speculative-algorithm", "EAGLE3",
            "--speculative-draft-model-path", DRAFT_DIR_PLACEHOLDER,
            "--speculative-num-steps", str(EAGLE3_STEPS),
            "--speculative-eagle-topk", str(EAGLE3_TOPK),
            "--speculative-num-draft-tokens", str(EAGLE3_DRAFT_TOKENS),
        ]  # fmt: skip
    profile = load_profile(plan.model_id)
    if plan.largest_image_pixels < profile.max_pixels:
        # SGLang hands the image config to the transformers image processor as keyword
        # arguments (BaseMultimodalProcessor.process_mm_data): ``size`` is its own, current form.
        cap = {"image": {"size": image_size_cap(profile, plan.largest_image_pixels)}}
        flags += ["--mm-process-config", _compact(cap)]
    return flags


def _compact(value: object) -> str:
    """JSON without spaces: one shell word, as the userdata module's engine_args contract wants."""
    return json.dumps(value, separators=(",", ":"))
