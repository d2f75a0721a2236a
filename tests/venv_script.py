"""Run a helper script in another virtual environment (the pinned vLLM's or SGLang's) for its
result: the script prints ``RESULT <json>`` as its last such line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

PREFIX = "RESULT "


def run_for_result(
    python: Path, script: Path, *args: str, timeout: float, what: str | None = None
) -> object:
    """``python script args...``'s JSON result; fails the test with the end of its stderr when it
    exits non-zero or prints no result. ``what`` names it in that message (default: the script)."""
    result = subprocess.run(
        [str(python), str(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith(PREFIX)]
    if result.returncode != 0 or not lines:
        pytest.fail(f"{what or script.name} failed:\n{result.stderr[-4000:]}", pytrace=False)
    return json.loads(lines[-1].removeprefix(PREFIX))
