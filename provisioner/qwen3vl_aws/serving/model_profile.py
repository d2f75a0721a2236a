"""What the serving planner knows about a model: its architecture, read from the shipped config.

Profiles live in ``data/models/<name>/`` (``config.json`` + ``preprocessor_config.json`` of the
checkpoint). From them this module lists every weight tensor with its shape and how vLLM stores
and shards it; the planner turns that into bytes. No weights are ever needed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache

from ..errors import UsageError
from ..paths import data_file

BF16_MODEL_ID = "Qwen/Qwen3-VL-8B-Instruct"
FP8_MODEL_ID = "Qwen/Qwen3-VL-8B-Instruct-FP8"
MODEL_IDS = (BF16_MODEL_ID, FP8_MODEL_ID)

#: The EAGLE3 draft the old deployment's SGLang mode ran (``apply --speculative eagle3``).
EAGLE3_DRAFT_ID = "taobao-mnn/Qwen3-VL-8B-Instruct-Eagle3"


def eagle3_draft_parameters(text: TextConfig) -> int:
    """Parameters of an EAGLE3 draft head for this target, on the safe side.

    The draft's own config is not shipped here, so this counts the EAGLE3 head as SpecForge
    builds it for a target of this size (``LlamaForCausalLMEagle3``, which vLLM maps to
    ``Eagle3LlamaForCausalLM``): ``fc`` fusing three target layers' hidden states, one decoder
    layer whose attention reads the embedding and the hidden state side by side (2 x hidden),
    the MLP, and an ``lm_head`` counted over the whole target vocabulary (drafts usually use a
    smaller one). The embedding is the target's, shared.
    """
    h, i = text.hidden_size, text.intermediate_size
    q, kv = text.num_heads * text.head_dim, text.num_kv_heads * text.head_dim
    fc = 3 * h * h
    attention = (q + 2 * kv) * 2 * h + h * q
    mlp = 3 * h * i
    norms = 4 * h
    return fc + attention + mlp + norms + text.vocab_size * h


@dataclass(frozen=True)
class TextConfig:
    """The language model (Qwen3 decoder with per-head q/k RMSNorm)."""

    num_layers: int
    hidden_size: int
    intermediate_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    tie_word_embeddings: bool
    max_position_embeddings: int


@dataclass(frozen=True)
class VisionConfig:
    """The vision tower (ViT with 2x2 patch merging and DeepStack mergers)."""

    depth: int
    hidden_size: int
    intermediate_size: int
    out_hidden_size: int
    patch_size: int
    spatial_merge_size: int
    temporal_patch_size: int
    in_channels: int
    num_position_embeddings: int
    num_deepstack: int


@dataclass(frozen=True)
class Weight:
    """One weight tensor as vLLM holds it.

    ``quantizable``: a language-model linear layer, the ones an FP8 checkpoint stores in FP8.
    ``sharded``: split across tensor-parallel ranks (vision weights too, unless the encoder runs
    data-parallel, see the planner).
    """

    name: str
    shape: tuple[int, ...]
    vision: bool = False
    quantizable: bool = False
    sharded: bool = True

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class ModelProfile:
    """Architecture, precision and image limits of one model id."""

    model_id: str
    text: TextConfig
    vision: VisionConfig
    fp8_block: tuple[int, int] | None  # FP8 weight block (rows, cols), None for BF16
    min_pixels: int
    max_pixels: int

    @property
    def precision(self) -> str:
        return "fp8" if self.fp8_block else "bf16"

    @property
    def pixels_per_token(self) -> int:
        """Pixels one visual token covers after merging (32x32 for Qwen3-VL)."""
        side = self.vision.patch_size * self.vision.spatial_merge_size
        return side * side

    @property
    def max_image_tokens(self) -> int:
        """Visual tokens of the largest image the preprocessor lets through."""
        return self.max_pixels // self.pixels_per_token

    def weights(self) -> list[Weight]:
        """Every weight tensor (shapes as vLLM builds them, fused projections kept apart)."""
        return _text_weights(self.text, fp8=bool(self.fp8_block)) + _vision_weights(self.vision)


def _text_weights(t: TextConfig, fp8: bool) -> list[Weight]:
    q, kv = t.num_heads * t.head_dim, t.num_kv_heads * t.head_dim
    h, i = t.hidden_size, t.intermediate_size
    per_layer = [
        Weight("q_proj", (q, h), quantizable=True),
        Weight("k_proj", (kv, h), quantizable=True),
        Weight("v_proj", (kv, h), quantizable=True),
        Weight("o_proj", (h, q), quantizable=True),
        Weight("gate_proj", (i, h), quantizable=True),
        Weight("up_proj", (i, h), quantizable=True),
        Weight("down_proj", (h, i), quantizable=True),
        Weight("q_norm", (t.head_dim,), sharded=False),
        Weight("k_norm", (t.head_dim,), sharded=False),
        Weight("input_layernorm", (h,), sharded=False),
        Weight("post_attention_layernorm", (h,), sharded=False),
    ]
    if fp8:  # an FP8 checkpoint's attention also carries q/k/v/prob scales for an FP8 KV cache
        per_layer.append(Weight("attn.scales", (4,), sharded=False))
    weights = [Weight("embed_tokens", (t.vocab_size, h))]
    weights += [w for _ in range(t.num_layers) for w in per_layer]
    weights.append(Weight("norm", (h,), sharded=False))
    if not t.tie_word_embeddings:
        weights.append(Weight("lm_head", (t.vocab_size, h)))
    return weights


def _vision_weights(v: VisionConfig) -> list[Weight]:
    h, i = v.hidden_size, v.intermediate_size
    merged = h * v.spatial_merge_size**2

    def vis(name: str, shape: tuple[int, ...], sharded: bool = True) -> Weight:
        return Weight(name, shape, vision=True, sharded=sharded)

    def merger(name: str, norm_size: int) -> list[Weight]:
        return [
            vis(f"{name}.norm.weight", (norm_size,), sharded=False),
            vis(f"{name}.norm.bias", (norm_size,), sharded=False),
            vis(f"{name}.linear_fc1.weight", (merged, merged)),
            vis(f"{name}.linear_fc1.bias", (merged,)),
            vis(f"{name}.linear_fc2.weight", (v.out_hidden_size, merged)),
            vis(f"{name}.linear_fc2.bias", (v.out_hidden_size,), sharded=False),
        ]

    block = [
        vis("norm1.weight", (h,), sharded=False),
        vis("norm1.bias", (h,), sharded=False),
        vis("norm2.weight", (h,), sharded=False),
        vis("norm2.bias", (h,), sharded=False),
        vis("attn.qkv.weight", (3 * h, h)),
        vis("attn.qkv.bias", (3 * h,)),
        vis("attn.proj.weight", (h, h)),
        vis("attn.proj.bias", (h,), sharded=False),
        vis("mlp.linear_fc1.weight", (i, h)),
        vis("mlp.linear_fc1.bias", (i,)),
        vis("mlp.linear_fc2.weight", (h, i)),
        vis("mlp.linear_fc2.bias", (h,), sharded=False),
    ]
    patch = v.in_channels * v.temporal_patch_size * v.patch_size**2
    weights = [
        vis("patch_embed.proj.weight", (h, patch), sharded=False),
        vis("patch_embed.proj.bias", (h,), sharded=False),
        vis("pos_embed", (v.num_position_embeddings, h), sharded=False),
    ]
    weights += [w for _ in range(v.depth) for w in block]
    weights += merger("merger", h)
    for n in range(v.num_deepstack):
        weights += merger(f"deepstack_merger_list.{n}", merged)
    return weights


def profile_from_configs(model_id: str, config: dict, preprocessor: dict) -> ModelProfile:
    """Build a profile from the checkpoint's ``config.json`` and ``preprocessor_config.json``."""
    t, v = config["text_config"], config["vision_config"]
    quant = config.get("quantization_config") or {}
    if quant and quant.get("quant_method") != "fp8":
        raise UsageError(f"{model_id}: unsupported quantization {quant.get('quant_method')!r}.")
    size = preprocessor["size"]
    return ModelProfile(
        model_id=model_id,
        text=TextConfig(
            num_layers=t["num_hidden_layers"],
            hidden_size=t["hidden_size"],
            intermediate_size=t["intermediate_size"],
            num_heads=t["num_attention_heads"],
            num_kv_heads=t["num_key_value_heads"],
            head_dim=t.get("head_dim") or t["hidden_size"] // t["num_attention_heads"],
            vocab_size=t["vocab_size"],
            tie_word_embeddings=config.get("tie_word_embeddings", False),
            max_position_embeddings=t["max_position_embeddings"],
        ),
        vision=VisionConfig(
            depth=v["depth"],
            hidden_size=v["hidden_size"],
            intermediate_size=v["intermediate_size"],
            out_hidden_size=v["out_hidden_size"],
            patch_size=v["patch_size"],
            spatial_merge_size=v["spatial_merge_size"],
            temporal_patch_size=v["temporal_patch_size"],
            in_channels=v.get("in_channels", 3),
            num_position_embeddings=v["num_position_embeddings"],
            num_deepstack=len(v.get("deepstack_visual_indexes", [])),
        ),
        fp8_block=tuple(quant["weight_block_size"]) if quant else None,
        min_pixels=size["shortest_edge"],
        max_pixels=size["longest_edge"],
    )


def profile_dir_name(model_id: str) -> str:
    """``Qwen/Qwen3-VL-8B-Instruct`` -> ``Qwen3-VL-8B-Instruct`` (the data directory)."""
    return model_id.rsplit("/", 1)[-1]


@cache
def load_profile(model_id: str) -> ModelProfile:
    """The shipped profile of ``model_id`` (one of :data:`MODEL_IDS`)."""
    if model_id not in MODEL_IDS:
        raise UsageError(f"Unknown model {model_id!r}: choose one of {', '.join(MODEL_IDS)}.")
    directory = data_file("models") / profile_dir_name(model_id)
    config = json.loads((directory / "config.json").read_text())
    preprocessor = json.loads((directory / "preprocessor_config.json").read_text())
    return profile_from_configs(model_id, config, preprocessor)
