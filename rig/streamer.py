"""The Run:ai Model Streamer for the rig's CPU vLLM: serve a model straight from (emulated) S3.

The streamer lives in its own directory (``scripts/setup-runai-streamer.sh``), put on the vLLM
server's PYTHONPATH, so the shared vLLM venv stays as its setup script made it. vLLM pulls the
config and tokenizer of an ``s3://`` model into its assets cache and streams the safetensors
with ``--load-format runai_streamer``; the S3 endpoint comes from ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import os
from pathlib import Path

from .vllm import REPO_ROOT, VllmRigError

RUNAI_DIR = Path(os.environ.get("QWEN3VL_RUNAI_DIR", REPO_ROOT / ".venv-runai"))
SETUP_SCRIPT = REPO_ROOT / "scripts" / "setup-runai-streamer.sh"
#: What the instance passes too: the streamer's loader flags (checked by vLLM's own parser here).
STREAM_FLAGS = ("--load-format", "runai_streamer")


def loader_flags(concurrency: int) -> list[str]:
    """vLLM flags to stream safetensors from S3 with ``concurrency`` parallel readers."""
    return [*STREAM_FLAGS, "--model-loader-extra-config", f'{{"concurrency":{concurrency}}}']


def streamer_pythonpath(pythonpath: str | None) -> str:
    """``pythonpath`` with the streamer's directory in front (the instance has it in the engine
    venv itself)."""
    if not (RUNAI_DIR / ".ready").is_file():
        raise VllmRigError(
            f"the Run:ai streamer is missing from {RUNAI_DIR}; install it with "
            f"`{SETUP_SCRIPT.relative_to(REPO_ROOT)}` (needs the vLLM venv)"
        )
    return os.pathsep.join(p for p in (str(RUNAI_DIR), pythonpath) if p)


def streamer_env(
    endpoint: str, assets_dir: Path, *, access_key: str = "testing", secret_key: str = "testing"
) -> dict[str, str]:
    """Environment for a vLLM server that streams from the S3 at ``endpoint``."""
    return {
        "PYTHONPATH": streamer_pythonpath(os.environ.get("PYTHONPATH")),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": access_key,
        "AWS_SECRET_ACCESS_KEY": secret_key,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        # Where vLLM puts the config and tokenizer it pulls from S3 (one per test, not ~/.cache).
        "VLLM_ASSETS_CACHE": str(assets_dir),
    }
