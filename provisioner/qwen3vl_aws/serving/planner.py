"""The serving plan: vLLM flags for one instance type, derived from its GPUs and the model.

Pure functions over a :class:`~.gpu_specs.GpuSpec` and a :class:`~.model_profile.ModelProfile`.
The plan budgets the whole process on each GPU, as nvidia-smi sees it: weights as vLLM allocates
them, the activation peak (language model or vision encoder), non-torch memory, the CUDA-graph
pool and the CUDA context (calibrated on a real GPU: :mod:`.vllm_memory`), a stated headroom, and
the KV cache gets the rest. The KV cache is then sized explicitly with ``--kv-cache-memory-bytes``
rather than left to ``--gpu-memory-utilization``, whose accounting differs between vLLM versions
and once let the process outgrow its budget.
"""

from __future__ import annotations

import bisect
import json
import math
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property

from ..errors import UsageError
from .gpu_specs import GpuSpec, catalog_gpu
from .media_limits import REQUEST_DECODE_BYTES, max_decoded_pixels, max_images_per_prompt
from .model_profile import (
    BF16_MODEL_ID,
    EAGLE3_DRAFT_ID,
    FP8_MODEL_ID,
    ModelProfile,
    eagle3_draft_parameters,
    load_profile,
)
from .versions import pinned_versions
from .vllm_memory import (
    HEADROOM_BYTES,
    MARLIN_FP8_EXTRA_BYTES,
    MEASURED_VLLM_VERSION,
    language_activation_bytes,
    runtime_bytes,
    vision_encoder_bytes,
    weight_buffer_bytes,
)

GIB = 1024**3

BF16_BYTES = 2
FP8_BYTES = 1
FP8_SCALE_BYTES = 4  # one float32 scale per FP8 weight block
KV_BLOCK_TOKENS = 16  # vLLM's default KV-cache block size
KV_CACHE_DTYPES = ("auto", "fp8")  # vLLM's --kv-cache-dtype values the planner offers
SPECULATIVE_METHODS = ("eagle3",)
#: EAGLE3 as the old deployment ran it in SGLang (a tree: 3 steps, top 6, 16 draft tokens);
#: vLLM's EAGLE3 proposes a chain of as many tokens as steps.
EAGLE3_STEPS, EAGLE3_TOPK, EAGLE3_DRAFT_TOKENS = 3, 6, 16
#: Where the bootstrap puts the downloaded draft; it replaces this in the engine's arguments.
DRAFT_DIR_PLACEHOLDER = "@DRAFT_MODEL_DIR@"


def speculative_draft(speculative: str | None) -> str | None:
    """The draft checkpoint a ``--speculative`` method downloads beside the model (None: none)."""
    return EAGLE3_DRAFT_ID if speculative == "eagle3" else None


PROMPT_TOKENS = 256  # a typical request: system prompt, question and chat template
ANSWER_TOKENS = 512  # a typical answer
IMAGE_WRAPPER_TOKENS = 2  # <|vision_start|> ... <|vision_end|> around each image
MIN_FULL_LENGTH_REQUESTS = 2  # the default context leaves room for this many at once
CONTEXT_STEP = 512  # default max model lengths are multiples of this

DEFAULT_MAX_NUM_SEQS = 256  # vLLM's default for GPUs of this size
LARGE_GPU_MIB = 40 * 1024  # from here on, prefill chunks are doubled

FULL_HD = (1920, 1080)


@dataclass(frozen=True)
class Reserves:
    """Per-GPU memory that is not KV cache, in bytes (see :mod:`.vllm_memory`)."""

    weights: int  # as allocated, with the buffers that grow with batched tokens
    activations: int  # the language model's profiling peak
    vision: int  # the vision encoder's peak and output cache
    runtime: int  # non-torch memory, CUDA graphs, CUDA context (and NCCL under TP)

    @property
    def peak(self) -> int:
        """The activation peak: the encoder and the language model run one after the other, and
        the allocator reuses one's blocks for the other (measured: the process grows by the
        larger of the two once requests have run)."""
        return max(self.activations, self.vision)

    @property
    def total(self) -> int:
        return self.weights + self.peak + self.runtime


