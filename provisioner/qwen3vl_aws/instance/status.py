"""Read what the instance says about itself: bootstrap stages, unit states, GPUs, logs, its cert.

Everything here goes through a :class:`CommandChannel` (SSM, SSH, or the local rig). The scripts are
plain read-only bash and honour ``QWEN3VL_ROOT`` like every instance-side path does; the parsers are
pure functions so they are tested on recorded outputs.

One health probe is one channel round trip (:func:`read_snapshot`): SSM commands take seconds each,
so the status file, the unit states and ``nvidia-smi`` come back together, in marked sections.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..contract import instance_contract
from ..errors import ChannelError, CheckFailed, UsageError
from .channel.base import CommandChannel

_CONTRACT = instance_contract()
STATUS_FILE = _CONTRACT.paths["status_file"]
BOOTSTRAP_LOG = _CONTRACT.paths["bootstrap_log"]
CERT_FILE = _CONTRACT.paths["cert_file"]
ENGINE_UNIT = _CONTRACT.units["engine"]
GATEWAY_UNIT = _CONTRACT.units["gateway"]
UNITS = (ENGINE_UNIT, GATEWAY_UNIT)
STAGE_NAMES = _CONTRACT.stages
STAGE_STATES = ("pending", "running", "done", "failed")
GPU_QUERY = "name,memory.used,memory.total,utilization.gpu"
_UNIT_PROPERTIES = "Id,LoadState,ActiveState,SubState,Result,NRestarts"
_SECTION = "@@qwen3vl-section"


def _root(path: str) -> str:
    """``path`` under the instance's ``$QWEN3VL_ROOT`` (quoted for bash)."""
    return f'"${{QWEN3VL_ROOT:-}}"{shlex.quote(path)}'


def parse_iso(value: str) -> datetime:
    """An ISO 8601 timestamp (``Z`` or an offset; naive means UTC) as an aware UTC datetime."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise CheckFailed(f"The instance's status file has a bad timestamp {value!r}.") from exc
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_timestamp(value: str | None) -> datetime | None:
    """:func:`parse_iso`, where a missing timestamp (``null``) stays None."""
    return None if value is None else parse_iso(value)


@dataclass(frozen=True)
class Stage:
    """One bootstrap stage as the status file records it."""

    name: str
    state: str
    started_at: datetime | None
    finished_at: datetime | None
    #: Why a failed stage failed, as the bootstrap recorded it (e.g. the AWS action denied).
    error: str | None = None

    def duration(self, now: datetime | None = None) -> float | None:
        """Seconds the stage took (or has taken so far, while running)."""
        if self.started_at is None:
            return None
        end = self.finished_at or (now if self.state == "running" else None)
        return (end - self.started_at).total_seconds() if end else None


@dataclass(frozen=True)
class BootstrapStatus:
    """The whole status file."""

    stages: tuple[Stage, ...]
    model_bytes: int | None
    model_bytes_total: int | None
    updated_at: datetime | None
    # {"source": "hub" | "s3" | "s3-stream" | "local-disk", "bytes", "seconds"}
    weights: dict[str, Any] | None = None

    def stage(self, name: str) -> Stage:
        """The named stage; a stage the file does not list yet counts as pending."""
        for stage in self.stages:
            if stage.name == name:
                return stage
        return Stage(name, "pending", None, None)

    @property
    def failed(self) -> Stage | None:
        return next((s for s in self.stages if s.state == "failed"), None)

    @property
    def ready(self) -> bool:
        return self.stage("ready").state == "done"

    @property
    def reached(self) -> str:
        """The furthest stage that started, in bootstrap order ("none" before any started)."""
        started = [n for n in STAGE_NAMES if self.stage(n).state != "pending"]
        return started[-1] if started else "none"


def parse_status(text: str) -> BootstrapStatus:
    """Parse ``status.json``; anything malformed is a :class:`CheckFailed` that says so."""
    try:
        raw = json.loads(text)
        stages = tuple(
            Stage(
                name=str(item["name"]),
                state=str(item["state"]),
                started_at=parse_timestamp(item.get("started_at")),
                finished_at=parse_timestamp(item.get("finished_at")),
                error=item.get("error"),
            )
            for item in raw["stages"]
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckFailed(f"The instance's status file {STATUS_FILE} is not valid: {exc}") from exc
    for stage in stages:
        if stage.state not in STAGE_STATES:
            raise CheckFailed(f"The status file gives stage {stage.name!r} state {stage.state!r}.")
    return BootstrapStatus(
        stages=stages,
        model_bytes=raw.get("model_bytes"),
        model_bytes_total=raw.get("model_bytes_total"),
        updated_at=parse_timestamp(raw.get("updated_at")),
        weights=raw.get("weights"),
    )


@dataclass(frozen=True)
class UnitState:
    """What ``systemctl show`` says about one unit."""

    name: str
    load_state: str
    active_state: str
    sub_state: str
    result: str
    restarts: int

    @property
    def running(self) -> bool:
        return self.active_state == "active" and self.sub_state == "running"

    def describe(self) -> str:
        text = f"{self.active_state} ({self.sub_state})"
        if self.result not in ("", "success"):
            text += f", last result {self.result}"
        if self.restarts:
            text += f", {self.restarts} restarts"
        return text if self.load_state == "loaded" else f"{self.load_state}"


def parse_unit_states(text: str) -> dict[str, UnitState]:
    """Parse ``systemctl show --property=...`` for several units (blocks split by blank lines)."""
    units: dict[str, UnitState] = {}
    for block in re.split(r"\n\s*\n", text.strip()):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if "Id" not in props:
            continue
        units[props["Id"]] = UnitState(
            name=props["Id"],
            load_state=props.get("LoadState", ""),
            active_state=props.get("ActiveState", ""),
            sub_state=props.get("SubState", ""),
            result=props.get("Result", ""),
            restarts=int(props.get("NRestarts") or 0),
        )
    return units


@dataclass(frozen=True)
class Gpu:
    """One line of ``nvidia-smi --query-gpu``."""

    name: str
    memory_used_mib: int
    memory_total_mib: int
    utilization_pct: int | None


def parse_gpus(text: str) -> list[Gpu]:
    """Parse ``nvidia-smi --query-gpu=<GPU_QUERY> --format=csv,noheader,nounits``."""
    gpus = []
    for line in text.strip().splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 4:
            raise CheckFailed(f"Unexpected nvidia-smi output line: {line!r}")
        name, used, total, util = fields
        gpus.append(Gpu(name, int(used), int(total), int(util) if util.isdigit() else None))
    return gpus


@dataclass(frozen=True)
class Section:
    """One command's output inside a snapshot."""

    exit_code: int
    output: str


