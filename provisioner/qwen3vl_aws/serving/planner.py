"""The serving plan: vLLM flags for one instance type, derived from its GPUs and the model.

Pure functions over a :class:`~.gpu_specs.GpuSpec` and a :class:`~.model_profile.ModelProfile`.
The arithmetic mirrors vLLM's own: it gives each GPU ``--gpu-memory-utilization`` of its memory,
loads the weights, profiles the activations (language model, vision encoder, CUDA graphs) and
hands what is left to the KV cache. Every reserve here is an estimate on the safe side, so the
plan never promises a context the engine then refuses at start-up.
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
from .model_profile import BF16_MODEL_ID, FP8_MODEL_ID, ModelProfile, load_profile

GIB = 1024**3

GPU_MEMORY_UTILIZATION = 0.90  # vLLM's default; the rest covers the CUDA context and fragmentation
BF16_BYTES = 2
FP8_BYTES = 1
FP8_SCALE_BYTES = 4  # one float32 scale per FP8 weight block
LOGITS_BYTES = 4  # the sampler works on float32 logits
KV_BLOCK_TOKENS = 16  # vLLM's default KV-cache block size

PROMPT_TOKENS = 256  # a typical request: system prompt, question and chat template
ANSWER_TOKENS = 512  # a typical answer
IMAGE_WRAPPER_TOKENS = 2  # <|vision_start|> ... <|vision_end|> around each image
MIN_FULL_LENGTH_REQUESTS = 2  # the default context leaves room for this many at once
CONTEXT_STEP = 512  # default max model lengths are multiples of this

DEFAULT_MAX_NUM_SEQS = 256  # vLLM's default for GPUs of this size
LARGE_GPU_MIB = 40 * 1024  # from here on, prefill chunks are doubled
SAMPLER_COPIES = 3  # logits, probabilities and the sorted copy top-p/top-k make
CUDA_GRAPHS_BYTES = GIB // 2  # vLLM counts its CUDA-graph pool inside the budget since v0.21
RUNTIME_BYTES = GIB // 2  # cuBLAS workspaces and other non-torch allocations
NCCL_BYTES = GIB // 4  # extra per GPU for NCCL buffers under tensor parallelism
# vLLM sizes the KV cache from what it measures at start-up, and refuses a --max-model-len the
# cache cannot hold. The driver reports a little less memory than EC2 advertises, and estimates
# are estimates: this share of the remaining memory is kept back from the plan's promise.
KV_MARGIN = 0.05

FULL_HD = (1920, 1080)


@dataclass(frozen=True)
class Reserves:
    """Per-GPU memory that is not KV cache, in bytes."""

    weights: int
    activations: int
    vision: int
    runtime: int
    margin: int = 0  # a share of what is left, never promised (see KV_MARGIN)

    @property
    def total(self) -> int:
        return self.weights + self.activations + self.vision + self.runtime + self.margin


@dataclass(frozen=True)
class ServingPlan:
    """What ``apply`` renders into the instance's vLLM environment file, and why."""

    instance_type: str
    gpu: GpuSpec
    model_id: str
    precision: str
    tensor_parallel_size: int
    encoder_data_parallel: bool
    gpu_memory_utilization: float
    usable_bytes_per_gpu: int
    parameters: int
    weight_bytes: int  # the whole model
    reserves: Reserves  # per GPU
    kv_bytes_per_token: int  # the whole model (all GPUs together)
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
    explanation: list[str] = field(default_factory=list)

    @property
    def concurrency(self) -> int:
        """Requests of the full max model length the KV cache holds at once."""
        return self.kv_tokens // self.max_model_len

    def to_json(self) -> dict:
        """Everything as plain JSON types (``plan-serving --json``)."""
        data = asdict(self)
        data.update(
            kv_cache_bytes_per_gpu=self.usable_bytes_per_gpu - self.reserves.total,
            concurrency=self.concurrency,
            prompt_tokens=PROMPT_TOKENS,
            answer_tokens=ANSWER_TOKENS,
        )
        return data


# ---------------------------------------------------------------------------------------------
# The arithmetic, one quantity per function (tests and the vLLM comparison call these directly)


