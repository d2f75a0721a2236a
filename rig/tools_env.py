"""What the instance's scripts may run in the rig: the base OS and what the bootstrap installs.

On the instance the bootstrap builds /opt/qwen3vl/tools with exactly
:func:`qwen3vl_aws.serving.versions.tools_requirements`; the rig builds the same environment
once (cached by its pins under ``~/.cache/qwen3vl-rig``) and links it into each scratch root.
The scripts then run with :data:`BASE_PATH` only: no virtual environment of the tests, no
``aws`` a developer happens to have, nothing in /usr/local.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
from pathlib import Path

from qwen3vl_aws.serving.versions import tools_requirements

#: The base OS's command directories (Debian/Ubuntu packages install here; nginx included).
BASE_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "qwen3vl-rig"


def tools_env() -> Path:
    """A virtual environment holding the bootstrap's tools pins, built on first use."""
    pins = tools_requirements()
    target = _cache_dir() / f"tools-{hashlib.sha256(' '.join(pins).encode()).hexdigest()[:12]}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{target}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test sessions build it once
        if not (target / ".qwen3vl-pins").is_file():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(target)], check=True)
            subprocess.run(
                [str(target / "bin" / "python"), "-m", "pip", "install", "-q", *pins], check=True
            )
            (target / ".qwen3vl-pins").write_text(" ".join(pins) + "\n")
    return target


def link_tools(root: Path, name: str = "tools") -> None:
    """Put the tools environment where the bootstrap installs it: <root>/opt/qwen3vl/tools (or
    where stage 0 installs its boto3, ``name="stage0"``: the same pin)."""
    link = root / "opt" / "qwen3vl" / name
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(tools_env(), target_is_directory=True)
