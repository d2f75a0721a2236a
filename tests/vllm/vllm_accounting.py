"""vLLM's own accounting of a model, printed as JSON; run with the vLLM venv's python.

    .venv-vllm/bin/python tests/vllm/vllm_accounting.py model MODEL_DIR
        Builds the model exactly as vLLM does (its config, its model class, its quantization
        method) on the meta device, so no memory is used and no weights are read, and prints
        the parameter count, weight bytes per dtype, KV-cache bytes per token (from each
        attention layer's own KV-cache spec) and whether vLLM enables prefix caching and
        chunked prefill for this model by default.

    .venv-vllm/bin/python tests/vllm/vllm_accounting.py model MODEL_DIR TP weights|data
        The same for tensor-parallel rank 0 of TP ranks (one process per rank, over gloo), with
        the vision encoder split by weights or replicated for data parallelism.

    .venv-vllm/bin/python tests/vllm/vllm_accounting.py flags MODEL_DIR FLAG_SETS_JSON
        Parses every flag set (a JSON list of argument lists) with the parser of `vllm serve`,
        then builds the full engine config from it, as the engine does at start-up. Prints, per
        set, either the resolved settings or the error vLLM raised.

    .venv-vllm/bin/python tests/vllm/vllm_accounting.py images MODEL_DIR FLAGS_JSON WxH...
        With the flags' multimodal settings, asks vLLM's Qwen3-VL processor for the largest
        image's token count and for each WxH image's token count (needs a model directory with
        a tokenizer and preprocessor, e.g. the node rig's tiny model).

The one liberty taken: the CPU build cannot pick an FP8 matrix-multiply kernel on CPUs without
AMX, and does so while creating the layer. The kernel choice is stubbed; the weight tensors,
their shapes and dtypes are created by vLLM's own FP8 method.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter

PREFIX = "RESULT "


def _engine_args(model_dir: str, flags: list[str]):
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = make_arg_parser(FlexibleArgumentParser())
    return AsyncEngineArgs.from_cli_args(parser.parse_args(["--model", model_dir, *flags]))


def model_accounting(
    model_dir: str, tp: int = 1, encoder_mode: str = "weights", rank: int = 0, port: int = 0
) -> dict:
    """One tensor-parallel rank's view of the model (``tp=1``: the whole model)."""
    import torch
    import vllm.model_executor.layers.quantization.fp8 as fp8
    from vllm.config import set_current_vllm_config
    from vllm.distributed import (
        destroy_distributed_environment,
        destroy_model_parallel,
        init_distributed_environment,
        initialize_model_parallel,
    )
    from vllm.model_executor.model_loader.utils import initialize_model
    from vllm.usage.usage_lib import UsageContext
    from vllm.utils.network_utils import get_open_port
    from vllm.utils.torch_utils import set_default_torch_dtype

    fp8.init_fp8_linear_kernel = lambda **_: object()  # see the module docstring
    flags = ["--skip-tokenizer-init", "--dtype", "bfloat16", "--max-model-len", "4096"]
    flags += ["--tensor-parallel-size", str(tp), "--mm-encoder-tp-mode", encoder_mode]
    config = _engine_args(model_dir, flags).create_engine_config(UsageContext.OPENAI_API_SERVER)
    port = port or get_open_port()
    os.environ["VLLM_DIST_IDENT"] = str(port)  # what vLLM's CPU worker sets before joining
    with set_current_vllm_config(config):
        init_distributed_environment(
            world_size=tp,
            rank=rank,
            distributed_init_method=f"tcp://127.0.0.1:{port}",
            local_rank=rank,
            backend="gloo",
        )
        initialize_model_parallel(tp, 1)
    with (
        set_current_vllm_config(config),
        set_default_torch_dtype(config.model_config.dtype),
        torch.device("meta"),
    ):
        model = initialize_model(config)
    kv_bytes_per_token = 0
    attention_layers = config.compilation_config.static_forward_context
    for layer in attention_layers.values():
        spec = layer.get_kv_cache_spec(config)
        kv_bytes_per_token += spec.page_size_bytes // spec.block_size
    destroy_model_parallel()  # releases the CPU communicator's shared memory
    destroy_distributed_environment()

    bytes_by_dtype: Counter[str] = Counter()
    for param in model.parameters():
        dtype = str(param.dtype).removeprefix("torch.")
        bytes_by_dtype[dtype] += param.numel() * param.element_size()
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "weight_bytes": sum(bytes_by_dtype.values()),
        "weight_bytes_by_dtype": dict(bytes_by_dtype),
        "quantization": config.model_config.quantization,
        "attention_layers": len(attention_layers),
        "kv_bytes_per_token": kv_bytes_per_token,
        "prefix_caching_default": config.model_config.is_prefix_caching_supported,
        "chunked_prefill_default": config.model_config.is_chunked_prefill_supported,
    }


def sharded_accounting(model_dir: str, tp: int, encoder_mode: str) -> dict:
    """Rank 0's view under tensor parallelism: one process per rank, joined over gloo."""
    import subprocess

    from vllm.utils.network_utils import get_open_port

    port = str(get_open_port())
    ranks = [
        subprocess.Popen(
            [sys.executable, __file__, "rank", model_dir, str(tp), encoder_mode, str(r), port],
            stdout=subprocess.PIPE,
            text=True,
        )
        for r in range(tp)
    ]
    results = []
    for process in ranks:
        out, _ = process.communicate(timeout=600)
        if process.returncode != 0:
            raise SystemExit(f"rank process failed with exit code {process.returncode}")
        results.append(_result(out))
    if any(r["weight_bytes"] != results[0]["weight_bytes"] for r in results):
        raise SystemExit(f"ranks disagree: {[r['weight_bytes'] for r in results]}")
    return results[0]


