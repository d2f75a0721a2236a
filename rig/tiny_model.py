"""Build a tiny, randomly initialised Qwen3-VL model directory that vLLM can serve on a CPU.

The config is the real Qwen3-VL-8B-Instruct one (the planner's model profile) scaled down, so
vLLM takes the same code path (Qwen3VLForConditionalGeneration, interleaved M-RoPE, DeepStack, the
Qwen2-VL image processor) as on the instance. The tokenizer is a byte-level BPE trained here with
the `tokenizers` library on a fixed corpus, plus the Qwen special tokens; nothing is downloaded.
The output is deterministic for a given seed.

Needs torch and transformers, so it runs with the vLLM venv's python:
    .venv-vllm/bin/python rig/tiny_model.py OUT_DIR [--seed N]
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# The public checkpoint's config (the copy the planner ships; the vLLM venv lacks qwen3vl_aws).
REFERENCE_DIR = HERE.parent / "provisioner/qwen3vl_aws/data/models/Qwen3-VL-8B-Instruct"
CHAT_TEMPLATE = HERE / "qwen3_vl_chat_template.jinja"

# Qwen's added tokens in their upstream order; True marks the special ones (skipped on decode).
QWEN_ADDED_TOKENS: tuple[tuple[str, bool], ...] = (
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True),
    ("<|box_start|>", True),
    ("<|box_end|>", True),
    ("<|quad_start|>", True),
    ("<|quad_end|>", True),
    ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|vision_pad|>", True),
    ("<|image_pad|>", True),
    ("<|video_pad|>", True),
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False),
    ("<|repo_name|>", False),
    ("<|file_sep|>", False),
    ("<tool_response>", False),
    ("</tool_response>", False),
    ("<think>", False),
    ("</think>", False),
)

# Qwen2/Qwen3's pre-tokenizer split pattern (before the byte-level mapping).
QWEN_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

BPE_VOCAB_SIZE = 400
CORPUS = (
    "You are a helpful assistant. Describe this image in one sentence.",
    "The quick brown fox jumps over the lazy dog while the cat watches from the window.",
    "What is in the picture? A red square on a white background, and a blue circle.",
    "Say hello to the user and answer the question about the image briefly.",
    "Qwen3-VL is a vision-language model served by vLLM behind an nginx gateway with TLS.",
    'def main() -> None:\n    print("hello, world")\n',
    '{"model": "qwen3-vl", "messages": [{"role": "user", "content": "hi"}]}',
    "0123456789 + - * / = ( ) [ ] { } < > , . ; : ! ? ' \" # @ % & _ | ~",
)

# Scaled-down text/vision dimensions. The CPU attention kernel only supports some head sizes
# (32, 64, 80, ...): head_dim 32. The M-RoPE sections must sum to head_dim / 2.
TEXT_OVERRIDES: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 32,
}
MROPE_SECTION = [6, 5, 5]
VISION_OVERRIDES: dict[str, Any] = {
    "depth": 2,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_heads": 2,
    "out_hidden_size": TEXT_OVERRIDES["hidden_size"],
    "deepstack_visual_indexes": [1],
}


def build_tokenizer() -> Any:
    """A byte-level BPE with Qwen's normalizer, pre-tokenizer and added tokens."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, trainers
    from tokenizers import pre_tokenizers as pre

    tokenizer = Tokenizer(models.BPE(byte_fallback=False))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre.Sequence(
        [
            pre.Split(Regex(QWEN_SPLIT_PATTERN), behavior="isolated", invert=False),
            pre.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=BPE_VOCAB_SIZE,
        initial_alphabet=pre.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS, trainer=trainer)
    tokenizer.add_tokens(
        [AddedToken(text, special=special, normalized=False) for text, special in QWEN_ADDED_TOKENS]
    )
    return tokenizer


def tiny_config(reference: dict[str, Any], tokenizer: Any) -> dict[str, Any]:
    """The reference config with small dimensions and this tokenizer's token ids."""
    ids = {text: tokenizer.token_to_id(text) for text, _ in QWEN_ADDED_TOKENS}
    config = copy.deepcopy(reference)
    text = config["text_config"]
    text.update(TEXT_OVERRIDES)
    text["rope_scaling"]["mrope_section"] = MROPE_SECTION
    # Round up like the real vocabulary (151936 > len(tokenizer)) so sizes are kernel friendly.
    text["vocab_size"] = -(-tokenizer.get_vocab_size() // 64) * 64
    text["bos_token_id"] = ids["<|endoftext|>"]
    text["eos_token_id"] = ids["<|im_end|>"]
    config["vision_config"].update(VISION_OVERRIDES)
    config["image_token_id"] = ids["<|image_pad|>"]
    config["video_token_id"] = ids["<|video_pad|>"]
    config["vision_start_token_id"] = ids["<|vision_start|>"]
    config["vision_end_token_id"] = ids["<|vision_end|>"]
    return config


def tokenizer_config(tokenizer: Any, chat_template: str) -> dict[str, Any]:
    """tokenizer_config.json in the shape of the real model's."""
    added = {
        str(tokenizer.token_to_id(text)): {
            "content": text,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": special,
        }
        for text, special in QWEN_ADDED_TOKENS
    }
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "additional_special_tokens": [
            text for text, special in QWEN_ADDED_TOKENS if special and text != "<|endoftext|>"
        ],
        "bos_token": None,
        "chat_template": chat_template,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 262144,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }


def generation_config(config: dict[str, Any]) -> dict[str, Any]:
    """generation_config.json with the real model's sampling defaults."""
    text = config["text_config"]
    return {
        "bos_token_id": text["bos_token_id"],
        "pad_token_id": text["bos_token_id"],
        "do_sample": True,
        "eos_token_id": [text["eos_token_id"], text["bos_token_id"]],
        "top_k": 20,
        "top_p": 0.8,
        "temperature": 0.7,
    }


def write_weights(out_dir: Path, config: dict[str, Any], seed: int) -> None:
    """Randomly initialised weights (transformers' own init, seeded) as one safetensors file."""
    import torch
    from safetensors.torch import save_file
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(Qwen3VLConfig(**config))
    dtype = getattr(torch, config["text_config"]["dtype"])
    tensors = {name: t.detach().to(dtype).contiguous() for name, t in model.state_dict().items()}
    save_file(tensors, str(out_dir / "model.safetensors"), metadata={"format": "pt"})


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def build_tiny_model(out_dir: Path, *, seed: int = 0) -> Path:
    """Write a complete model directory (config, weights, tokenizer, processor) to out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    chat_template = CHAT_TEMPLATE.read_text()
    tokenizer = build_tokenizer()
    config = tiny_config(json.loads((REFERENCE_DIR / "config.json").read_text()), tokenizer)

    tokenizer.save(str(out_dir / "tokenizer.json"))
    tokenizer.model.save(str(out_dir))  # vocab.json and merges.txt, as the real model ships
    write_json(out_dir / "tokenizer_config.json", tokenizer_config(tokenizer, chat_template))
    write_json(out_dir / "chat_template.json", {"chat_template": chat_template})
    shutil.copyfile(
        REFERENCE_DIR / "preprocessor_config.json", out_dir / "preprocessor_config.json"
    )
    write_json(out_dir / "config.json", config)
    write_json(out_dir / "generation_config.json", generation_config(config))
    write_weights(out_dir, config, seed)
    return out_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(build_tiny_model(args.out_dir, seed=args.seed))


if __name__ == "__main__":
    main()
