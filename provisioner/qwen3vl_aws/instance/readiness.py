"""Follow a deployment from launch to a working endpoint, with a progress display.

Stages, in order: the instance running (EC2's waiter), its command channel online (SSM
registration, or an SSH command answering), then the bootstrap's own stages from its status file
(packages, model download with bytes so far, configure, engine loading, ready), and last the public
endpoint: the instance's TLS certificate is fetched over the command channel and pinned, then a
one-token chat goes through the gateway trusting only that certificate.

A time-out names the stage that stalled and shows the last log lines of that stage.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import botocore.exceptions
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from ..aws.clients import ClientFactory, aws_errors
from ..deployment import Deployment
from ..errors import ChannelError, CheckFailed
from ..keys.secret import secret_store
from .channel.base import CommandChannel
from .endpoint import pin_certificate, pinned_client
from .health import (
    CERT_MISMATCH,
    KEY_WRONG,
    check_chat,
    check_command_channel,
    check_health_endpoint,
    check_tls,
)
from .probe import require_instance
from .status import STAGE_NAMES, BootstrapStatus, read_certificate, read_log, read_status

LOG_LINES = 20


class Stalled(CheckFailed):
    """The wait timed out; ``stage`` is the one that did not finish."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage


def stage_labels(deployment: Deployment) -> dict[str, str]:
    """Stage key -> what the display calls it."""
    engine = "vLLM" if deployment.engine == "vllm" else "SGLang"
    channel = {"ssm": "SSM online", "ssh": "SSH answering"}.get(
        deployment.transport, "commands answering"
    )
    return {
        "instance": "instance running",
        "channel": channel,
        "packages": "packages installed",
        "model": "model downloaded",
        "configure": "gateway configured",
        "engine": f"{engine} started",
        "ready": f"{engine} loading (ready when it answers on the instance)",
        "endpoint": "endpoint answering (TLS pinned)",
    }


@dataclass
class _Clock:
    """The deadline shared by every stage."""

    deadline: float
    poll_interval: float

    @property
    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def pause(self) -> bool:
        """Sleep one poll interval; False when the deadline has passed (no sleep past it)."""
        if self.remaining <= 0:
            return False
        time.sleep(min(self.poll_interval, self.remaining))
        return True