def usable_bytes(gpu: GpuSpec, utilization: float) -> int:
    """Memory vLLM may use on each GPU."""
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


def kv_bytes_per_token(profile: ModelProfile, tp: int = 1) -> int:
    """KV-cache bytes one token takes on one GPU (``tp=1``: the whole model).

    layers x KV heads x head size x 2 (K and V) x 2 bytes (BF16 cache); KV heads split across
    tensor-parallel ranks and are replicated when there are more ranks than heads.
    """
    t = profile.text
    heads_per_gpu = max(1, t.num_kv_heads // tp)
    return t.num_layers * heads_per_gpu * t.head_dim * 2 * BF16_BYTES


def activation_bytes(profile: ModelProfile, tp: int, batched_tokens: int, num_seqs: int) -> int:
    """Peak of vLLM's profiling forward pass through the language model on one GPU.

    One prefill chunk of ``batched_tokens`` tokens through the widest layer (attention
    projections and the gated MLP, split across ranks, plus a few hidden-size buffers), and the
    sampler's float32 logits for ``num_seqs`` sequences.
    """
    t = profile.text
    qkv = (t.num_heads + 2 * t.num_kv_heads) * t.head_dim
    per_token = (qkv + 2 * t.intermediate_size) // tp + 4 * t.hidden_size
    sampler = num_seqs * t.vocab_size * LOGITS_BYTES * SAMPLER_COPIES
    return batched_tokens * per_token * BF16_BYTES + sampler


def vision_bytes(profile: ModelProfile, encoder_tokens: int) -> int:
    """The vision encoder's profiling peak plus its output cache, for ``encoder_tokens`` tokens.

    vLLM runs the encoder on a batch worth ``max(max_num_batched_tokens, largest image)`` visual
    tokens; each token is ``merge**2`` patches, each patch holds the attention and MLP
    activations of one ViT layer at a time. The encoder cache keeps the merged output (plus the
    DeepStack features) of that many tokens.
    """
    v = profile.vision
    patches = encoder_tokens * v.spatial_merge_size**2
    activations = patches * (4 * v.hidden_size + 2 * v.intermediate_size) * BF16_BYTES
    cache = encoder_tokens * v.out_hidden_size * (1 + v.num_deepstack) * BF16_BYTES
    return activations + cache


def runtime_bytes(tp: int) -> int:
    """CUDA graphs and non-torch allocations on one GPU (NCCL buffers too under TP)."""
    return CUDA_GRAPHS_BYTES + RUNTIME_BYTES + (NCCL_BYTES if tp > 1 else 0)


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


def largest_image_tokens(profile: ModelProfile, max_model_len: int) -> int:
    """Visual tokens of the largest image one request of ``max_model_len`` holds, next to a
    typical prompt and answer (never more than the preprocessor allows)."""
    return min(profile.max_image_tokens, max_model_len - image_budget_overhead())


def image_fits(profile: ModelProfile, max_model_len: int, width: int, height: int) -> bool:
    """True when a ``width`` x ``height`` image fits one request at full detail (not scaled
    down), next to a typical prompt and answer."""
    return image_tokens(width, height, profile) <= largest_image_tokens(profile, max_model_len)


# ---------------------------------------------------------------------------------------------
# The plan


@dataclass(frozen=True)
class Budget:
    """One GPU's memory budget for a model and settings; answers for any context length.

    ``video=True``: vLLM profiles the largest input the preprocessor allows (the bench uses
    that for the old fixed-flags deployment, which capped nothing).
    """

    gpu: GpuSpec
    profile: ModelProfile
    tp: int
    utilization: float
    num_seqs: int
    batched_tokens: int
    video: bool

    @property
    def encoder_data_parallel(self) -> bool:
        return self.tp > 1

    @cached_property
    def _fixed(self) -> Reserves:
        """The reserves that do not depend on the context length (vision left at zero)."""
        return Reserves(
            weights=weight_bytes(self.profile, self.tp, self.encoder_data_parallel),
            activations=activation_bytes(self.profile, self.tp, self.batched_tokens, self.num_seqs),
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
        left = usable_bytes(self.gpu, self.utilization) - self._fixed.total - vision
        return replace(self._fixed, vision=vision, margin=max(0, math.ceil(left * KV_MARGIN)))

    def kv_tokens(self, max_model_len: int) -> int:
        """KV tokens (whole model) that fit when serving contexts up to ``max_model_len``."""
        free = usable_bytes(self.gpu, self.utilization) - self.reserves(max_model_len).total
        if free <= 0:
            return 0
        tokens = free // kv_bytes_per_token(self.profile, self.tp)
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
    max_model_len: int | None = None,
    gpu_memory_utilization: float | None = None,
    tensor_parallel_size: int | None = None,
    max_num_seqs: int | None = None,
    max_num_batched_tokens: int | None = None,
    video: bool = False,
    gpu: GpuSpec | None = None,
) -> ServingPlan:
    """The plan for ``instance_type``; any argument given overrides the planner's choice.

    ``gpu`` defaults to the built-in catalog's entry (the CLI passes EC2's answer when it has
    one). Raises ``UsageError`` when an override cannot fit, saying what would.
    """
    gpu = gpu or catalog_gpu(instance_type)
    profiles = _candidate_profiles(gpu, instance_type, model)
    tp = _tensor_parallel(gpu, profiles[0], tensor_parallel_size)
    utilization = _utilization(gpu_memory_utilization)
    num_seqs = _positive("--max-num-seqs", max_num_seqs, DEFAULT_MAX_NUM_SEQS)
    default_batched = 2 * 4096 if gpu.memory_mib >= LARGE_GPU_MIB else 4096
    batched = _positive("--max-num-batched-tokens", max_num_batched_tokens, default_batched)
    if batched < num_seqs:
        raise UsageError(
            f"--max-num-batched-tokens ({batched}) must be at least --max-num-seqs ({num_seqs})."
        )
    setups = [Budget(gpu, p, tp, utilization, num_seqs, batched, video) for p in profiles]
    if max_model_len is None:
        found = ((s, s.longest(MIN_FULL_LENGTH_REQUESTS) or s.longest(1)) for s in setups)
        setup, length = next(((s, n) for s, n in found if n), (setups[0], None))
        if length is None:
            raise UsageError(_no_room_message(instance_type, setup))
    else:
        _check_context_range(profiles[0], max_model_len)
        setup = next((s for s in setups if s.fits(max_model_len)), None)
        if setup is None:
            raise UsageError(_too_long_message(instance_type, max_model_len, setups))
        length = max_model_len
    others = [s for s in setups if s is not setup]
    return _build_plan(instance_type, setup, length, others, asked=max_model_len is not None)


def _candidate_profiles(gpu: GpuSpec, instance_type: str, model: str | None) -> list[ModelProfile]:
    """BF16 first, then FP8 where the GPU runs it; just the one model when the user names it."""
    if model is not None:
        profile = load_profile(model)
        if profile.fp8_block and not gpu.supports_fp8:
            raise UsageError(
                f"{model} needs a GPU with FP8 support (L4 on g6, L40S on g6e); {instance_type} "
                f"has {gpu.name}. Use {BF16_MODEL_ID} there."
            )
        return [profile]
    profiles = [load_profile(BF16_MODEL_ID)]
    if gpu.supports_fp8:
        profiles.append(load_profile(FP8_MODEL_ID))
    return profiles


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


def _utilization(requested: float | None) -> float:
    value = GPU_MEMORY_UTILIZATION if requested is None else requested
    if not 0.1 <= value <= 0.98:
        raise UsageError(f"--gpu-memory-utilization {value} is out of range: use 0.1 to 0.98.")
    return value


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
        f"{_gib(reserves.total)} per GPU, --gpu-memory-utilization {setup.utilization} allows "
        f"{_gib(usable_bytes(setup.gpu, setup.utilization))}. Raise the utilization, use more "
        "GPUs, or choose a larger instance type."
        + (" Video needs the largest vision reserve: drop --video." if setup.video else "")
    )


