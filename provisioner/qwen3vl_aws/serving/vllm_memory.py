"""How the pinned vLLM spends one GPU's memory: every calibrated constant of the serving plan.

One place for the numbers the planner cannot derive from the model's config, each with where it
was measured and on which vLLM version. The measurements are bench/gpu-measurements.md (the
table, machine-readable in bench/gpu_measurements.json); tests/unit/test_vllm_memory.py checks
this model against that table, run by run.

The measuring engine is vLLM 0.26.0 on an H200 (the newest release the lent GPU machine's torch
runs); the instance pins vLLM 0.32.0 (userdata/versions.env). Where the two versions account
differently, the plan does not rely on the accounting at all: it sizes the KV cache explicitly
(``--kv-cache-memory-bytes``), so what vLLM allocates is the same in both and only the rest of
the process has to be modelled:

- vLLM 0.26's V2 model runner (the one Qwen3-VL uses) profiled only the language model and
  counted CUDA graphs as 0, then captured them on top of its budget: with the utilization flag
  alone the process outgrew its budget by the graph pool and the CUDA context.
- vLLM 0.32 profiles the vision encoder too (``GPUModelRunner.profile_run`` in
  vllm/v1/worker/gpu/model_runner.py) and estimates the graph pool
  (``VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS``, default on, vllm/v1/worker/gpu_worker.py).
  With ``kv_cache_memory_bytes`` set it still runs the profile pass (to compile for
  ``max_num_batched_tokens``) but takes the KV size as given (``Worker.determine_available_
  memory``).

Whole-process memory of one GPU, as nvidia-smi shows it once requests (the largest image
included) have run:

    weights as allocated + non-torch + CUDA graphs + CUDA context + KV cache
        + max(language-model activation peak, vision-encoder peak)

and the plan keeps :data:`HEADROOM_BYTES` of the card free beyond that.
"""

from __future__ import annotations

GIB = 1024**3
MIB = 1024**2

#: The engine version the constants below were measured on, and where (bench/gpu-measurements.md).
MEASURED_VLLM_VERSION = "0.26.0"
MEASURED_ON = "2026-12-01, NVIDIA H200, dummy weights, the real Qwen3-VL-8B-Instruct config"

#: Weights as allocated exceed the parameters vLLM builds by fixed buffers (the M-RoPE cos/sin
#: cache and similar) plus input buffers sized by ``--max-num-batched-tokens``: one
#: hidden-size row per DeepStack level and batched token. Measured ("Model loading took"):
#: 16.69 GiB for 16.33 GiB of BF16 parameters at 4,096 batched tokens, 16.79 at 8,192; FP8
#: 10.23 for 9.86 at 4,096.
WEIGHT_BUFFERS_FIXED_BYTES = round(0.27 * GIB)

#: FP8 weights on a GPU without FP8 tensor cores (A10G) run through vLLM's Marlin kernels
#: (weight-only FP8), which repack them: 10.33 GiB against 10.23 with the Hopper kernels
#: (measured with VLLM_TEST_FORCE_FP8_MARLIN=1 and the block-FP8 kernels ahead of Marlin
#: disabled, so vLLM chose MarlinFP8ScaledMMLinearKernel as it does on an A10G).
MARLIN_FP8_EXTRA_BYTES = round(0.10 * GIB)

#: The language model's profiling peak above the weights has a fixed part (sampler and small
#: buffers) besides one prefill chunk through the widest layer. Measured 0.43 GiB at 4,096
#: batched tokens, 0.78 at 8,192 (vLLM's "peak activation"; FP8: 0.36 and 0.33).
ACTIVATION_FIXED_BYTES = round(0.09 * GIB)

#: The vision encoder's peak per patch, in BF16 values: four hidden-size and four
#: intermediate-size rows of one ViT layer. Calibrated: the process grew by 1,142 MiB after a
#: 5,929-token image (A10G plan) and by 3,048-3,076 MiB after a 16,384-token one (L40S, L4 and
#: Marlin plans), which is 40.6-42.3 KB per patch once the encoder cache is taken off; this
#: gives 43.6 KB.
VISION_ROWS_PER_PATCH = (4, 4)  # (hidden-size rows, intermediate-size rows)

#: Allocations outside torch (cuBLAS/cuDNN handles). vLLM's "non-torch" figure: 0.22 GiB in
#: every run that profiled.
NON_TORCH_BYTES = round(0.22 * GIB)

#: The CUDA-graph pool for vLLM's default capture sizes with ``--max-num-seqs`` 256 (graphs up
#: to 512 tokens). Measured 0.60 GiB (BF16) and 0.56 (FP8); 1.01 with vLLM's default sequences
#: on an H200 (more capture sizes).
CUDA_GRAPHS_BYTES = round(0.60 * GIB)

#: What the process holds that vLLM's accounting never sees: the CUDA context, the cuBLAS
#: workspace, the caching allocator's rounding. Whole process right after start minus (the
#: model's weights as allocated + non-torch + graphs + KV cache): 1,069 to 1,290 MiB over seven
#: runs (the g6.xlarge FP8 plan twice: 1,071 and 1,290); the largest is kept, rounded up.
#: An H200's context: smaller GPUs have smaller ones, so this errs on the safe side on A10G,
#: L4 and L40S.
CUDA_CONTEXT_BYTES = 1296 * MIB

#: NCCL's buffers on each GPU under tensor parallelism (not measured: one GPU was lent).
NCCL_BYTES = GIB // 4

#: What the plan leaves free on each card beyond everything above: the allocator's
#: fragmentation after long uptimes, run-to-run variation (the same plan's whole process after
#: the same requests differed by 200 MiB between two runs) and EC2's memory figure against the
#: driver's. The model itself came out 36 to 448 MiB above the measured whole process
#: (bench/gpu-measurements.md).
HEADROOM_BYTES = 768 * MIB


def weight_buffer_bytes(hidden_size: int, num_deepstack: int, batched_tokens: int) -> int:
    """Buffers allocated with the weights: the fixed ones plus the DeepStack input rows."""
    return WEIGHT_BUFFERS_FIXED_BYTES + batched_tokens * num_deepstack * hidden_size * 2


def language_activation_bytes(
    hidden_size: int, intermediate_size: int, tp: int, batched_tokens: int
) -> int:
    """The language model's profiling peak on one GPU: a prefill chunk's gate/up output (two
    intermediate rows), its activation (one), two hidden-size buffers, in BF16."""
    per_token = 3 * intermediate_size // tp + 2 * hidden_size
    return batched_tokens * per_token * 2 + ACTIVATION_FIXED_BYTES


def vision_encoder_bytes(
    hidden_size: int,
    intermediate_size: int,
    out_hidden_size: int,
    merge: int,
    num_deepstack: int,
    tokens: int,
) -> int:
    """The vision encoder's peak for ``tokens`` visual tokens (``merge**2`` patches each), plus
    the encoder cache that keeps their merged output and DeepStack features."""
    hidden_rows, intermediate_rows = VISION_ROWS_PER_PATCH
    per_patch = (hidden_rows * hidden_size + intermediate_rows * intermediate_size) * 2
    cache = tokens * out_hidden_size * (1 + num_deepstack) * 2
    return tokens * merge**2 * per_patch + cache


def runtime_bytes(tp: int) -> int:
    """Non-torch memory, the CUDA-graph pool and the CUDA context on one GPU (NCCL under TP)."""
    nccl = NCCL_BYTES if tp > 1 else 0
    return NON_TORCH_BYTES + CUDA_GRAPHS_BYTES + CUDA_CONTEXT_BYTES + nccl
