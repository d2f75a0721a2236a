"""Where a start's seconds went: launch -> boot -> packages -> weights -> engine -> first answer.

The instance records its bootstrap stages, where the weights came from (source, bytes, seconds)
and the engine's own log lines about loading, compiling and capturing CUDA graphs in
``status.json``; at every boot the bootstrap keeps the first start that reached ready under
``first_start``. This module turns one such record (plus the instance's launch time, which only
EC2 knows) into timeline steps, so ``status --timeline`` can show the last start next to the
first one.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from .status import parse_timestamp

#: vLLM's own log lines (its format strings in v0.32; v0.26's V2 model runner, run on a GPU,
#: said "GiB and" without "memory"), by the timeline step they time.
ENGINE_LINES = {
    "engine load": re.compile(
        r"(?:Model loading took \S+ GiB (?:memory )?and|Loading weights took) ([\d.]+) seconds"
    ),
    "compile": re.compile(
        r"init engine \(profile, create kv cache, warmup model\) took "
        r"[\d.]+ s \(compilation: ([\d.]+) s"
    ),
    "CUDA graphs": re.compile(r"Graph capturing finished in ([\d.]+) secs"),
}


@dataclass(frozen=True)
class Step:
    """One step of a start: its seconds (None = not recorded) and what it says about itself."""

    name: str
    seconds: float | None
    detail: str = ""


def engine_timings(log: str) -> dict[str, float]:
    """Seconds the engine reported per step; the last start in the log wins."""
    found: dict[str, float] = {}
    for line in log.splitlines():
        for name, pattern in ENGINE_LINES.items():
            match = pattern.search(line)
            if match:
                found[name] = float(match.group(1))
    return found


def _between(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start and end else None


#: The source the bootstrap records when vLLM streams the weights from the S3 model cache while
#: it loads: the bytes move during the engine's load, so that step's seconds time them.
STREAMED = "s3-stream"


def describe_weights(weights: dict[str, Any] | None) -> str:
    """``s3, 17.1 GB at 812 MB/s``; "" when the instance did not record it."""
    if not weights:
        return ""
    if weights.get("source") == STREAMED:
        return f"{weights.get('bytes', 0) / 1e9:.1f} GB streamed from S3 during the engine load"
    size = weights.get("bytes") or 0
    seconds = weights.get("seconds") or 0
    text = f"{weights.get('source', '?')}, {size / 1e9:.1f} GB"
    return f"{text} at {size / 1e6 / seconds:.0f} MB/s" if seconds > 0 else text


def start_steps(record: dict[str, Any], launched_at: datetime | None) -> list[Step]:
    """The timeline of one start from its status record (status.json or its first_start)."""
    stages = {
        s["name"]: (parse_timestamp(s.get("started_at")), parse_timestamp(s.get("finished_at")))
        for s in record.get("stages") or []
    }
    none = (None, None)
    packages, model = stages.get("packages", none), stages.get("model", none)
    configure, engine = stages.get("configure", none), stages.get("engine", none)
    ready = stages.get("ready", none)
    engine_log = engine_timings(record.get("engine_log") or "")
    weights = record.get("weights")
    if weights and weights.get("source") == STREAMED and "engine load" in engine_log:
        weights = {**weights, "source": "s3 (streamed)", "seconds": engine_log["engine load"]}
    booted = parse_timestamp(record.get("booted_at"))
    return [
        Step(
            "boot",
            _between(launched_at, packages[0]),
            f"OS up {_fmt(_between(launched_at, booted))}",
        ),
        Step("packages", _between(*packages)),
        Step("weights", _between(*model), describe_weights(weights)),
        Step("configure", _between(*configure)),
        *(Step(name, engine_log.get(name)) for name in ENGINE_LINES),
        Step("first answer", _between(engine[0], ready[1]), "engine start to first chat answer"),
        Step("total", _between(launched_at, ready[1]), "launch to first answer"),
    ]


def _fmt(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.0f}s"


@dataclass(frozen=True)
class Timeline:
    last: list[Step]
    first: list[Step] | None  # None until a start has reached ready and a later one began

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(step, first start, last start, detail of the last start) for a table."""
        first = {s.name: s for s in self.first or []}
        return [
            (
                step.name,
                _fmt(first[step.name].seconds) if step.name in first else "-",
                _fmt(step.seconds),
                step.detail,
            )
            for step in self.last
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "last_start": [asdict(s) for s in self.last],
            "first_start": [asdict(s) for s in self.first] if self.first else None,
        }


def build_timeline(
    status: dict[str, Any], launched_at: datetime | None, first_launched_at: datetime | None
) -> Timeline:
    """The last start (this boot) and, when recorded, the first start side by side.

    ``launched_at`` is EC2's LaunchTime (it moves at every start); ``first_launched_at`` is when
    the root volume was first attached, i.e. the instance's first launch.
    """
    first = status.get("first_start")
    return Timeline(
        last=start_steps(status, launched_at),
        first=start_steps(first, first_launched_at) if first else None,
    )


def launch_times(instance: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    """(this start's launch, the first launch) from a DescribeInstances instance."""
    root = instance.get("RootDeviceName")
    attached = next(
        (
            m["Ebs"].get("AttachTime")
            for m in instance.get("BlockDeviceMappings", [])
            if m.get("DeviceName") == root and "Ebs" in m
        ),
        None,
    )
    return instance.get("LaunchTime"), attached


def read_timeline(channel: Any, instance: dict[str, Any]) -> Timeline | None:
    """The timeline from the instance's status file (None until the bootstrap wrote one)."""
    import json

    from .status import read_status_text

    text = read_status_text(channel)
    return None if text is None else build_timeline(json.loads(text), *launch_times(instance))