def _too_long_message(instance_type: str, asked: int, setups: list[Budget]) -> str:
    options = []
    for s in setups:
        longest = s.longest(1, step=KV_BLOCK_TOKENS)
        fit = f"--max-model-len {longest}" if longest else "nothing"
        options.append(f"{s.profile.model_id} ({s.profile.precision.upper()}) fits up to {fit}")
    return (
        f"--max-model-len {asked} does not fit on {instance_type} "
        f"({setups[0].gpu.count} x {setups[0].gpu.name}): {'; '.join(options)}. "
        "Ask for less, or choose an instance type with more GPU memory (g6e: 48 GB per GPU; "
        "12xlarge and 48xlarge: 4 and 8 GPUs)."
    )


def _gib(n: int) -> str:
    return f"{n / GIB:.2f} GiB"


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
        gpu_memory_utilization=s.utilization,
        usable_bytes_per_gpu=usable_bytes(gpu, s.utilization),
        parameters=parameter_count(profile),
        weight_bytes=weight_bytes(profile),
        reserves=reserves,
        kv_bytes_per_token=kv_bytes_per_token(profile),
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
        "--gpu-memory-utilization", f"{s.utilization:g}",
        "--max-num-seqs", str(s.num_seqs),
        "--max-num-batched-tokens", str(s.batched_tokens),
        "--enable-prefix-caching",
        "--enable-chunked-prefill",
        "--limit-mm-per-prompt.image", str(images),
    ]  # fmt: skip
    if not s.video:
        flags += ["--limit-mm-per-prompt.video", "0"]
    if image_pixels < s.profile.max_pixels:
        kwargs = {"images_kwargs": {"max_pixels": image_pixels}}
        flags += ["--mm-processor-kwargs", json.dumps(kwargs, separators=(",", ":"))]
    return flags