@dataclass(frozen=True)
class ServingPlan:
    """What ``apply`` renders into the instance's vLLM environment file, and why."""

    instance_type: str
    gpu: GpuSpec
    model_id: str
    precision: str
    tensor_parallel_size: int
    encoder_data_parallel: bool
    gpu_memory_utilization: float  # the whole process's share of each GPU
    usable_bytes_per_gpu: int  # the whole process's budget on each GPU
    parameters: int
    weight_bytes: int  # the whole model
    reserves: Reserves  # per GPU
    kv_cache_dtype: str
    kv_bytes_per_token: int  # the whole model (all GPUs together)
    kv_cache_bytes_per_gpu: int
    kv_tokens: int
    max_model_len: int
    max_num_seqs: int
    max_num_batched_tokens: int
    largest_image_tokens: int
    largest_image_pixels: int
    max_decoded_pixels: int  # larger images are refused before they are decoded
    max_images_per_prompt: int
    video: bool
    flags: list[str]
    speculative: str | None = None
    draft_model_id: str | None = None
    explanation: list[str] = field(default_factory=list)

    @property
    def concurrency(self) -> int:
        """Requests of the full max model length the KV cache holds at once."""
        return self.kv_tokens // self.max_model_len

    @property
    def mode(self) -> str:
        """Weights and KV-cache precision, e.g. ``bf16`` or ``fp8 + fp8 kv``."""
        return mode_name(self.precision, self.kv_cache_dtype)

    @property
    def process_bytes_per_gpu(self) -> int:
        """The whole process's predicted use of each GPU once requests have run."""
        return self.reserves.total + self.kv_cache_bytes_per_gpu

    def to_json(self) -> dict:
        """Everything as plain JSON types (``plan-serving --json``)."""
        data = asdict(self)
        data.update(
            mode=self.mode,
            process_bytes_per_gpu=self.process_bytes_per_gpu,
            concurrency=self.concurrency,
            prompt_tokens=PROMPT_TOKENS,
            answer_tokens=ANSWER_TOKENS,
            **engine_versions(),
        )
        return data


def engine_versions() -> dict[str, str]:
    """The vLLM the flags are for (pinned) and the one the memory model was measured on."""
    return {
        "vllm_version": pinned_versions()["VLLM_VERSION"],
        "calibrated_on_vllm_version": MEASURED_VLLM_VERSION,
    }


# ---------------------------------------------------------------------------------------------
# The arithmetic, one quantity per function (tests and the vLLM comparison call these directly)


def usable_bytes(gpu: GpuSpec, utilization: float | None) -> int:
    """The whole process's budget on each GPU: the card less the headroom, or the share asked."""
    if utilization is None:
        return gpu.memory_bytes - HEADROOM_BYTES
    return math.floor(gpu.memory_bytes * utilization)


def parameter_count(profile: ModelProfile) -> int:
    return sum(w.numel for w in profile.weights())


def weight_bytes(profile: ModelProfile, tp: int = 1, encoder_data_parallel: bool = False) -> int:
    """Bytes of weights on one GPU (``tp=1``: the whole model).

    FP8 checkpoints store language-model linears as one byte per weight plus a float32 scale per
    block; everything else is BF16. Under tensor parallelism sharded tensors split evenly; the
    vision encoder is whole on every GPU when it runs data-parallel.
    """
    total = 0
    for w in profile.weights():
        if profile.fp8_block and w.quantizable:
            rows, cols = w.shape
            blocks = math.ceil(rows / profile.fp8_block[0]) * math.ceil(cols / profile.fp8_block[1])
            size = w.numel * FP8_BYTES + blocks * FP8_SCALE_BYTES
        else:
            size = w.numel * BF16_BYTES
        split = w.sharded and not (w.vision and encoder_data_parallel)
        total += math.ceil(size / tp) if split else size
    return total


