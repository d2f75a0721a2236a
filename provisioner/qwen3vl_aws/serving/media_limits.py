"""How much image one request may send: a cap on decoded pixels and on images per prompt.

The engine decodes every image in full before the plan's ``max_pixels`` resize, so a small
compressed image (a 420 KB PNG of 12000x12000) can cost hundreds of MB of RAM each, and many of
them in one request or several requests at once can exhaust the instance. These caps bound that
memory; both are derived from the serving plan so that everything the plan serves still fits.
"""

from __future__ import annotations

from .model_profile import ModelProfile

GIB = 1024**3

#: Images up to twice the side of the largest image the plan serves are accepted (and scaled
#: down to it); larger ones are refused before they are decoded.
DECODE_SIDE_FACTOR = 2
#: Decoded pixels of one request's images together, at the 3 bytes per pixel (RGB) vLLM keeps.
REQUEST_DECODE_BYTES = GIB
DECODED_BYTES_PER_PIXEL = 3


def max_decoded_pixels(profile: ModelProfile, largest_image_pixels: int) -> int:
    """Pixels an image may decode to (vLLM's ``VLLM_MAX_IMAGE_PIXELS``): twice the side of the
    plan's largest image, and never less than the model's own maximum (4096x4096 for Qwen3-VL),
    so 4K screenshots and 12-16 MP photos always pass."""
    return max(DECODE_SIDE_FACTOR**2 * largest_image_pixels, profile.max_pixels)


def max_images_per_prompt(
    profile: ModelProfile, largest_image_tokens: int, decoded_pixel_cap: int
) -> int:
    """Images one prompt may carry (``--limit-mm-per-prompt.image``): as many of the largest
    allowed decode as fit :data:`REQUEST_DECODE_BYTES`, and no more than the smallest images
    the preprocessor makes fit the request's image budget; at least one."""
    by_memory = REQUEST_DECODE_BYTES // (decoded_pixel_cap * DECODED_BYTES_PER_PIXEL)
    smallest_image_tokens = profile.min_pixels // profile.pixels_per_token
    by_context = largest_image_tokens // smallest_image_tokens
    return max(1, min(by_memory, by_context))
