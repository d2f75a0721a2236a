"""The image abuse caps the plan derives: decoded pixels per image and images per prompt."""

from __future__ import annotations

import pytest
from qwen3vl_aws.aws.catalog import instance_types
from qwen3vl_aws.serving.media_limits import (
    DECODE_SIDE_FACTOR,
    DECODED_BYTES_PER_PIXEL,
    REQUEST_DECODE_BYTES,
)
from qwen3vl_aws.serving.model_profile import load_profile
from qwen3vl_aws.serving.planner import FULL_HD, plan_serving

PLANS = [plan_serving(t) for t in sorted(instance_types())] + [
    plan_serving("g5.xlarge", max_model_len=2048),
    plan_serving("g6e.12xlarge", video=True),
]


@pytest.mark.parametrize("plan", PLANS, ids=lambda p: f"{p.instance_type}-{p.max_model_len}")
def test_the_pixel_cap_admits_everything_the_plan_scales_down(plan):
    profile = load_profile(plan.model_id)
    # Twice the side of the largest image the plan serves still decodes (and is scaled down) ...
    assert plan.max_decoded_pixels >= DECODE_SIDE_FACTOR**2 * plan.largest_image_pixels
    # ... and so does anything up to the model's own maximum, e.g. a 4K screenshot.
    assert plan.max_decoded_pixels >= profile.max_pixels >= 2 * FULL_HD[0] * 2 * FULL_HD[1]
    # Never above vLLM's own default, which the instance would otherwise fall back to.
    assert plan.max_decoded_pixels < 178_956_970


@pytest.mark.parametrize("plan", PLANS, ids=lambda p: f"{p.instance_type}-{p.max_model_len}")
def test_images_per_prompt_bound_the_memory_one_request_decodes(plan):
    profile = load_profile(plan.model_id)
    images = plan.max_images_per_prompt
    assert images >= 1
    decoded = images * plan.max_decoded_pixels * DECODED_BYTES_PER_PIXEL
    assert images == 1 or decoded <= REQUEST_DECODE_BYTES
    # Not more images than the smallest ones the preprocessor makes fit the request.
    smallest = profile.min_pixels // profile.pixels_per_token
    assert images == 1 or images * smallest <= plan.largest_image_tokens
    # Room for one more would break one of the two bounds.
    more = (images + 1) * plan.max_decoded_pixels * DECODED_BYTES_PER_PIXEL
    assert more > REQUEST_DECODE_BYTES or (images + 1) * smallest > plan.largest_image_tokens


def test_the_caps_are_in_the_flags_and_the_explanation():
    plan = plan_serving("g5.xlarge")
    flags = plan.flags
    assert flags[flags.index("--limit-mm-per-prompt.image") + 1] == str(plan.max_images_per_prompt)
    line = next(x for x in plan.explanation if "VLLM_MAX_IMAGE_PIXELS" in x)
    assert f"{plan.max_decoded_pixels:,}" in line and "--limit-mm-per-prompt.image" in line
