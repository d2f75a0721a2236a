"""``make demo`` end to end: the script a user runs, in its own process, as the Makefile runs it.

It starts its own AWS emulator, applies with real Terraform, runs the instance's pieces from the
user-data apply produced (nginx, vLLM's CPU build, the key sync), talks to them through the CLI
and over TLS, rotates the key and destroys. The assertions are on what it really did.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.node]

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo.py"
ACCESS_LOG = "instance-root/var/log/qwen3vl/gateway-access.log"


def chat_lines(state_dir: Path) -> list[str]:
    """Chat requests the gateway answered with 200, from nginx's own access log."""
    log = (state_dir / ACCESS_LOG).read_text()
    return [line for line in log.splitlines() if '"POST /v1/chat/completions" 200' in line]


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def children_of(pid: int) -> dict[int, bytes]:
    """Processes started (directly or not) by ``pid`` with their command lines, from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p for p, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return {p: cmdline(p) for p in found}


def test_demo_answers_through_the_gateway_and_leaves_nothing(tmp_path: Path) -> None:
    state_dir, summary = tmp_path / "demo", tmp_path / "outcome.json"
    result = subprocess.run(
        [sys.executable, str(DEMO), "--state-dir", str(state_dir), "--json", str(summary)],
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    print(result.stdout)  # the demo's own account, for the record (pytest -s)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    outcome = json.loads(summary.read_text())
    assert outcome["answer"] and outcome["image_answer"]
    assert repr(outcome["answer"]) in result.stdout
    # Text chat, image chat and the chat with the rotated key went through nginx over TLS
    # (the demo's client trusts only the pinned certificate; the health checks add two more).
    assert len(chat_lines(state_dir)) >= 3
    assert outcome["rotated_key_works"] and outcome["old_key_refused"]
    assert outcome["resources_left"] == {
        "instances": [],
        "addresses": [],
        "security_groups": [],
        "roles": [],
        "instance_profiles": [],
        "secrets": [],
        "buckets": [],
    }
    assert "Demo complete" in result.stdout
    # The instance's files came from the bundle in the emulated S3, verified by stage 0.
    assert "qwen3vl-bundle: installed" in result.stdout
    # `wait` ended with the start timeline, weights source included.
    shown = result.stdout + result.stderr
    assert "qwen3vl: start timeline (seconds)" in shown
    assert "local-disk, 0.0 GB" in shown
    # The key was read with `qwen3vl-aws key` but never printed.
    assert "sk-qwen-" not in result.stdout + result.stderr


def test_ctrl_c_stops_everything_it_started(tmp_path: Path) -> None:
    state_dir = tmp_path / "demo"
    demo = subprocess.Popen(
        [sys.executable, "-u", str(DEMO), "--state-dir", str(state_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        for line in demo.stdout:
            lines.append(line)
            if line.startswith("vLLM flags from engine.env"):
                break  # nginx runs and vLLM is starting: the most to clean up
        else:
            pytest.fail("the demo ended before starting vLLM:\n" + "".join(lines))
        started = children_of(demo.pid)
        assert started, "the demo should have running children (nginx, vLLM)"
        demo.send_signal(signal.SIGINT)
        rest = demo.communicate(timeout=120)[0]
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 130, "".join(lines) + rest
    assert "Interrupted" in rest and "AWS emulator stopped" in rest
    deadline = time.monotonic() + 30
    # Same pid and command line: the very process the demo started (not a reused pid).
    while (alive := {p: c for p, c in started.items() if c and cmdline(p) == c}) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.5)
    assert not alive, f"still running after Ctrl-C: {alive}"
