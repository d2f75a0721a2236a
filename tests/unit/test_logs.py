"""``logs``: the bootstrap log file and the units' journal, read (and followed) over a channel.

The scripts run for real through :class:`LocalChannel`; the bootstrap log lives under a scratch
``QWEN3VL_ROOT`` and ``journalctl`` is a stub on PATH printing what journalctl prints.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from channel_doubles import RecordingChannel
from click.testing import CliRunner
from qwen3vl_aws.cli import cli
from qwen3vl_aws.deployment import Deployment
from qwen3vl_aws.errors import CheckFailed, UsageError
from qwen3vl_aws.instance.channel.base import CommandResult
from qwen3vl_aws.instance.status import (
    BOOTSTRAP_LOG,
    ENGINE_UNIT,
    filter_since,
    follow_log,
    parse_since,
    read_log,
)

from rig.cli import app_with_channel
from rig.local import LocalChannel

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
JOURNAL = """\
2026-11-24T11:58:01+0000 ip-10-0-1-5 vllm[812]: INFO Loading weights took 41.2 s
2026-11-24T11:58:09+0000 ip-10-0-1-5 vllm[812]: INFO Application startup complete.
-- cursor: s=abc;i=1f2
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", datetime(2026, 11, 24, 11, 58, 30, tzinfo=UTC)),
        ("10m", datetime(2026, 11, 24, 11, 50, tzinfo=UTC)),
        ("2h", datetime(2026, 11, 24, 10, 0, tzinfo=UTC)),
        ("1d", datetime(2026, 11, 23, 12, 0, tzinfo=UTC)),
        ("2026-11-24T09:30:00Z", datetime(2026, 11, 24, 9, 30, tzinfo=UTC)),
    ],
)
def test_parse_since(text: str, expected: datetime) -> None:
    assert parse_since(text, NOW) == expected


def test_a_bad_since_says_what_is_accepted() -> None:
    with pytest.raises(UsageError, match=r"neither a duration \(30s, 10m, 2h, 1d\)"):
        parse_since("last tuesday", NOW)


def test_filter_since_keeps_unstamped_continuation_lines_with_their_entry() -> None:
    lines = [
        "2026-11-24T11:00:00Z [packages] start",
        "  continuation of an old entry",
        "[2026-11-24 11:59:00] [model] 40% done",
        "  Traceback (most recent call last):",
        "2026-11-24T11:59:30.5+00:00 [model] done",
    ]
    kept = filter_since(lines, datetime(2026, 11, 24, 11, 30, tzinfo=UTC))
    assert kept == lines[2:]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


@pytest.fixture
def channel(root: Path, tmp_path: Path) -> LocalChannel:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    journalctl = bin_dir / "journalctl"
    (bin_dir / "journal.out").write_text(JOURNAL)
    journalctl.write_text(
        f'#!/bin/bash\nprintf "%s\\n" "$@" > "{bin_dir}/journalctl.argv"\n'
        f'cat "{bin_dir}/journal.out"\n'
    )
    journalctl.chmod(0o755)
    env = dict(os.environ, QWEN3VL_ROOT=str(root), PATH=f"{bin_dir}:{os.environ['PATH']}")
    return LocalChannel(env=env)


def write_log(root: Path, text: str, *, append: bool = False) -> Path:
    log = root / BOOTSTRAP_LOG.lstrip("/")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a" if append else "w") as fh:
        fh.write(text)
    return log


def test_bootstrap_log_tail_then_only_what_was_appended(root: Path, channel) -> None:
    write_log(root, "".join(f"line {i}\n" for i in range(10)))
    first = read_log(channel, "bootstrap", lines=3)
    assert first.lines == ["line 7", "line 8", "line 9"]
    assert first.cursor == str(len("".join(f"line {i}\n" for i in range(10))))

    assert read_log(channel, "bootstrap", cursor=first.cursor).lines == []
    write_log(root, "line 10\nline 11\n", append=True)
    later = read_log(channel, "bootstrap", cursor=first.cursor)
    assert later.lines == ["line 10", "line 11"]


def test_bootstrap_log_since(root: Path, channel) -> None:
    write_log(root, "2026-11-24T10:00:00Z old\n2026-11-24T11:59:00Z new\n")
    chunk = read_log(channel, "bootstrap", since=datetime(2026, 11, 24, 11, tzinfo=UTC))
    assert chunk.lines == ["2026-11-24T11:59:00Z new"]


def test_a_missing_bootstrap_log_says_so(channel) -> None:
    with pytest.raises(CheckFailed, match="no bootstrap log yet"):
        read_log(channel, "bootstrap")


def test_unit_logs_come_from_the_journal_with_a_cursor(channel, tmp_path: Path) -> None:
    since = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
    chunk = read_log(channel, "engine", lines=50, since=since)
    assert chunk.lines == JOURNAL.splitlines()[:2]
    assert chunk.cursor == "s=abc;i=1f2"
    argv = (tmp_path / "bin/journalctl.argv").read_text().splitlines()
    assert argv[:2] == ["-u", "qwen3vl-engine.service"]
    assert {"-q", "--show-cursor", "--no-pager", "-n", "50"} <= set(argv)
    assert f"--since=@{int(since.timestamp())}" in argv

    (tmp_path / "bin/journal.out").write_text("")  # nothing new: journalctl -q prints nothing
    again = read_log(channel, "gateway", cursor=chunk.cursor)
    assert again.lines == [] and again.cursor == chunk.cursor
    argv = (tmp_path / "bin/journalctl.argv").read_text().splitlines()
    assert "qwen3vl-gateway.service" in argv and "--after-cursor=s=abc;i=1f2" in argv
    assert "-n" not in argv


def test_follow_polls_from_the_cursor_and_loses_nothing(root: Path, channel) -> None:
    write_log(root, "a\nb\n")
    appended = iter(["c\n", "d\ne\n"])
    follower = follow_log(
        channel,
        "bootstrap",
        lines=10,
        since=None,
        interval=30,
        sleep=lambda _: write_log(root, next(appended), append=True),
    )
    assert [next(follower).lines for _ in range(3)] == [["a", "b"], ["c"], ["d", "e"]]


def test_logs_command_prints_the_lines(root: Path, channel) -> None:
    Deployment(
        name="qwen3vl", region="us-east-1", instance_type="g5.xlarge", instance_id="i-0abc"
    ).save()
    write_log(root, "2026-11-24T10:00:00Z bootstrap started\n")
    result = CliRunner().invoke(cli, ["logs", "--unit", "bootstrap"], obj=app_with_channel(channel))
    assert result.exit_code == 0, result.output
    assert result.output == "2026-11-24T10:00:00Z bootstrap started\n"

    result = CliRunner().invoke(cli, ["logs", "--unit", "vllm", "--since", "yesterday"])
    assert result.exit_code == 2 and "--since 'yesterday' is neither" in result.output


@pytest.mark.parametrize("unit", ["engine", "vllm"])
def test_engine_logs_read_the_engine_unit_and_vllm_is_its_alias(unit: str) -> None:
    Deployment(
        name="qwen3vl", region="us-east-1", instance_type="g5.xlarge", instance_id="i-0abc"
    ).save()
    channel = RecordingChannel(CommandResult(0, "2026-11-24T10:00:00+0000 host engine: up\n", ""))
    result = CliRunner().invoke(cli, ["logs", "--unit", unit], obj=app_with_channel(channel))
    assert result.exit_code == 0, result.output
    assert result.output == "2026-11-24T10:00:00+0000 host engine: up\n"
    assert f"journalctl -u {ENGINE_UNIT} " in channel.scripts[0]
