"""The serving plan of every supported instance type next to the old fixed flags.

The deployment this toolkit replaces ran every type with ``--max-model-len 1024
--gpu-memory-utilization 0.95`` on one GPU, with vLLM's other defaults (2,048-token prefill chunks,
no cap on image size, video on). For each type this prints, for the plan and for that default:
max model length, KV tokens, full-length requests served at once, the largest image one request
holds (with a typical prompt and answer), and whether a 1080p image fits at full detail.

    .venv/bin/python bench/serving_plan.py [--json]

Exits non-zero if the plan leaves any type unable to take a 1080p image.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from qwen3vl_aws.aws.catalog import instance_types
from qwen3vl_aws.serving.gpu_specs import catalog_gpu
from qwen3vl_aws.serving.model_profile import BF16_MODEL_ID, load_profile
from qwen3vl_aws.serving.planner import (
    DEFAULT_MAX_NUM_SEQS,
    FULL_HD,
    Budget,
    image_fits,
    largest_image_tokens,
    plan_serving,
)

OLD_MAX_MODEL_LEN = 1024
OLD_UTILIZATION = 0.95
OLD_BATCHED_TOKENS = 2048  # vLLM's default for its API server on GPUs under 70 GiB
TABLE_WIDTH = 110


def old_default(instance_type: str) -> dict:
    """The fixed-flags deployment, worked out with the planner's own arithmetic."""
    profile = load_profile(BF16_MODEL_ID)
    budget = Budget(
        gpu=catalog_gpu(instance_type),
        profile=profile,
        tp=1,
        utilization=OLD_UTILIZATION,
        num_seqs=DEFAULT_MAX_NUM_SEQS,
        batched_tokens=OLD_BATCHED_TOKENS,
        video=True,  # nothing capped the vision input, so vLLM profiles the largest one
    )
    kv_tokens = budget.kv_tokens(OLD_MAX_MODEL_LEN)
    image = largest_image_tokens(profile, OLD_MAX_MODEL_LEN)
    return {
        "max_model_len": OLD_MAX_MODEL_LEN,
        "kv_tokens": kv_tokens,
        "concurrency": kv_tokens // OLD_MAX_MODEL_LEN,
        "largest_image_pixels": image * profile.pixels_per_token,
        "fits_1080p": image_fits(profile, OLD_MAX_MODEL_LEN, *FULL_HD),
    }


def planned(instance_type: str) -> dict:
    plan = plan_serving(instance_type)
    return {
        "model": plan.model_id,
        "tensor_parallel_size": plan.tensor_parallel_size,
        "max_model_len": plan.max_model_len,
        "kv_tokens": plan.kv_tokens,
        "concurrency": plan.concurrency,
        "largest_image_pixels": plan.largest_image_pixels,
        "fits_1080p": image_fits(load_profile(plan.model_id), plan.max_model_len, *FULL_HD),
    }


def rows() -> list[dict]:
    return [
        {
            "instance_type": name,
            "gpus": f"{row.gpu_count} x {row.gpu_name}",
            "plan": planned(name),
            "default": old_default(name),
        }
        for name, row in instance_types().items()
    ]


def _image(pixels: int) -> str:
    side = math.isqrt(pixels)
    return f"{pixels / 1e6:.2f} MP (~{side}x{side})"


def print_table(data: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"Serving plan vs --max-model-len {OLD_MAX_MODEL_LEN} "
        f"--gpu-memory-utilization {OLD_UTILIZATION}",
        title_justify="left",
    )
    for column in ("type", "GPUs", "TP", "max len", "KV tokens", "full-length", "largest image"):
        table.add_column(column, justify="right" if column not in ("type", "GPUs") else "left")
    table.add_column("1080p")
    for row in data:
        for label, side in (("plan", row["plan"]), ("default", row["default"])):
            table.add_row(
                row["instance_type"] if label == "plan" else "  (default)",
                row["gpus"] if label == "plan" else "",
                str(side.get("tensor_parallel_size", 1)),
                f"{side['max_model_len']:,}",
                f"{side['kv_tokens']:,}",
                str(side["concurrency"]),
                _image(side["largest_image_pixels"]),
                "yes" if side["fits_1080p"] else "no",
                end_section=label == "default",
            )
    console = Console(highlight=False)
    console.width = max(console.width, TABLE_WIDTH)  # readable in CI logs and narrow terminals
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    data = rows()
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print_table(data)
    missing = [row["instance_type"] for row in data if not row["plan"]["fits_1080p"]]
    if missing:
        print(f"1080p does not fit on: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