def _result(stdout: str) -> dict:
    return json.loads(next(line for line in stdout.splitlines() if line.startswith(PREFIX))[7:])


def flag_sets(model_dir: str, sets: list[list[str]]) -> list[dict]:
    from vllm.usage.usage_lib import UsageContext

    results = []
    for flags in sets:
        try:
            args = _engine_args(model_dir, ["--skip-tokenizer-init", *flags])
            config = args.create_engine_config(UsageContext.OPENAI_API_SERVER)
        except (Exception, SystemExit) as exc:  # argparse exits on an unknown flag
            results.append({"flags": flags, "error": f"{type(exc).__name__}: {exc}"})
            continue
        mm = config.model_config.multimodal_config
        spec = config.speculative_config
        results.append(
            {
                "flags": flags,
                "tensor_parallel_size": config.parallel_config.tensor_parallel_size,
                "mm_encoder_tp_mode": mm.mm_encoder_tp_mode,
                "max_model_len": config.model_config.max_model_len,
                "gpu_memory_utilization": config.cache_config.gpu_memory_utilization,
                "kv_cache_memory_bytes": config.cache_config.kv_cache_memory_bytes,
                "kv_cache_dtype": config.cache_config.cache_dtype,
                "max_num_seqs": config.scheduler_config.max_num_seqs,
                "max_num_batched_tokens": config.scheduler_config.max_num_batched_tokens,
                "enable_prefix_caching": config.cache_config.enable_prefix_caching,
                "enable_chunked_prefill": config.scheduler_config.enable_chunked_prefill,
                "video_limit": mm.get_limit_per_prompt("video"),
                "image_limit": mm.get_limit_per_prompt("image"),
                "mm_processor_kwargs": mm.mm_processor_kwargs,
                "speculative": spec and _speculative(config),
            }
        )
    return results


def _speculative(config) -> dict:
    """The speculative method, and the model classes vLLM resolves for the draft and target."""
    from vllm.model_executor.models import ModelRegistry
    from vllm.model_executor.models.interfaces import supports_eagle3

    spec = config.speculative_config
    draft = spec.draft_model_config
    draft_cls, _ = ModelRegistry.resolve_model_cls(draft.architectures, draft)
    target_cls, _ = ModelRegistry.resolve_model_cls(
        config.model_config.architectures, config.model_config
    )
    return {
        "method": spec.method,
        "num_speculative_tokens": spec.num_speculative_tokens,
        "draft_model": draft.model,
        "draft_class": draft_cls.__name__,
        "target_class": target_cls.__name__,
        "target_supports_eagle3": supports_eagle3(target_cls),
    }


def image_tokens(model_dir: str, flags: list[str], sizes: list[str]) -> dict:
    from vllm.multimodal import MULTIMODAL_REGISTRY

    model_config = _engine_args(model_dir, flags).create_model_config()
    info = MULTIMODAL_REGISTRY.create_processor(model_config).info
    processor = info.get_image_processor()
    per_size = {}
    for size in sizes:
        width, height = (int(n) for n in size.split("x"))
        per_size[size] = info.get_num_image_tokens(
            image_width=width, image_height=height, image_processor=processor, mm_kwargs={}
        )
    return {"max_image_tokens": info.get_max_image_tokens(), "image_tokens": per_size}


def image_cap(model_dir: str, kwargs_json: str, size: str) -> dict:
    """What vLLM's Qwen3-VL code does with ``--mm-processor-kwargs KWARGS``: the image budget it
    profiles with (``get_max_image_tokens``), the visual tokens a real WxH image gets through
    the whole multimodal processor (resize, HF processor, prompt update), and every warning
    about the form, e.g. transformers' FutureWarning for ``max_pixels``."""
    import warnings

    from PIL import Image
    from vllm.multimodal import MULTIMODAL_REGISTRY

    flags = ["--mm-processor-kwargs", kwargs_json] if kwargs_json != "null" else []
    model_config = _engine_args(model_dir, flags).create_model_config()
    processor = MULTIMODAL_REGISTRY.create_processor(model_config)
    width, height = (int(n) for n in size.split("x"))
    prompt = "<|vision_start|><|image_pad|><|vision_end|>Describe it."
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        budget = processor.info.get_max_image_tokens()
        items = processor.info.parse_mm_data({"image": [Image.new("RGB", (width, height))]})
        result = processor(prompt, items)
    image_token = model_config.hf_config.image_token_id
    return {
        "max_image_tokens": budget,
        "image_tokens": sum(1 for t in result["prompt_token_ids"] if t == image_token),
        "warnings": sorted({f"{w.category.__name__}: {w.message}" for w in caught}),
    }


def main(argv: list[str]) -> None:
    command, model_dir, *rest = argv
    if command == "model" and rest:
        result = sharded_accounting(model_dir, int(rest[0]), rest[1])
    elif command == "model":
        result = model_accounting(model_dir)
    elif command == "rank":
        tp, encoder_mode, rank, port = rest
        result = model_accounting(model_dir, int(tp), encoder_mode, int(rank), int(port))
    elif command == "flags":
        result = flag_sets(model_dir, json.loads(rest[0]))
    elif command == "image-cap":
        result = image_cap(model_dir, rest[0], rest[1])
    elif command == "images":
        result = image_tokens(model_dir, json.loads(rest[0]), rest[1:])
    else:
        raise SystemExit(f"unknown command {command!r}")
    print(PREFIX + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
