"""The S3 model cache: one bucket per account and region, shared by every deployment there.

The bucket is its own Terraform root (``terraform/model-cache``) with its own state under the
state home (``_model-cache/<region>/``), because it outlives any one deployment: destroying a
deployment keeps the weights that the next one streams. Deployments only name the bucket
(``model_cache_bucket``) and pin the model revision whose prefix their instance role may read.

Layout in the bucket (every object written once, If-None-Match):

    models/<model id>/<revision>/...          the checkpoint, as the hub ships it
    models/<model id>/<revision>/.qwen3vl-complete   written last: the fill's manifest
    compile-cache/<engine>-<version>/<gpu>/<flags hash>.tar.gz   the engine's compile cache
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..contract import HF_COMMIT as REVISION
from ..errors import UsageError
from ..paths import state_home
from .terraform import Terraform

STACK_SUBDIR = "model-cache"


class ModelCacheStack(Terraform):
    """Terraform for ``terraform/model-cache`` with its state in one directory per region."""

    def __init__(self, directory: Path, executable: str | None = None) -> None:
        super().__init__(directory, executable)
        self.module_dir = directory / "module" / "terraform" / STACK_SUBDIR


def bucket_name(account: str, region: str) -> str:
    """The cache bucket's name (terraform/model-cache builds the same)."""
    return f"qwen3vl-models-{account}-{region}"


def validate_revision(revision: str | None, *, s3_cache: bool) -> str | None:
    """``--model-revision`` checked before any AWS call; the S3 cache needs one."""
    if revision is not None and not REVISION.match(revision):
        raise UsageError(
            f"--model-revision {revision!r} is not a 40-character commit hash (the hub's "
            "commit history of the model lists them)."
        )
    if s3_cache and revision is None:
        raise UsageError(
            "--s3-cache needs --model-revision: the cache holds one pinned revision per prefix, "
            "so every instance reads the same files."
        )
    return revision


def terraform_variables(
    account: str, region: str, revision: str | None, s3_cache: bool
) -> dict[str, str]:
    """The deployment's cache inputs: the bucket (with --s3-cache) and the pinned revision."""
    variables = {"model_revision": revision} if revision else {}
    if s3_cache:
        variables["model_cache_bucket"] = bucket_name(account, region)
    return variables


def stack_dir(region: str, home: Path | None = None) -> Path:
    """Where the cache stack of a region keeps its working copy and state."""
    return (home or state_home()) / "_model-cache" / region


def ensure_bucket(region: str, *, home: Path | None = None, **variables: Any) -> str:
    """Apply the region's cache stack (idempotent) and return the bucket's name."""
    stack = ModelCacheStack(stack_dir(region, home))
    stack.prepare({"region": region, **variables})
    stack.apply()
    return str(stack.outputs()["bucket"])


def model_url(bucket: str, model_id: str, revision: str) -> str:
    """The s3:// prefix a deployment's instances read the weights from."""
    if not REVISION.match(revision):
        raise UsageError(
            f"model revision {revision!r} is not a 40-character commit hash: the S3 cache holds "
            "one pinned revision per prefix, so pin one (e.g. --model-revision <commit>)."
        )
    return f"s3://{bucket}/models/{model_id}/{revision}"


def compile_cache_url(bucket: str) -> str:
    """The s3:// prefix the compile caches live under (keys add engine, GPU and flags)."""
    return f"s3://{bucket}/compile-cache"
