"""``make demo`` end to end: the script a user runs, in its own process, as the Makefile runs it.

It starts its own AWS emulator, applies with real Terraform, runs the instance's pieces from the
user-data apply produced (nginx, vLLM's CPU build, the key sync), talks to them through the CLI
and over TLS, rotates the key and destroys. With ``--replicas 2`` it runs two replicas behind
HAProxy under load through a rotation, a drain and an engine stop. The assertions are on what it
really did.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rig.procs import descendants

pytestmark = [pytest.mark.slow, pytest.mark.node]

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo.py"
ACCESS_LOG = "var/log/qwen3vl/gateway-access.log"


def chat_lines(root: Path) -> list[str]:
    """Chat requests the gateway under ``root`` answered with 200, from nginx's own access log."""
    log = (root / ACCESS_LOG).read_text()
    return [line for line in log.splitlines() if '"POST /v1/chat/completions" 200' in line]


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def children_of(pid: int) -> dict[int, bytes]:
    """Processes started (directly or not) by ``pid`` with their command lines, from /proc."""
    return {p: cmdline(p) for p in descendants(pid) - {pid}}


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
    assert len(chat_lines(state_dir / "instance-root")) >= 3
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
    # ... and `status --timeline` printed it on stdout (`wait` prints its summary on stderr).
    after = result.stdout.split("$ qwen3vl-aws status --timeline", 1)
    assert len(after) == 2 and "qwen3vl: start timeline (seconds)" in after[1]
    assert "local-disk, 0.0 GB" in after[1]
    # The key was read with `qwen3vl-aws key` but never printed.
    assert "sk-qwen-" not in result.stdout + result.stderr


def listening(url: str) -> bool:
    host, port = url.rsplit("/", 1)[-1].rsplit(":", 1)
    with socket.socket() as sock:
        return sock.connect_ex((host, int(port))) == 0


def test_fleet_demo_states_what_the_run_measured(tmp_path: Path) -> None:
    state_dir, summary = tmp_path / "demo", tmp_path / "outcome.json"
    result = subprocess.run(
        [sys.executable, str(DEMO), "--replicas", "2", "--state-dir", str(state_dir),
         "--json", str(summary)],
        capture_output=True, text=True, timeout=1500, check=False,
    )  # fmt: skip
    print(result.stdout)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    outcome = json.loads(summary.read_text())
    report, rows = outcome["report"], outcome["replicas"]
    assert report["rotate_sent"] > 0 and report["rotate_failed"] == 0, report["failures"]
    assert report["drain_streams"] >= 1 and report["drain_cut"] == 0
    # Each replica's own nginx log holds at least the answers the load counted from it, and
    # together they are every answer the load got.
    assert [row["replica"] for row in rows] == ["r1", "r2"]
    for row in rows:
        assert len(chat_lines(state_dir / "fleet" / row["replica"])) >= row["answered"] > 0
    assert sum(row["answered"] for row in rows) == report["sent"] - report["failed"]
    # What it printed is what it measured (rich wraps lines: compare words).
    shown = " ".join(result.stdout.split())
    for statement in (
        f"rotating the key across 2 replicas: {report['rotate_sent']} requests during it, "
        f"{report['rotate_failed']} failed",
        f"draining r1 with {report['drain_streams']} streams in flight: {report['drain_cut']} cut",
        f"r2's engine took {report['engine_stop_s']:.1f} s to stop; the balancer marked r2 "
        f"DOWN {report['engine_stop_s'] + report['down_after_s']:.1f} s after the stop began",
        f"{report['engine_stop_failed']} requests failed in that window, "
        f"{report['requests_to_stopped_after_down']} reached r2 after it",
        f"load: {report['sent']} requests, {report['failed']} failed",
        f"fleet: replicas=2 sent={report['sent']} failed={report['failed']} "
        f"rotate_failed={report['rotate_failed']} drain_cut={report['drain_cut']} "
        f"wake_s={report['wake_s']:.1f}",
    ):
        assert statement in shown
    assert "Demo complete" in result.stdout
    # Nothing it started still listens: both gateways and both engines are gone.
    for row in rows:
        assert not listening(row["gateway"]) and not listening(row["engine"]), row


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