def _explain(plan: ServingPlan, s: Budget, others: list[Budget], *, asked: bool) -> list[str]:
    """The arithmetic behind the flags, one line per step, in the order vLLM does it."""
    gpu, profile, r = plan.gpu, s.profile, plan.reserves
    t = profile.text
    per_gpu_kv = kv_bytes_per_token(profile, s.tp)
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
        f"Usable per GPU: {_gib(plan.usable_bytes_per_gpu)} "
        f"(--gpu-memory-utilization {s.utilization:g}; the rest is CUDA context and slack).",
        f"Weights: {plan.parameters / 1e9:.2f} B parameters in {profile.precision.upper()} "
        f"({profile.model_id}) = {_gib(plan.weight_bytes)}; per GPU {_gib(r.weights)}.",
        f"Reserved per GPU: activations {_gib(r.activations)} "
        f"({s.batched_tokens:,}-token prefill chunks, sampler for {s.num_seqs} sequences), "
        f"vision encoder {_gib(r.vision)} (its profiling peak and output cache), "
        f"CUDA graphs and runtime {_gib(r.runtime)}, safety margin {_gib(r.margin)} "
        f"({KV_MARGIN:.0%} of the rest).",
        f"KV cache per token: {t.num_layers} layers x {t.num_kv_heads} KV heads x "
        f"{t.head_dim} dims x 2 (K and V) x 2 bytes = {plan.kv_bytes_per_token:,} bytes"
        + (f" ({per_gpu_kv:,} per GPU)." if s.tp > 1 else "."),
        f"KV cache: {_gib(plan.usable_bytes_per_gpu - r.total)} per GPU = "
        f"{plan.kv_tokens:,} tokens.",
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
    lines += [_alternative(plan, other) for other in others]
    return lines


def _alternative(plan: ServingPlan, other: Budget) -> str:
    """One line about the other precision (FP8 offered on L4/L40S, or why FP8 was chosen)."""
    longest = other.longest(MIN_FULL_LENGTH_REQUESTS) or 0
    if other.profile.fp8_block:
        return (
            f"FP8 weights ({other.profile.model_id}) run on {plan.gpu.name}: they would allow "
            f"--max-model-len {longest:,} by default (pass --model {other.profile.model_id}, or "
            "ask for a longer --max-model-len and the planner switches)."
        )
    bf16_longest = other.longest(1, step=KV_BLOCK_TOKENS)
    fits = f"fits only up to --max-model-len {bf16_longest:,}" if bf16_longest else "does not fit"
    return f"FP8 chosen: {other.profile.model_id} (BF16) {fits} here."