def snapshot_script() -> str:
    """A read-only script printing the status file, unit states, GPUs and the engine's metrics
    (for the KV-cache check, see ``engine_checks``) in marked sections."""
    from .engine_metrics import metrics_script

    return sectioned(
        {
            "status": f"cat {_root(STATUS_FILE)}",
            "units": f"systemctl show --property={_UNIT_PROPERTIES} {' '.join(UNITS)}",
            "gpu": f"nvidia-smi --query-gpu={GPU_QUERY} --format=csv,noheader,nounits",
            "metrics": f"(\n{metrics_script()})",
        }
    )


def sectioned(parts: dict[str, str]) -> str:
    """One script running each command in turn, its output in a marked section."""
    lines = []
    for name, command in parts.items():
        lines += [
            f"echo '{_SECTION} {name}'",
            f"{command} 2>&1; rc=$?",
            f'echo; echo "{_SECTION}-end $rc"',  # the echo ends a last line lacking a newline
        ]
    return "\n".join(lines) + "\n"


def parse_sections(text: str) -> dict[str, Section]:
    """Split a snapshot's stdout back into its sections."""
    pattern = re.compile(
        rf"^{_SECTION} ([\w-]+)\n(.*?)^{_SECTION}-end (\d+)$", re.MULTILINE | re.DOTALL
    )
    return {m[1]: Section(int(m[3]), m[2].removesuffix("\n")) for m in pattern.finditer(text)}


def read_snapshot(channel: CommandChannel, *, timeout: float = 60.0) -> dict[str, Section]:
    """Run the snapshot script; fail clearly if the channel's answer is not one."""
    result = channel.run(snapshot_script(), timeout=timeout)
    sections = parse_sections(result.stdout)
    if not sections:
        result.check("Reading the instance's status")
        raise ChannelError("The instance's status came back empty or cut short.")
    return sections


def read_status_text(channel: CommandChannel, *, timeout: float = 60.0) -> str | None:
    """The status file's text, or None while bootstrap has not written it yet."""
    result = channel.run(
        f'f={_root(STATUS_FILE)}; if [ -e "$f" ]; then cat "$f"; else exit 3; fi',
        timeout=timeout,
    )
    if result.exit_code == 3:
        return None
    return result.check("Reading the bootstrap status file").stdout


def read_status(channel: CommandChannel, *, timeout: float = 60.0) -> BootstrapStatus | None:
    """The status file, or None while bootstrap has not written it yet."""
    text = read_status_text(channel, timeout=timeout)
    return None if text is None else parse_status(text)


def read_certificate(channel: CommandChannel, *, timeout: float = 60.0) -> str:
    """The instance's TLS certificate (PEM; public, never the private key)."""
    text = channel.run(f"cat {_root(CERT_FILE)}", timeout=timeout).check("Reading the TLS cert")
    if "-----BEGIN CERTIFICATE-----" not in text.stdout:
        raise CheckFailed(f"{CERT_FILE} on the instance does not hold a PEM certificate.")
    return text.stdout


def now_utc() -> datetime:
    return datetime.now(UTC)


# --- logs -------------------------------------------------------------------------------------