class _Display:
    """One progress row per stage; the model row counts bytes when the bootstrap reports them."""

    def __init__(self, console: Console, labels: dict[str, str]) -> None:
        self.progress = Progress(
            SpinnerColumn(finished_text="[green]✓"),
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[amount]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self.labels = labels
        self.tasks: dict[str, TaskID] = {
            key: self.progress.add_task(label, total=1, start=False, amount="")
            for key, label in labels.items()
        }
        self.started: set[str] = set()

    def start(self, key: str) -> None:
        if key not in self.started:
            self.started.add(key)
            self.progress.start_task(self.tasks[key])

    def done(self, key: str) -> None:
        self.start(key)
        task = self.progress.tasks[self.tasks[key]]
        total = task.total if task.total is not None else max(task.completed, 1)
        self.progress.update(self.tasks[key], total=total, completed=total)

    def bytes(self, done: int, total: int | None) -> None:
        """The model download so far (the bar fills only when the total is known)."""
        amount = f"{done / 1e9:.1f}" + (f"/{total / 1e9:.1f} GB" if total else " GB")
        self.progress.update(
            self.tasks["model"], completed=done, total=total or None, amount=amount
        )

    def fail(self, key: str) -> None:
        self.progress.update(self.tasks[key], description=f"[red]{self.labels[key]} (stalled)")


def wait_until_ready(
    deployment: Deployment,
    clients: ClientFactory,
    channel: CommandChannel,
    *,
    timeout: float,
    console: Console,
    poll_interval: float = 5.0,
    api_key: str | None = None,
) -> None:
    """Return once a one-token chat through the public endpoint works; raise :class:`Stalled`.

    ``api_key`` defaults to the current one in Secrets Manager; it is only held in memory.
    """
    clock = _Clock(time.monotonic() + timeout, poll_interval)
    labels = stage_labels(deployment)
    display = _Display(console, labels)
    with display.progress:
        try:
            _follow(deployment, clients, channel, clock, display, api_key)
            return
        except _TimedOut as exc:
            display.fail(exc.stage)  # shown while the display is still live
            stalled = exc
    message = _stall_message(stalled.stage, labels, timeout, stalled.detail, channel)
    raise Stalled(stalled.stage, message)


def _follow(
    deployment: Deployment,
    clients: ClientFactory,
    channel: CommandChannel,
    clock: _Clock,
    display: _Display,
    api_key: str | None,
) -> None:
    """Each stage in turn; raises :class:`_TimedOut` naming the one the deadline caught."""
    display.start("instance")
    _wait_instance(deployment, clients, clock)
    display.done("instance")
    display.start("channel")
    _wait_channel(deployment, clients, channel, clock)
    display.done("channel")
    _wait_bootstrap(channel, clock, display)
    display.start("endpoint")
    pin_certificate(deployment, read_certificate(channel))
    _wait_endpoint(deployment, api_key or secret_store(deployment, clients).current_value(), clock)
    display.done("endpoint")


class _TimedOut(Exception):
    """The deadline passed during ``stage``; ``detail`` says what was last seen."""

    def __init__(self, stage: str, detail: str) -> None:
        self.stage = stage
        self.detail = detail


def _wait_instance(deployment: Deployment, clients: ClientFactory, clock: _Clock) -> None:
    """EC2's ``instance_running`` waiter, with as many attempts as the deadline allows."""
    ec2 = clients.client("ec2")
    state = require_instance(ec2, deployment)["State"]["Name"]
    if state in ("stopped", "stopping"):  # the waiter would only time out on these
        raise CheckFailed(
            f"The instance {deployment.instance_id} is {state}: start it with `qwen3vl-aws start`."
        )
    delay = clock.poll_interval
    try:
        with aws_errors("Waiting for the instance"):
            ec2.get_waiter("instance_running").wait(
                InstanceIds=[deployment.instance_id],
                WaiterConfig={"Delay": delay, "MaxAttempts": max(1, int(clock.remaining // delay))},
            )
    except botocore.exceptions.WaiterError as exc:
        if "Max attempts exceeded" in str(exc):
            raise _TimedOut("instance", "the instance is not running yet") from None
        raise CheckFailed(
            f"The instance {deployment.instance_id} will not run ({exc}): "
            "re-create it with `qwen3vl-aws apply`."
        ) from None


def _wait_channel(
    deployment: Deployment, clients: ClientFactory, channel: CommandChannel, clock: _Clock
) -> None:
    """Poll health's channel check: SSM registration (``PingStatus`` Online), or a no-op command."""
    while True:
        result = check_command_channel(deployment, clients, channel)
        if result.ok:
            return
        if not clock.pause():
            raise _TimedOut("channel", result.detail)


def _wait_bootstrap(channel: CommandChannel, clock: _Clock, display: _Display) -> None:
    """Follow the status file until its ``ready`` stage is done."""
    current = STAGE_NAMES[0]
    while True:
        try:
            status = read_status(channel, timeout=max(5.0, min(60.0, clock.remaining)))
        except ChannelError as exc:  # a transient channel hiccup: retry until the deadline
            status, detail = None, str(exc)
        else:
            detail = "the bootstrap has not written its status file yet"
        if status is not None:
            _show(status, display)
            if status.failed:
                why = f": {status.failed.error}" if status.failed.error else "."
                raise CheckFailed(
                    f"Bootstrap stage {status.failed.name!r} failed on the instance{why}\n"
                    + _last_lines(channel, status.failed.name)
                    + "\nSee everything: `qwen3vl-aws logs --unit bootstrap`."
                )
            if status.ready:
                return
            current = next(n for n in STAGE_NAMES if status.stage(n).state != "done")
            detail = _describe(status, current)
        if not clock.pause():
            raise _TimedOut(current, detail)


def _describe(status: BootstrapStatus, stage: str) -> str:
    """``stage model is running (8.0 GB of 16.0 GB)``."""
    text = f"stage {stage} is {status.stage(stage).state}"
    if status.stage(stage).error:  # e.g. the AWS action the instance role was denied
        text += f"; last error: {status.stage(stage).error}"
    if stage == "model" and status.model_bytes is not None:
        total = f" of {status.model_bytes_total / 1e9:.1f} GB" if status.model_bytes_total else ""
        text += f" ({status.model_bytes / 1e9:.1f} GB{total})"
    return text


def _show(status: BootstrapStatus, display: _Display) -> None:
    for name in STAGE_NAMES:
        state = status.stage(name).state
        if state in ("running", "failed"):
            display.start(name)
        elif state == "done":
            display.done(name)
    if status.model_bytes is not None:
        display.bytes(status.model_bytes, status.model_bytes_total)


def _wait_endpoint(deployment: Deployment, api_key: str, clock: _Clock) -> None:
    """The pinned certificate matches and a one-token chat answers through the gateway."""
    while True:
        result = check_tls(deployment)
        if result.ok:
            with pinned_client(deployment, api_key) as http:
                result = check_health_endpoint(http)
                if result.ok:
                    result = check_chat(http, deployment.served_model_name)
        if result.ok:
            return
        if KEY_WRONG in result.detail or CERT_MISMATCH in result.detail:  # waiting cannot help
            raise CheckFailed(f"The endpoint check failed: {result.detail}. {result.hint}")
        if not clock.pause():
            raise _TimedOut("endpoint", f"{result.name}: {result.detail}")


def _stall_source(stage: str) -> str | None:
    """Which log tells why ``stage`` is slow (none before the channel answers)."""
    if stage in ("packages", "model", "configure"):
        return "bootstrap"
    if stage in ("engine", "ready"):
        return "engine"  # the engine unit's journal, vLLM or SGLang
    if stage == "endpoint":
        return "gateway"
    return None


def _last_lines(channel: CommandChannel, stage: str) -> str:
    source = _stall_source(stage)
    if source is None:
        return (
            "No instance logs are reachable before the command channel is up; the EC2 console "
            "output may tell: `aws ec2 get-console-output --instance-id <id> --latest`."
        )
    try:
        lines = read_log(channel, source, lines=LOG_LINES, timeout=30).lines
    except (ChannelError, CheckFailed) as exc:
        return f"(could not read the {source} log: {exc})"
    body = "\n".join(f"  {line}" for line in lines) or "  (empty)"
    return f"Last lines of the {source} log:\n{body}"


def _stall_message(
    stage: str, labels: dict[str, str], timeout: float, detail: str, channel: CommandChannel
) -> str:
    return (
        f"Timed out after {timeout:.0f} s: stage '{labels[stage]}' stalled ({detail}).\n"
        + _last_lines(channel, stage)
        + "\nKeep waiting with `qwen3vl-aws wait --timeout ...`, or look with `qwen3vl-aws logs`."
    )
