"""``scripts/demo.py --replicas``: only the fleet demo's 2 runs here; any other count is refused
before anything starts or is cleared."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo.py"


@pytest.mark.parametrize("count", ["1", "3", "two"])
def test_other_replica_counts_are_refused_and_change_nothing(tmp_path: Path, count: str) -> None:
    state_dir = tmp_path / "demo"
    state_dir.mkdir()
    (state_dir / "kept").write_text("a previous run's logs")
    result = subprocess.run(
        [sys.executable, str(DEMO), "--replicas", count, "--state-dir", str(state_dir)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert f"argument --replicas: '{count}': this demo runs exactly 2 replicas" in result.stderr
    assert "leave --replicas out for the single-instance demo" in result.stderr
    assert (state_dir / "kept").read_text() == "a previous run's logs"
    assert result.stdout == ""


@pytest.mark.parametrize("args", [["ARGS=--replicas", "2"], ["ARGS=--replicas 2"]])
def test_make_demo_hands_the_replica_count_to_the_demo(args: list[str]) -> None:
    """`make demo ARGS=--replicas 2`, as the issue and README write it: make would read the bare
    `2` as a goal of its own."""
    result = subprocess.run(
        ["make", "-n", "demo", *args], cwd=DEMO.parents[1],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (line,) = [x for x in result.stdout.splitlines() if "scripts/demo.py" in x]
    assert line.split()[-3:] == ["scripts/demo.py", "--replicas", "2"]
