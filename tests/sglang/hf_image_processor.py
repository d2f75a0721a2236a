"""Call the transformers image processor the way SGLang's Qwen-VL processor does (runs with a
python that has transformers, e.g. .venv-vllm's):

    python tests/sglang/hf_image_processor.py PREPROCESSOR_DIR IMAGE_CONFIG_JSON WxH

SGLang 0.5.23 hands ``--mm-process-config``'s ``image`` mapping to the image processor as
keyword arguments (``BaseMultimodalProcessor.process_mm_data`` puts it in ``images_kwargs``;
``QwenVLImageProcessor.prepare_artifact_batch`` calls ``processor.image_processor(images=...,
**image_config)``). Prints ``RESULT {"image_tokens": N, "warnings": [...]}``.
"""

from __future__ import annotations

import json
import sys
import warnings


def main(directory: str, image_config: str, size: str) -> dict:
    from PIL import Image
    from transformers import AutoImageProcessor

    processor = AutoImageProcessor.from_pretrained(directory)
    width, height = (int(n) for n in size.split("x"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = processor(
            images=[Image.new("RGB", (width, height))],
            return_tensors="pt",
            **json.loads(image_config),
        )
    (grid,) = out["image_grid_thw"].tolist()
    return {
        "image_tokens": grid[0] * grid[1] * grid[2] // processor.merge_size**2,
        "warnings": sorted({f"{w.category.__name__}: {w.message}" for w in caught}),
    }


if __name__ == "__main__":
    print("RESULT " + json.dumps(main(*sys.argv[1:])))