LOG_SOURCES = {"engine": ENGINE_UNIT, "gateway": GATEWAY_UNIT, "bootstrap": BOOTSTRAP_LOG}
_CURSOR_LINE = re.compile(r"^-- cursor: (.+)$")
_OFFSET_LINE = re.compile(rf"^{_SECTION}-offset (\d+)$")
_LEADING_TIME = re.compile(
    r"^\[?(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)"
)
_DURATION = re.compile(r"^(\d+)\s*(s|m|h|d)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: datetime) -> datetime:
    """``--since``: a duration back from now (``90s``, ``10m``, ``2h``, ``1d``) or an ISO time."""
    match = _DURATION.match(text.strip())
    if match:
        return now - timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]])
    try:
        return parse_iso(text.strip())
    except CheckFailed:
        raise UsageError(
            f"--since {text!r} is neither a duration (30s, 10m, 2h, 1d) nor an ISO 8601 time "
            "(2026-11-24T21:00:00Z)."
        ) from None


@dataclass(frozen=True)
class LogChunk:
    """Lines read from one log source, and where the next read continues."""

    lines: list[str]
    cursor: str | None  # journal cursor, or byte offset (as text) into the bootstrap log
    truncated: bool = False


def log_script(source: str, *, lines: int, since: datetime | None, cursor: str | None) -> str:
    """The read-only command that prints a log source's new lines and a resume marker."""
    target = LOG_SOURCES[source]
    if target.endswith(".service"):
        args = ["journalctl", "-u", target, "--no-pager", "-q", "-o", "short-iso", "--show-cursor"]
        if cursor:
            args.append(f"--after-cursor={cursor}")
        else:
            args += ["-n", str(lines)]
            if since:
                args.append(f"--since=@{int(since.timestamp())}")
        return shlex.join(args) + "\n"
    # A file: remember the byte offset so --follow only prints what was appended since.
    start = int(cursor or 0)
    read = f'tail -c +{start + 1} "$f" | head -c $((size - {start}))'
    if cursor is None:
        read += f" | tail -n {lines}"
    return (
        f"f={_root(target)}\n"
        'if [ ! -e "$f" ]; then echo "no bootstrap log yet: $f" >&2; exit 3; fi\n'
        'size=$(stat -c %s "$f")\n'
        f"{read}\n"
        f'echo; echo "{_SECTION}-offset $size"\n'
    )


def parse_log_output(
    source: str, stdout: str, *, since: datetime | None, cursor: str | None
) -> tuple[list[str], str | None]:
    """Split a log read into its lines and the resume marker (journal cursor or byte offset).

    ``journalctl -q`` prints no cursor when there is nothing new; the previous one then stands.
    """
    lines = stdout.splitlines()
    journal = LOG_SOURCES[source].endswith(".service")
    marker_re = _CURSOR_LINE if journal else _OFFSET_LINE
    marker = next((m[1] for line in reversed(lines) if (m := marker_re.match(line))), None)
    body = [line for line in lines if not marker_re.match(line)]
    if journal:
        return body, marker or cursor
    if marker is None:
        raise ChannelError(f"The {source} log came back without its resume marker (cut short?).")
    body = body[:-1] if body and body[-1] == "" else body  # the newline printed before it
    return (filter_since(body, since) if since else body), marker


def filter_since(lines: list[str], since: datetime) -> list[str]:
    """Keep lines stamped at or after ``since``; unstamped lines follow the line before them."""
    kept: list[str] = []
    keep = False
    for line in lines:
        match = _LEADING_TIME.match(line)
        if match:
            with contextlib.suppress(CheckFailed):
                keep = parse_iso(match[1].replace(" ", "T").replace(",", ".")) >= since
        if keep:
            kept.append(line)
    return kept


def read_log(
    channel: CommandChannel,
    source: str,
    *,
    lines: int = 200,
    since: datetime | None = None,
    cursor: str | None = None,
    timeout: float = 60.0,
) -> LogChunk:
    """Read a log source once: the last ``lines`` (since ``since``), or what followed ``cursor``."""
    result = channel.run(
        log_script(source, lines=lines, since=since, cursor=cursor), timeout=timeout
    )
    if result.exit_code == 3:
        raise CheckFailed(result.stderr.strip() or f"The {source} log does not exist yet.")
    result.check(f"Reading the {source} log")
    body, marker = parse_log_output(
        source, result.stdout, since=since if cursor is None else None, cursor=cursor
    )
    return LogChunk(body, marker, result.truncated)


def follow_log(
    channel: CommandChannel,
    source: str,
    *,
    lines: int,
    since: datetime | None,
    interval: float,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[LogChunk]:
    """Yield the log's tail, then whatever is appended, polling every ``interval`` seconds.

    Neither SSM nor a stateless SSH call streams output, so following is polling with a resume
    marker: nothing is printed twice and nothing appended between polls is lost.
    """
    chunk = read_log(channel, source, lines=lines, since=since)
    while True:
        yield chunk
        sleep(interval)
        chunk = read_log(channel, source, cursor=chunk.cursor)
