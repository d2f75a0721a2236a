"""Parsing what the instance reports, and the read-only scripts that fetch it (run for real here).

systemd and an NVIDIA GPU are not on this machine: ``systemctl`` and ``nvidia-smi`` are stubbed on
PATH with recorded outputs, so the scripts run exactly as on the instance and the parsers see
exactly what those tools print.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from channel_doubles import RecordingChannel
from qwen3vl_aws.errors import ChannelError, CheckFailed
from qwen3vl_aws.instance.channel.base import CommandResult
from qwen3vl_aws.instance.status import (
    STATUS_FILE,
    parse_gpus,
    parse_sections,
    parse_status,
    parse_unit_states,
    read_certificate,
    read_snapshot,
    read_status,
)

from rig.local import LocalChannel

SYSTEMCTL_SHOW = """\
Id=qwen3vl-engine.service
LoadState=loaded
ActiveState=activating
SubState=auto-restart
Result=exit-code
NRestarts=3

Id=qwen3vl-gateway.service
LoadState=loaded
ActiveState=active
SubState=running
Result=success
NRestarts=0
"""

NVIDIA_SMI = "NVIDIA A10G, 21304, 23028, 0\nNVIDIA A10G, 3, 23028, [N/A]\n"


def status_doc(**states: str) -> dict:
    """A status file with the given stage states (the rest pending)."""
    stages = []
    for name in ("packages", "model", "configure", "engine", "ready"):
        state = states.get(name, "pending")
        stages.append(
            {
                "name": name,
                "state": state,
                "started_at": None if state == "pending" else "2026-11-24T10:00:00Z",
                "finished_at": "2026-11-24T10:01:30Z" if state in ("done", "failed") else None,
            }
        )
    return {
        "stages": stages,
        "model_bytes": 1024,
        "model_bytes_total": 4096,
        "updated_at": "2026-11-24T10:01:30Z",
    }


def test_parse_status_reports_stages_durations_and_progress() -> None:
    status = parse_status(json.dumps(status_doc(packages="done", model="running")))
    assert status.reached == "model"
    assert not status.ready and status.failed is None
    assert status.stage("packages").duration() == 90
    now = datetime(2026, 11, 24, 10, 0, 40, tzinfo=UTC)
    assert status.stage("model").duration(now) == 40
    assert (status.model_bytes, status.model_bytes_total) == (1024, 4096)


def test_parse_status_finds_the_failed_stage_and_ready() -> None:
    failed = parse_status(json.dumps(status_doc(packages="done", model="failed")))
    assert failed.failed is not None and failed.failed.name == "model"
    ready = parse_status(
        json.dumps(
            status_doc(
                **dict.fromkeys(("packages", "model", "configure", "engine", "ready"), "done")
            )
        )
    )
    assert ready.ready and ready.reached == "ready"


def test_a_stage_missing_from_the_file_counts_as_pending() -> None:
    doc = {"stages": [{"name": "packages", "state": "running", "started_at": None}]}
    status = parse_status(json.dumps(doc))
    assert status.stage("engine").state == "pending"
    assert status.model_bytes is None


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '{"no_stages": []}',
        '{"stages": [{"name": "packages", "state": "sleeping"}]}',
        '{"stages": [{"name": "packages", "state": "done", "started_at": "yesterday"}]}',
    ],
)
def test_a_malformed_status_file_is_an_error_that_names_the_file(text: str) -> None:
    with pytest.raises(CheckFailed, match=r"status file|sleeping|timestamp"):
        parse_status(text)


def test_parse_unit_states() -> None:
    units = parse_unit_states(SYSTEMCTL_SHOW)
    engine = units["qwen3vl-engine.service"]
    assert not engine.running and engine.restarts == 3
    assert engine.describe() == "activating (auto-restart), last result exit-code, 3 restarts"
    assert units["qwen3vl-gateway.service"].running
    assert units["qwen3vl-gateway.service"].describe() == "active (running)"


def test_a_unit_systemd_does_not_know_is_not_found() -> None:
    text = "Id=qwen3vl-engine.service\nLoadState=not-found\nActiveState=inactive\nSubState=dead\n"
    unit = parse_unit_states(text)["qwen3vl-engine.service"]
    assert not unit.running and unit.describe() == "not-found"


def test_parse_gpus() -> None:
    gpus = parse_gpus(NVIDIA_SMI)
    assert [(g.memory_used_mib, g.memory_total_mib, g.utilization_pct) for g in gpus] == [
        (21304, 23028, 0),
        (3, 23028, None),
    ]
    with pytest.raises(CheckFailed, match="nvidia-smi"):
        parse_gpus("NVIDIA-SMI has failed because it couldn't communicate with the driver")


def test_sections_split_back_and_keep_exit_codes() -> None:
    text = (
        "@@qwen3vl-section a\nline 1\nline 2\n\n@@qwen3vl-section-end 0\n"
        "@@qwen3vl-section b\n\n@@qwen3vl-section-end 127\n"
    )
    sections = parse_sections(text)
    assert sections["a"].output == "line 1\nline 2\n" and sections["a"].exit_code == 0
    assert sections["b"].output == "" and sections["b"].exit_code == 127


def stub_tool(bin_dir: Path, name: str, output: str, exit_code: int = 0) -> None:
    """An executable on PATH that prints a recorded output (and records its argv)."""
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / f"{name}.out").write_text(output)
    script = bin_dir / name
    script.write_text(
        f'#!/bin/bash\necho "$*" >> "{bin_dir}/{name}.argv"\n'
        f'cat "{bin_dir}/{name}.out"\nexit {exit_code}\n'
    )
    script.chmod(0o755)


@pytest.fixture
def instance_root(tmp_path: Path) -> Path:
    """A scratch ``QWEN3VL_ROOT`` with a status file and a certificate."""
    root = tmp_path / "root"
    status = root / STATUS_FILE.lstrip("/")
    status.parent.mkdir(parents=True)
    status.write_text(json.dumps(status_doc(packages="done", model="done", configure="running")))
    return root


def rig_channel(root: Path, bin_dir: Path) -> LocalChannel:
    env = dict(os.environ, QWEN3VL_ROOT=str(root), PATH=f"{bin_dir}:{os.environ['PATH']}")
    return LocalChannel(env=env)


def test_snapshot_runs_the_real_script_against_stubbed_tools(
    instance_root: Path, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    stub_tool(bin_dir, "systemctl", SYSTEMCTL_SHOW)
    stub_tool(bin_dir, "nvidia-smi", "NVIDIA-SMI has failed\n", exit_code=9)
    snapshot = read_snapshot(rig_channel(instance_root, bin_dir))
    assert parse_status(snapshot["status"].output).reached == "configure"
    assert parse_unit_states(snapshot["units"].output)["qwen3vl-gateway.service"].running
    assert snapshot["gpu"].exit_code == 9
    argv = (bin_dir / "systemctl.argv").read_text()
    assert argv.startswith("show --property=Id,LoadState,ActiveState,SubState,Result,NRestarts ")
    assert "qwen3vl-engine.service qwen3vl-gateway.service" in argv
    assert "--format=csv,noheader,nounits" in (bin_dir / "nvidia-smi.argv").read_text()


def test_snapshot_of_a_missing_status_file_has_a_nonzero_section(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    stub_tool(bin_dir, "systemctl", "")
    stub_tool(bin_dir, "nvidia-smi", NVIDIA_SMI)
    snapshot = read_snapshot(rig_channel(tmp_path / "empty-root", bin_dir))
    assert snapshot["status"].exit_code != 0
    assert len(parse_gpus(snapshot["gpu"].output)) == 2


def test_a_snapshot_that_came_back_empty_is_a_channel_error() -> None:
    with pytest.raises(ChannelError, match="exit 255"):
        read_snapshot(RecordingChannel(CommandResult(255, "", "connection lost")))
    with pytest.raises(ChannelError, match="empty or cut short"):
        read_snapshot(RecordingChannel(CommandResult(0, "@@qwen3vl-section status\n{", "")))


def test_read_status_is_none_before_bootstrap_writes_it(instance_root: Path, tmp_path) -> None:
    channel = rig_channel(instance_root, tmp_path)
    assert read_status(channel).reached == "configure"
    assert read_status(rig_channel(tmp_path / "nothing", tmp_path)) is None


def test_read_certificate(instance_root: Path, tmp_path: Path) -> None:
    channel = rig_channel(instance_root, tmp_path)
    with pytest.raises(ChannelError, match="Reading the TLS cert"):
        read_certificate(channel)
    cert = instance_root / "etc/qwen3vl/tls/cert.pem"
    cert.parent.mkdir(parents=True)
    cert.write_text("garbage\n")
    with pytest.raises(CheckFailed, match="PEM certificate"):
        read_certificate(channel)
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    cert.write_text(pem)
    assert read_certificate(channel) == pem