def kv_bytes_per_token(
    profile: ModelProfile, tp: int = 1, kv_dtype: str = "auto", draft_layers: int = 0
) -> int:
    """KV-cache bytes one token takes on one GPU (``tp=1``: the whole model).

    layers x KV heads x head size x 2 (K and V) x 2 bytes (BF16 cache; 1 with
    ``--kv-cache-dtype fp8``); KV heads split across tensor-parallel ranks and are replicated
    when there are more ranks than heads. An EAGLE3 draft adds its own layer(s) to every token.
    """
    t = profile.text
    heads_per_gpu = max(1, t.num_kv_heads // tp)
    element = FP8_BYTES if kv_dtype == "fp8" else BF16_BYTES
    return (t.num_layers + draft_layers) * heads_per_gpu * t.head_dim * 2 * element


def draft_bytes(profile: ModelProfile, tp: int, batched_tokens: int) -> int:
    """An EAGLE3 draft on one GPU: its weights in BF16 (split under TP) and the buffer of the
    three target layers' hidden states it reads for every batched token."""
    weights = math.ceil(eagle3_draft_parameters(profile.text) * BF16_BYTES / tp)
    return weights + batched_tokens * 3 * profile.text.hidden_size * BF16_BYTES


def allocated_weight_bytes(
    profile: ModelProfile, gpu: GpuSpec, tp: int, ep: bool, batched_tokens: int
) -> int:
    """Weights on one GPU as vLLM allocates them: the parameters plus the buffers loaded with
    them, some of which grow with ``--max-num-batched-tokens``, plus the Marlin kernels'
    repacking where FP8 weights run on a GPU without FP8 tensor cores."""
    t, v = profile.text, profile.vision
    buffers = weight_buffer_bytes(t.hidden_size, v.num_deepstack, batched_tokens)
    marlin = MARLIN_FP8_EXTRA_BYTES if profile.fp8_block and not gpu.supports_fp8 else 0
    return weight_bytes(profile, tp, ep) + buffers + marlin


def activation_bytes(profile: ModelProfile, tp: int, batched_tokens: int) -> int:
    """Peak of vLLM's profiling forward pass through the language model on one GPU."""
    t = profile.text
    return language_activation_bytes(t.hidden_size, t.intermediate_size, tp, batched_tokens)


def vision_bytes(profile: ModelProfile, encoder_tokens: int) -> int:
    """The vision encoder's profiling peak plus its output cache, for ``encoder_tokens`` tokens.

    vLLM runs the encoder on a batch worth ``max(max_num_batched_tokens, largest image)`` visual
    tokens (see :func:`.vllm_memory.vision_encoder_bytes`).
    """
    v = profile.vision
    return vision_encoder_bytes(
        v.hidden_size, v.intermediate_size, v.out_hidden_size, v.spatial_merge_size,
        v.num_deepstack, encoder_tokens,
    )  # fmt: skip


def image_tokens(
    width: int, height: int, profile: ModelProfile, max_pixels: int | None = None
) -> int:
    """Visual tokens of a ``width`` x ``height`` image after Qwen-VL's ``smart_resize``.

    Both sides are rounded to multiples of the 32-pixel token size, then scaled (keeping the
    aspect ratio) into ``[min_pixels, max_pixels]``.
    """
    factor = profile.vision.patch_size * profile.vision.spatial_merge_size
    max_pixels = max_pixels or profile.max_pixels
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / beta / factor) * factor)
        w = max(factor, math.floor(width / beta / factor) * factor)
    elif h * w < profile.min_pixels:
        beta = math.sqrt(profile.min_pixels / (height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
    return (h // factor) * (w // factor)


def min_context(profile: ModelProfile) -> int:
    """The shortest context worth serving: the smallest image with a typical prompt and answer."""
    return image_budget_overhead() + profile.min_pixels // profile.pixels_per_token


def image_budget_overhead() -> int:
    return PROMPT_TOKENS + ANSWER_TOKENS + IMAGE_WRAPPER_TOKENS


MAX_ASPECT_RATIO = 200  # Qwen-VL's resize refuses longer sides than this many times the shorter


def largest_image_tokens(profile: ModelProfile, max_model_len: int) -> int:
    """Visual tokens of the largest image one request of ``max_model_len`` holds, next to a
    typical prompt and answer (never more than the preprocessor allows).

    Only a count that is a real image's grid qualifies: vLLM's Qwen-VL code takes as its image
    budget the largest count up to the cap whose two closest factors have an aspect ratio of
    at most 200 (``Qwen2VLProcessingInfo.get_image_size_with_most_features``); 5,374 = 2 x
    2,687, for one, is not, and vLLM budgets 5,373 = 9 x 597.
    """
    tokens = min(profile.max_image_tokens, max_model_len - image_budget_overhead())
    while tokens > 1 and _closest_factor_ratio(tokens) > MAX_ASPECT_RATIO:
        tokens -= 1
    return tokens


def _closest_factor_ratio(n: int) -> float:
    side = next(d for d in range(math.isqrt(n), 0, -1) if n % d == 0)
    return (n // side) / side


def image_fits(profile: ModelProfile, max_model_len: int, width: int, height: int) -> bool:
    """True when a ``width`` x ``height`` image fits one request at full detail (not scaled
    down), next to a typical prompt and answer."""
    return image_tokens(width, height, profile) <= largest_image_tokens(profile, max_model_len)


# ---------------------------------------------------------------------------------------------
# The plan


@dataclass(frozen=True)
class Budget:
    """One GPU's memory budget for a model and settings; answers for any context length.

    ``utilization``: the whole process's share of each GPU (``None``: the card less
    :data:`~.vllm_memory.HEADROOM_BYTES`). ``video=True``: vLLM profiles the largest input the
    preprocessor allows (the bench uses that for the old fixed-flags deployment, which capped
    nothing).
    """

    gpu: GpuSpec
    profile: ModelProfile
    tp: int
    utilization: float | None
    num_seqs: int
    batched_tokens: int
    video: bool
    kv_dtype: str = "auto"
    speculative: str | None = None

    @property
    def draft_layers(self) -> int:
        return 1 if self.speculative else 0

    @property
    def kv_per_token(self) -> int:
        """KV-cache bytes per token on one GPU, the draft's layer included."""
        return kv_bytes_per_token(self.profile, self.tp, self.kv_dtype, self.draft_layers)

    @property
    def encoder_data_parallel(self) -> bool:
        return self.tp > 1

    @property
    def usable(self) -> int:
        return usable_bytes(self.gpu, self.utilization)

    @property
    def share(self) -> float:
        """``--gpu-memory-utilization``: the budget's share of the card, down to 0.01."""
        return math.floor(self.usable * 100 / self.gpu.memory_bytes + 1e-6) / 100

    @cached_property
    def _fixed(self) -> Reserves:
        """The reserves that do not depend on the context length (vision left at zero)."""
        ep, batched = self.encoder_data_parallel, self.batched_tokens
        draft = draft_bytes(self.profile, self.tp, batched) if self.speculative else 0
        return Reserves(
            weights=allocated_weight_bytes(self.profile, self.gpu, self.tp, ep, batched) + draft,
            activations=activation_bytes(self.profile, self.tp, self.batched_tokens),
            vision=0,
            runtime=runtime_bytes(self.tp),
        )

    def image_tokens(self, max_model_len: int) -> int:
        """Visual tokens of the largest image one request holds (the image cap)."""
        return largest_image_tokens(self.profile, max_model_len)

    def encoder_tokens(self, max_model_len: int) -> int:
        """Visual tokens vLLM runs through the encoder at once when it profiles: a prefill
        chunk's worth, or the largest image, or with video on, the largest input the
        preprocessor allows (the video path is not capped)."""
        largest = self.profile.max_image_tokens if self.video else self.image_tokens(max_model_len)
        return max(self.batched_tokens, largest)

    def reserves(self, max_model_len: int) -> Reserves:
        vision = vision_bytes(self.profile, self.encoder_tokens(max_model_len))
        return replace(self._fixed, vision=vision)

    def kv_cache_bytes(self, max_model_len: int) -> int:
        """KV-cache bytes per GPU (``--kv-cache-memory-bytes``): whole blocks of what is left."""
        return self.kv_tokens(max_model_len) * self.kv_per_token

    def kv_tokens(self, max_model_len: int) -> int:
        """KV tokens (whole model) that fit when serving contexts up to ``max_model_len``."""
        free = self.usable - self.reserves(max_model_len).total
        if free <= 0:
            return 0
        tokens = free // self.kv_per_token
        return tokens - tokens % KV_BLOCK_TOKENS

    def fits(self, max_model_len: int, requests: int = 1) -> bool:
        return self.kv_tokens(max_model_len) >= requests * max_model_len

    def longest(self, requests: int, step: int = CONTEXT_STEP) -> int | None:
        """The longest context (a multiple of ``step``) that ``requests`` requests share.

        Bisection: a longer context never leaves more KV tokens, so fitting is monotonic.
        """
        lengths = range(
            math.ceil(min_context(self.profile) / step) * step,
            self.profile.text.max_position_embeddings + 1,
            step,
        )
        fitting = bisect.bisect_left(lengths, True, key=lambda n: not self.fits(n, requests))
        return lengths[fitting - 1] if fitting else None


def plan_serving(
    instance_type: str,
    *,
    model: str | None = None,
    kv_cache_dtype: str | None = None,
    max_model_len: int | None = None,
    gpu_memory_utilization: float | None = None,
    tensor_parallel_size: int | None = None,
    max_num_seqs: int | None = None,
    max_num_batched_tokens: int | None = None,
    video: bool = False,
    speculative: str | None = None,
    gpu: GpuSpec | None = None,
) -> ServingPlan:
    """The plan for ``instance_type``; any argument given overrides the planner's choice.

    Modes are tried in order (BF16; FP8 weights; FP8 weights and FP8 KV cache), limited to the
    model and KV-cache dtype asked for: the first whose default context takes a 1080p image (or
    that fits the asked context) wins. ``gpu`` defaults to the built-in catalog's entry (the
    CLI passes EC2's answer when it has one). Raises ``UsageError`` when an override cannot
    fit, saying what would.
    """
    setups = _setups(
        instance_type, gpu, model, kv_cache_dtype, gpu_memory_utilization,
        tensor_parallel_size, max_num_seqs, max_num_batched_tokens, video, speculative,
    )  # fmt: skip
    if max_model_len is None:
        found = [(s, s.longest(MIN_FULL_LENGTH_REQUESTS) or s.longest(1)) for s in setups]
        # the first mode whose default context takes a 1080p image, else the first that fits
        full_hd = [(s, n) for s, n in found if n and image_fits(s.profile, n, *FULL_HD)]
        setup, length = next(iter(full_hd or [(s, n) for s, n in found if n]), (setups[0], None))
        if length is None:
            raise UsageError(_no_room_message(instance_type, setup))
    else:
        _check_context_range(setups[0].profile, max_model_len)
        setup = next((s for s in setups if s.fits(max_model_len)), None)
        if setup is None:
            raise UsageError(_too_long_message(instance_type, max_model_len, setups))
        length = max_model_len
    others = [s for s in setups if s is not setup]
    return _build_plan(instance_type, setup, length, others, asked=max_model_len is not None)


@dataclass(frozen=True)
class ModeOutcome:
    """One serving mode under the same other overrides: its plan, or why it cannot fit."""

    mode: str  # e.g. "bf16", "fp8 + fp8 kv"
    ask: str  # the options that select it
    plan: ServingPlan | None
    error: str | None = None

    def to_json(self) -> dict:
        row: dict = {"mode": self.mode, "ask": self.ask}
        if self.plan is None:
            return {**row, "error": self.error}
        p = self.plan
        return {
            **row,
            "model_id": p.model_id,
            "kv_cache_dtype": p.kv_cache_dtype,
            "max_model_len": p.max_model_len,
            "kv_tokens": p.kv_tokens,
            "largest_image_pixels": p.largest_image_pixels,
        }


def plan_modes(instance_type: str, **overrides) -> list[ModeOutcome]:
    """One plan per mode (BF16; FP8; FP8 + FP8 KV cache) with the same other overrides, for
    ``plan-serving``'s side-by-side table."""
    overrides = {k: v for k, v in overrides.items() if k not in ("model", "kv_cache_dtype")}
    outcomes = []
    for model, kv_dtype in MODES:
        mode = mode_name(load_profile(model).precision, kv_dtype)
        ask = mode_options(model, kv_dtype)
        try:
            plan = plan_serving(instance_type, model=model, kv_cache_dtype=kv_dtype, **overrides)
        except UsageError as exc:
            outcomes.append(ModeOutcome(mode, ask, None, str(exc)))
        else:
            outcomes.append(ModeOutcome(mode, ask, plan))
    return outcomes


def mode_name(precision: str, kv_dtype: str) -> str:
    return precision + (" + fp8 kv" if kv_dtype == "fp8" else "")


def mode_options(model: str, kv_dtype: str) -> str:
    """The ``plan-serving``/``apply`` options that select a mode."""
    return f"--model {model}" + (f" --kv-cache-dtype {kv_dtype}" if kv_dtype != "auto" else "")


#: The serving modes in the order the planner prefers them: (checkpoint, --kv-cache-dtype).
MODES = ((BF16_MODEL_ID, "auto"), (FP8_MODEL_ID, "auto"), (FP8_MODEL_ID, "fp8"))


def _setups(
    instance_type: str,
    gpu: GpuSpec | None,
    model: str | None,
    kv_cache_dtype: str | None,
    utilization: float | None,
    tensor_parallel_size: int | None,
    max_num_seqs: int | None,
    max_num_batched_tokens: int | None,
    video: bool,
    speculative: str | None,
) -> list[Budget]:
    """The budgets of every mode the overrides allow, in :data:`MODES` order."""
    gpu = gpu or catalog_gpu(instance_type)
    if model is not None:
        load_profile(model)  # an unknown model is a usage error before anything else
    if speculative is not None and speculative not in SPECULATIVE_METHODS:
        raise UsageError(
            f"--speculative {speculative} is not offered: use {', '.join(SPECULATIVE_METHODS)}."
        )
    if kv_cache_dtype is not None and kv_cache_dtype not in KV_CACHE_DTYPES:
        raise UsageError(
            f"--kv-cache-dtype {kv_cache_dtype} is not offered: use {' or '.join(KV_CACHE_DTYPES)}."
        )
    modes = [
        (load_profile(m), kv)
        for m, kv in MODES
        if model in (None, m) and kv_cache_dtype in (None, kv)
    ]
    if not modes:  # BF16 weights with an FP8 KV cache: a mode of its own, asked for by name
        modes = [(load_profile(model or BF16_MODEL_ID), kv_cache_dtype or "auto")]
    tp = _tensor_parallel(gpu, modes[0][0], tensor_parallel_size)
    _check_utilization(utilization)
    num_seqs = _positive("--max-num-seqs", max_num_seqs, DEFAULT_MAX_NUM_SEQS)
    default_batched = 2 * 4096 if gpu.memory_mib >= LARGE_GPU_MIB else 4096
    batched = _positive("--max-num-batched-tokens", max_num_batched_tokens, default_batched)
    if batched < num_seqs:
        raise UsageError(
            f"--max-num-batched-tokens ({batched}) must be at least --max-num-seqs ({num_seqs})."
        )
    return [
        Budget(gpu, profile, tp, utilization, num_seqs, batched, video, kv, speculative)
        for profile, kv in modes
    ]


def _tensor_parallel(gpu: GpuSpec, profile: ModelProfile, requested: int | None) -> int:
    """All GPUs by default; a request must fit the GPU count and divide the attention heads."""
    tp = gpu.count if requested is None else requested
    heads, kv_heads = profile.text.num_heads, profile.text.num_kv_heads
    divides = heads % tp == 0 and (kv_heads % tp == 0 or tp % kv_heads == 0)
    if not 1 <= tp <= gpu.count or not divides:
        allowed = [n for n in (1, 2, 4, 8) if n <= gpu.count and heads % n == 0]
        raise UsageError(
            f"--tensor-parallel-size {tp} does not fit {gpu.count} x {gpu.name}: use one of "
            f"{', '.join(map(str, allowed))} (it must divide the model's {heads} attention heads)."
        )
    return tp


def _check_utilization(requested: float | None) -> None:
    if requested is not None and not 0.1 <= requested <= 0.98:
        raise UsageError(f"--gpu-memory-utilization {requested} is out of range: use 0.1 to 0.98.")


def _positive(flag: str, value: int | None, default: int) -> int:
    if value is None:
        return default
    if value < 1:
        raise UsageError(f"{flag} must be a positive number, not {value}.")
    return value


def _check_context_range(profile: ModelProfile, max_model_len: int) -> None:
    low, high = min_context(profile), profile.text.max_position_embeddings
    if not low <= max_model_len <= high:
        raise UsageError(
            f"--max-model-len {max_model_len} is out of range: use {low} (the smallest image with "
            f"a {PROMPT_TOKENS}-token prompt and a {ANSWER_TOKENS}-token answer) to {high} "
            "(the model's own limit)."
        )


def _no_room_message(instance_type: str, setup: Budget) -> str:
    reserves = setup.reserves(min_context(setup.profile))
    return (
        f"{setup.profile.model_id} does not fit on {instance_type}: weights and reserves need "
        f"{_gib(reserves.total)} per GPU, the budget (--gpu-memory-utilization "
        f"{setup.share:g}) allows {_gib(setup.usable)}. Raise the utilization, use FP8 "
        f"({FP8_MODEL_ID}), more GPUs, or a larger instance type."
        + (" Video needs the largest vision reserve: drop --video." if setup.video else "")
    )


def _too_long_message(instance_type: str, asked: int, setups: list[Budget]) -> str:
    options = []
    for s in setups:
        longest = s.longest(1, step=KV_BLOCK_TOKENS)
        fit = f"--max-model-len {longest}" if longest else "nothing"
        options.append(f"{_mode_name(s)} fits up to {fit}")
    return (
        f"--max-model-len {asked} does not fit on {instance_type} "
        f"({setups[0].gpu.count} x {setups[0].gpu.name}): {'; '.join(options)}. "
        "Ask for less, or choose an instance type with more GPU memory (g6e: 48 GB per GPU; "
        "12xlarge and 48xlarge: 4 and 8 GPUs)."
    )


def _gib(n: int) -> str:
    return f"{n / GIB:.2f} GiB"


def _mode_name(s: Budget) -> str:
    kv = ", FP8 KV cache" if s.kv_dtype == "fp8" else ""
    return f"{s.profile.model_id} ({s.profile.precision.upper()}{kv})"


def _build_plan(
    instance_type: str, s: Budget, length: int, others: list[Budget], *, asked: bool
) -> ServingPlan:
    profile, gpu = s.profile, s.gpu
    reserves = s.reserves(length)
    kv_tokens = s.kv_tokens(length)
    image = s.image_tokens(length)
    image_pixels = image * profile.pixels_per_token
    decoded_cap = max_decoded_pixels(profile, image_pixels)
    images = max_images_per_prompt(profile, image, decoded_cap)
    flags = _flags(s, length, image_pixels, images)
    plan = ServingPlan(
        instance_type=instance_type,
        gpu=gpu,
        model_id=profile.model_id,
        precision=profile.precision,
        tensor_parallel_size=s.tp,
        encoder_data_parallel=s.encoder_data_parallel,
        gpu_memory_utilization=s.share,
        usable_bytes_per_gpu=s.usable,
        parameters=parameter_count(profile),
        weight_bytes=weight_bytes(profile),
        reserves=reserves,
        kv_cache_dtype=s.kv_dtype,
        kv_bytes_per_token=kv_bytes_per_token(profile, 1, s.kv_dtype, s.draft_layers),
        kv_cache_bytes_per_gpu=s.kv_cache_bytes(length),
        kv_tokens=kv_tokens,
        max_model_len=length,
        max_num_seqs=s.num_seqs,
        max_num_batched_tokens=s.batched_tokens,
        largest_image_tokens=image,
        largest_image_pixels=image_pixels,
        max_decoded_pixels=decoded_cap,
        max_images_per_prompt=images,
        video=s.video,
        flags=flags,
        speculative=s.speculative,
        draft_model_id=speculative_draft(s.speculative),
    )
    plan.explanation.extend(_explain(plan, s, others, asked=asked))
    return plan


def _flags(s: Budget, length: int, image_pixels: int, images: int) -> list[str]:
    """vLLM CLI arguments (no model id: the caller passes it separately)."""
    flags = ["--tensor-parallel-size", str(s.tp)]
    if s.encoder_data_parallel:
        flags += ["--mm-encoder-tp-mode", "data"]
    flags += [
        "--max-model-len", str(length),
        "--gpu-memory-utilization", f"{s.share:g}",
        "--kv-cache-memory-bytes", str(s.kv_cache_bytes(length)),
        "--max-num-seqs", str(s.num_seqs),
        "--max-num-batched-tokens", str(s.batched_tokens),
        "--enable-prefix-caching",
        "--enable-chunked-prefill",
        "--limit-mm-per-prompt.image", str(images),
    ]  # fmt: skip
    if s.kv_dtype != "auto":
        flags += ["--kv-cache-dtype", s.kv_dtype]
    if s.speculative:
        config = {
            "method": "eagle3",
            "model": DRAFT_DIR_PLACEHOLDER,
            "num_speculative_tokens": EAGLE3_STEPS,
        }
        flags += ["--speculative-config", json.dumps(config, separators=(",", ":"))]
    if not s.video:
        flags += ["--limit-mm-per-prompt.video", "0"]
    if image_pixels < s.profile.max_pixels:
        kwargs = {"images_kwargs": {"size": image_size_cap(s.profile, image_pixels)}}
        flags += ["--mm-processor-kwargs", json.dumps(kwargs, separators=(",", ":"))]
    return flags


def image_size_cap(profile: ModelProfile, max_pixels: int) -> dict[str, int]:
    """The image cap in the form the pinned vLLM and transformers read without deprecation.

    vLLM 0.32's Qwen3-VL code honours ``images_kwargs.size`` for both its image budget
    (profiling, max tokens) and the resize; ``max_pixels`` (flat or scoped) works too but makes
    transformers warn that it goes in 5.23 (tests/vllm/test_planner_vs_vllm.py shows all
    three). Both edges, as the image processor's own ``size``.
    """
    return {"longest_edge": max_pixels, "shortest_edge": profile.min_pixels}


def _explain(plan: ServingPlan, s: Budget, others: list[Budget], *, asked: bool) -> list[str]:
    """The arithmetic behind the flags, one line per step, in the order vLLM does it."""
    gpu, profile, r = plan.gpu, s.profile, plan.reserves
    t = profile.text
    per_gpu_kv = s.kv_per_token
    kv_element = FP8_BYTES if s.kv_dtype == "fp8" else BF16_BYTES
    square = math.isqrt(plan.largest_image_pixels)
    image_pixels_capped = plan.largest_image_pixels < profile.max_pixels
    if asked:
        reason = "as asked"
    elif plan.max_model_len == t.max_position_embeddings:
        reason = "the model's own limit"
    else:
        reason = (
            f"the longest, in steps of {CONTEXT_STEP:,}, that leaves room for "
            f"{MIN_FULL_LENGTH_REQUESTS} full-length requests"
        )
    lines = [
        f"GPUs: {gpu.count} x {gpu.name}, {gpu.memory_mib:,} MiB each ({gpu.source}).",
        f"Whole-process budget per GPU: {_gib(plan.usable_bytes_per_gpu)} ("
        + (
            f"the card less {_gib(HEADROOM_BYTES)} headroom"
            if s.utilization is None
            else f"{s.utilization:g} of the card, as asked"
        )
        + f"); memory model calibrated on vLLM {MEASURED_VLLM_VERSION} on a real GPU, flags "
        f"for the pinned vLLM {pinned_versions()['VLLM_VERSION']} (bench/gpu-measurements.md).",
        f"Weights: {plan.parameters / 1e9:.2f} B parameters in {profile.precision.upper()} "
        f"({profile.model_id}) = {_gib(plan.weight_bytes)}; per GPU as allocated, with the "
        f"buffers for {s.batched_tokens:,} batched tokens, {_gib(r.weights)}"
        + (
            " (FP8 weight-only through vLLM's Marlin kernels: no FP8 tensor cores)."
            if profile.fp8_block and not gpu.supports_fp8
            else "."
        ),
        f"Reserved per GPU: activation peak {_gib(r.peak)} (language model "
        f"{_gib(r.activations)} for {s.batched_tokens:,}-token prefill chunks; vision encoder "
        f"{_gib(r.vision)} with its output cache), non-torch memory, CUDA graphs and CUDA "
        f"context {_gib(r.runtime)}.",
        f"KV cache per token: {t.num_layers + s.draft_layers} layers"
        + (" (one the draft's)" if s.draft_layers else "")
        + f" x {t.num_kv_heads} KV heads x "
        f"{t.head_dim} dims x 2 (K and V) x {kv_element} byte(s) = "
        f"{plan.kv_bytes_per_token:,} bytes" + (f" ({per_gpu_kv:,} per GPU)." if s.tp > 1 else "."),
        f"KV cache: {_gib(plan.kv_cache_bytes_per_gpu)} per GPU = {plan.kv_tokens:,} tokens, "
        "set exactly (--kv-cache-memory-bytes) rather than left to the utilization flag; "
        f"predicted whole-process use {plan.process_bytes_per_gpu / 1024**2:,.0f} MiB of "
        f"{gpu.memory_mib:,} per GPU.",
        f"Max model length: {plan.max_model_len:,} tokens ({reason}); "
        f"{plan.concurrency} full-length request(s) fit at once (shorter ones share the "
        f"cache, up to {s.num_seqs} sequences).",
        f"Largest image per request: {plan.largest_image_pixels:,} pixels "
        f"({plan.largest_image_tokens:,} visual tokens of 32x32 pixels, about {square}x{square}) "
        f"next to a {PROMPT_TOKENS}-token prompt and a {ANSWER_TOKENS}-token answer"
        + ("; larger images are scaled down to it." if image_pixels_capped else "."),
        f"Image abuse limits: images that decode to more than {plan.max_decoded_pixels:,} "
        f"pixels (about {math.isqrt(plan.max_decoded_pixels)}x"
        f"{math.isqrt(plan.max_decoded_pixels)}) are refused before decoding "
        f"(VLLM_MAX_IMAGE_PIXELS), and a prompt carries at most {plan.max_images_per_prompt} "
        f"image(s) (--limit-mm-per-prompt.image): at most "
        f"{_gib(REQUEST_DECODE_BYTES)} of decoded pixels per request.",
    ]
    if s.tp > 1:
        lines.append(
            f"Tensor parallel across {s.tp} GPUs; the vision encoder runs data-parallel "
            "(--mm-encoder-tp-mode data), as vLLM's Qwen3-VL recipe recommends: it is small, so "
            "a whole copy per GPU beats splitting every layer."
        )
    lines.append(
        "Video enabled (no --limit-mm-per-prompt.video 0): the vision reserve covers the "
        "largest visual input the preprocessor allows, an estimate for video."
        if s.video
        else "Video disabled (--limit-mm-per-prompt.video 0), as the recipe suggests for "
        "image-only serving: no video profiling or cache."
    )
    lines.append(
        "Prefix caching and chunked prefill on (vLLM's defaults for this model, set "
        "explicitly); vLLM turns async scheduling on by itself."
    )
    if s.speculative:
        draft = draft_bytes(profile, s.tp, s.batched_tokens)
        lines.append(
            f"Speculative decoding: EAGLE3 with the draft {EAGLE3_DRAFT_ID} (downloaded and "
            f"cached by the bootstrap like the model); {_gib(draft)} per GPU for its weights "
            "(an upper estimate: its config is not shipped) and hidden-state buffer, counted "
            "with the weights, and one more layer in every token's KV cache. vLLM proposes "
            f"{EAGLE3_STEPS} tokens a step; SGLang runs {EAGLE3_STEPS} steps, top "
            f"{EAGLE3_TOPK}, {EAGLE3_DRAFT_TOKENS} draft tokens."
        )
    lines += [_alternative(plan, other) for other in others]
    return lines


def _alternative(plan: ServingPlan, other: Budget) -> str:
    """One line about another mode: what it would allow, and how to ask for it."""
    longest = other.longest(MIN_FULL_LENGTH_REQUESTS) or other.longest(1, step=KV_BLOCK_TOKENS)
    fits = f"would allow --max-model-len {longest:,}" if longest else "does not fit"
    ask = mode_options(other.profile.model_id, other.kv_dtype)
    return f"Also possible: {_mode_name(other)} {fits} ({ask})."
