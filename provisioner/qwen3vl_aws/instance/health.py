"""Does the endpoint work, and if not, where is it stuck: one small function per check.

Checks run from the outside in: the instance (EC2), its command channel (SSM registration), what
the instance says about itself (bootstrap stages, units, GPUs: one channel round trip), then the
public endpoint as a client sees it. A check that cannot mean anything because an earlier one failed
(no endpoint checks against a stopped instance, no request to an endpoint whose certificate is not
the pinned one) is reported as not attempted, naming the reason, and counts as not passing.

HTTPS trusts exactly the pinned certificate (``Deployment.cert_path``); never ``verify=False``.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import httpx

from ..aws.clients import ClientFactory, aws_errors
from ..deployment import Deployment
from ..errors import AwsError, ChannelError, CheckFailed, Qwen3vlError
from ..keys.secret import secret_store
from .certificate import RENEW_HINT, expiry_status, inspect_certificate
from .channel.base import CommandChannel
from .check_result import CheckResult
from .endpoint import endpoint_base, fetch_endpoint_certificate, fingerprint, pinned_client
from .probe import describe_instance
from .sample_image import tiny_png
from .status import (
    ENGINE_UNIT,
    GATEWAY_UNIT,
    STAGE_NAMES,
    BootstrapStatus,
    Section,
    now_utc,
    parse_gpus,
    parse_status,
    parse_unit_states,
    read_snapshot,
)
from .timeline import describe_weights

CERT_MISMATCH = "certificate mismatch: the endpoint is not trusted"
KEY_WRONG = "the key is wrong"


def _fail(name: str, detail: str, hint: str, latency_s: float | None = None) -> CheckResult:
    return CheckResult(name, False, detail, latency_s, hint)


def _not_attempted(name: str, reason: str) -> CheckResult:
    return CheckResult(name, False, f"not attempted: {reason}", hint=None, attempted=False)


# --- AWS side ---------------------------------------------------------------------------------


def check_instance(deployment: Deployment, ec2: Any) -> CheckResult:
    """The EC2 instance exists and is running."""
    name = "instance"
    if not deployment.instance_id:
        return _fail(name, "no instance recorded", "Run `qwen3vl-aws apply`.")
    try:
        instance = describe_instance(ec2, deployment.instance_id)
    except AwsError as exc:
        return _fail(name, str(exc), "Check your AWS credentials and region.")
    if instance is None:
        return _fail(name, f"{deployment.instance_id} no longer exists", "`qwen3vl-aws apply`.")
    state = instance["State"]["Name"]
    detail = f"{deployment.instance_id} {state} ({deployment.instance_type})"
    if state == "running":
        return CheckResult(name, True, detail)
    hints = {
        "stopped": "Start it: `qwen3vl-aws start`.",
        "stopping": "It is stopping; start it again with `qwen3vl-aws start` once stopped.",
        "pending": "It is starting: `qwen3vl-aws wait`.",
    }
    return _fail(name, detail, hints.get(state, "Re-create it: `qwen3vl-aws apply`."))


def check_ssm(deployment: Deployment, ssm: Any) -> CheckResult:
    """The SSM agent has registered the instance and pings Online."""
    name = "ssm"
    try:
        with aws_errors("Asking SSM about the instance"):
            info = ssm.describe_instance_information(
                Filters=[{"Key": "InstanceIds", "Values": [deployment.instance_id]}]
            )["InstanceInformationList"]
    except AwsError as exc:
        return _fail(name, str(exc), "Your credentials need ssm:DescribeInstanceInformation.")
    if not info:
        return _fail(
            name,
            "not registered with SSM",
            "A new instance needs a minute or two; otherwise check the SSM agent, the instance "
            "role's ssm-agent policy (ssm:UpdateInstanceInformation, ec2messages, ssmmessages) "
            "and its route to the SSM endpoints.",
        )
    ping = info[0].get("PingStatus", "Unknown")
    agent = info[0].get("AgentVersion", "?")
    if ping == "Online":
        return CheckResult(name, True, f"Online (agent {agent})")
    return _fail(name, f"{ping} (agent {agent})", "The agent lost contact: check the instance.")


def check_channel(channel: CommandChannel) -> CheckResult:
    """For SSH: the command channel runs a trivial command."""
    started = time.perf_counter()
    try:
        channel.run("true", timeout=30).check("A no-op command")
    except ChannelError as exc:
        return _fail("channel", str(exc), "Check the SSH user, key and security group.")
    return CheckResult("channel", True, "commands run", time.perf_counter() - started)


def check_command_channel(
    deployment: Deployment, clients: ClientFactory, channel: CommandChannel
) -> CheckResult:
    """The instance can be reached: SSM registration for SSM deployments, else a no-op command."""
    if deployment.transport == "ssm":
        return check_ssm(deployment, clients.client("ssm"))
    return check_channel(channel)


# --- what the instance says about itself ------------------------------------------------------


def describe_stages(status: BootstrapStatus) -> str:
    """``packages 84s, model 212s, ...``: how long each stage took (so far)."""
    now = now_utc()
    parts = []
    for stage in STAGE_NAMES:
        took = status.stage(stage).duration(now)
        if took is not None:
            parts.append(f"{stage} {took:.0f}s")
    return ", ".join(parts)


def check_bootstrap(section: Section) -> CheckResult:
    """The bootstrap reached ``ready``; shows each stage's duration."""
    name = "bootstrap"
    if section.exit_code != 0:
        return _fail(
            name,
            "no status file yet",
            "cloud-init has not started the bootstrap: `qwen3vl-aws logs --unit bootstrap`.",
        )
    try:
        status = parse_status(section.output)
    except CheckFailed as exc:
        return _fail(name, str(exc), "`qwen3vl-aws logs --unit bootstrap`.")
    durations = describe_stages(status)
    if status.failed:
        return _fail(
            name,
            f"stage {status.failed.name} failed ({durations})",
            "See why: `qwen3vl-aws logs --unit bootstrap`.",
        )
    if not status.ready:
        return _fail(name, f"at stage {status.reached} ({durations})", "`qwen3vl-aws wait`.")
    weights = describe_weights(status.weights)
    return CheckResult(
        name, True, f"ready ({durations})" + (f"; weights: {weights}" if weights else "")
    )


def check_units(section: Section) -> CheckResult:
    """The engine and gateway units are active and running."""
    name = "units"
    units = parse_unit_states(section.output)
    labels = {ENGINE_UNIT: "engine", GATEWAY_UNIT: "gateway"}
    states = {label: units.get(unit) for unit, label in labels.items()}
    detail = ", ".join(f"{k} {v.describe() if v else 'unknown'}" for k, v in states.items())
    down = [label for label, unit in states.items() if unit is None or not unit.running]
    if section.exit_code != 0 and not units:
        return _fail(name, section.output.strip()[-200:] or "systemctl failed", "Check the host.")
    if down:
        return _fail(name, detail, f"See why: `qwen3vl-aws logs --unit {down[0]}`.")
    return CheckResult(name, True, detail)


def check_gpu(section: Section) -> CheckResult:
    """nvidia-smi sees the GPUs; shows memory in use."""
    name = "gpu"
    hint = (
        "The NVIDIA driver is not working: check the AMI and `qwen3vl-aws logs --unit bootstrap`."
    )
    if section.exit_code != 0:
        return _fail(name, f"nvidia-smi failed: {section.output.strip()[-200:]}", hint)
    try:
        gpus = parse_gpus(section.output)
    except CheckFailed as exc:
        return _fail(name, str(exc), hint)
    if not gpus:
        return _fail(name, "nvidia-smi lists no GPU", hint)
    detail = "; ".join(
        f"{g.name} {g.memory_used_mib}/{g.memory_total_mib} MiB in use" for g in gpus
    )
    return CheckResult(name, True, detail)


# --- the public endpoint ----------------------------------------------------------------------


def check_tls(deployment: Deployment) -> CheckResult:
    """The endpoint presents exactly the certificate pinned from the instance, and it has not
    expired (passes with a hint to renew during its last 30 days)."""
    name = "tls"
    if not deployment.cert_path.is_file():
        return _fail(
            name,
            f"no pinned certificate at {deployment.cert_path}",
            "Fetch and pin it from the instance: `qwen3vl-aws wait`.",
        )
    base = endpoint_base(deployment)
    started = time.perf_counter()
    try:
        presented = fetch_endpoint_certificate(base)
    except OSError as exc:
        return _fail(
            name,
            f"cannot connect to {base}: {exc}",
            "Is your address in the allowed CIDRs (`apply --allow`), and is the gateway running?",
        )
    latency = time.perf_counter() - started
    pinned = fingerprint(deployment.cert_path.read_text())
    if fingerprint(presented) != pinned:
        return _fail(
            name,
            f"{CERT_MISMATCH} (pinned sha256 {pinned[:16]}...)",
            "Something other than your instance answers, or the instance was re-created: run "
            "`qwen3vl-aws wait` to re-pin from the instance over the command channel. "
            "No key was sent.",
            latency,
        )
    state, expiry = expiry_status(inspect_certificate(deployment.cert_path.read_text()), now_utc())
    detail = f"matches the pinned sha256 {pinned[:16]}...; {expiry}"
    if state == "expired":
        return _fail(name, detail, RENEW_HINT, latency)
    hint = RENEW_HINT if state == "warn" else None
    return CheckResult(name, True, detail, latency, hint, warning=state == "warn")


def _timed(
    request: Callable[[], httpx.Response],
) -> tuple[httpx.Response | None, float, str | None]:
    started = time.perf_counter()
    try:
        response = request()
    except httpx.HTTPError as exc:
        return None, time.perf_counter() - started, f"{type(exc).__name__}: {exc}"
    return response, time.perf_counter() - started, None


KEY_WRONG_HINT = (
    "The gateway rejected the key. Check the key you gave; otherwise the instance has not picked "
    "up the current secret version: `qwen3vl-aws exec /opt/qwen3vl/bin/qwen3vl-keysync`."
)


def _http_failure(
    name: str, response: httpx.Response | None, error: str | None, latency: float
) -> CheckResult:
    """A failed request as a check result, saying what the status means."""
    if response is None:
        return _fail(
            name, error or "no response", "Is the gateway up? `qwen3vl-aws logs --unit gateway`."
        )
    if response.status_code in (401, 403):
        return _fail(name, f"HTTP {response.status_code}: {KEY_WRONG}", KEY_WRONG_HINT, latency)
    if response.status_code in (502, 503, 504):
        return _fail(
            name,
            f"HTTP {response.status_code}: the gateway cannot reach the engine",
            "The engine is down or still loading: `qwen3vl-aws logs --unit engine`.",
            latency,
        )
    return _fail(
        name,
        f"HTTP {response.status_code}: {response.text[:200]}",
        "`qwen3vl-aws logs --unit gateway`.",
        latency,
    )


def check_health_endpoint(http: httpx.Client) -> CheckResult:
    """``GET /health`` through the gateway."""
    response, latency, error = _timed(lambda: http.get("/health"))
    if response is not None and response.status_code == 200:
        return CheckResult("health", True, "HTTP 200", latency)
    return _http_failure("health", response, error, latency)


def check_models(http: httpx.Client, served_model: str) -> CheckResult:
    """``GET /v1/models`` with the key lists the served model."""
    name = "models"
    response, latency, error = _timed(lambda: http.get("/v1/models"))
    if response is None or response.status_code != 200:
        return _http_failure(name, response, error, latency)
    ids = [m.get("id") for m in response.json().get("data", [])]
    if served_model not in ids:
        return _fail(
            name,
            f"serves {ids}, not {served_model!r}",
            "The engine was started with another model name: check /etc/qwen3vl/engine.env.",
            latency,
        )
    return CheckResult(name, True, f"lists {served_model}", latency)


def _chat(http: httpx.Client, name: str, served_model: str, content: Any) -> CheckResult:
    payload = {
        "model": served_model,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": 1,
        "temperature": 0,
    }
    response, latency, error = _timed(lambda: http.post("/v1/chat/completions", json=payload))
    if response is None or response.status_code != 200:
        return _http_failure(name, response, error, latency)
    choices = response.json().get("choices") or []
    if not choices:
        return _fail(name, "answer has no choices", "`qwen3vl-aws logs --unit engine`.", latency)
    usage = response.json().get("usage") or {}
    detail = f"1 token in {latency * 1000:.0f} ms"
    if usage.get("prompt_tokens"):
        detail += f" ({usage['prompt_tokens']} prompt tokens)"
    return CheckResult(name, True, detail, latency)


def check_chat(http: httpx.Client, served_model: str) -> CheckResult:
    """A one-token text chat."""
    return _chat(http, "chat", served_model, "Reply with one word: ready?")


def check_image_chat(http: httpx.Client, served_model: str) -> CheckResult:
    """A one-token chat about a small generated image."""
    url = "data:image/png;base64," + base64.b64encode(tiny_png()).decode()
    content = [
        {"type": "text", "text": "One word: what colour dominates this image?"},
        {"type": "image_url", "image_url": {"url": url}},
    ]
    return _chat(http, "image-chat", served_model, content)


# --- running them all -------------------------------------------------------------------------

#: With ``deep``: the engine's memory accounting and whole-process GPU use (``engine_checks``).
DEEP_CHECK_NAMES = ("engine-memory", "gpu-processes")
CHECK_NAMES = (
    "instance",
    "ssm",
    "bootstrap",
    "units",
    "gpu",
    "kv-cache",
    "tls",
    "health",
    "models",
    "chat",
    "image-chat",
)


def run_checks(
    deployment: Deployment,
    clients: ClientFactory,
    channel: CommandChannel,
    *,
    api_key: str | None,
    deep: bool = False,
) -> list[CheckResult]:
    """Every check in order; later ones are not attempted when what they need failed.

    ``api_key`` defaults to the current one in Secrets Manager, read once the endpoint is trusted.
    ``deep`` adds :data:`DEEP_CHECK_NAMES` (one more channel round trip).
    """
    results = [check_instance(deployment, clients.client("ec2"))]
    running = results[0].ok
    results.append(
        check_command_channel(deployment, clients, channel)
        if running
        else _not_attempted(
            "ssm" if deployment.transport == "ssm" else "channel", "the instance is not running"
        )
    )
    reachable = results[-1].ok
    results += _instance_checks(deployment, channel, reachable=reachable)
    results += _endpoint_checks(deployment, clients, api_key, running=running)
    if deep:
        results += _deep_checks(deployment, channel, reachable=reachable)
    return results


def _instance_checks(
    deployment: Deployment, channel: CommandChannel, *, reachable: bool
) -> list[CheckResult]:
    from ..serving.plan_record import planned_serving
    from .engine_checks import check_kv_cache

    # check name -> (snapshot section, check)
    checks: dict[str, tuple[str, Callable[[Section], CheckResult]]] = {
        "bootstrap": ("status", check_bootstrap),
        "units": ("units", check_units),
        "gpu": ("gpu", check_gpu),
        "kv-cache": (
            "metrics",
            lambda s: check_kv_cache(s, planned_serving(deployment), deployment.engine),
        ),
    }
    if not reachable:
        return [_not_attempted(n, "the command channel cannot reach the instance") for n in checks]
    try:
        snapshot = read_snapshot(channel)
    except ChannelError as exc:
        return [_fail(n, str(exc), "Run `qwen3vl-aws health` again.") for n in checks]
    return _section_checks(checks, snapshot)


def _section_checks(
    checks: dict[str, tuple[str, Callable[[Section], CheckResult]]],
    snapshot: dict[str, Section],
) -> list[CheckResult]:
    return [
        check(snapshot[section])
        if section in snapshot
        else _fail(name, "missing from the instance's answer", "Run `qwen3vl-aws health` again.")
        for name, (section, check) in checks.items()
    ]


def _deep_checks(
    deployment: Deployment, channel: CommandChannel, *, reachable: bool
) -> list[CheckResult]:
    from ..serving.plan_record import planned_serving
    from .engine_checks import check_engine_memory, check_gpu_processes, deep_script
    from .status import parse_sections

    if not reachable:
        reason = "the command channel cannot reach the instance"
        return [_not_attempted(n, reason) for n in DEEP_CHECK_NAMES]
    planned = planned_serving(deployment)
    checks: dict[str, tuple[str, Callable[[Section], CheckResult]]] = {
        "engine-memory": ("engine-log", lambda s: check_engine_memory(s, planned)),
        "gpu-processes": ("compute-apps", lambda s: check_gpu_processes(s, planned)),
    }
    try:
        snapshot = parse_sections(channel.run(deep_script(), timeout=60).stdout)
    except ChannelError as exc:
        return [_fail(n, str(exc), "Run `qwen3vl-aws health --deep` again.") for n in checks]
    return _section_checks(checks, snapshot)


def _endpoint_checks(
    deployment: Deployment, clients: ClientFactory, api_key: str | None, *, running: bool
) -> list[CheckResult]:
    names = ("health", "models", "chat", "image-chat")
    if not running:
        return [_not_attempted(n, "the instance is not running") for n in ("tls", *names)]
    tls = check_tls(deployment)
    if not tls.ok:
        reason = "the endpoint is not trusted (see tls)"
        return [tls, *(_not_attempted(n, reason) for n in names)]
    served = deployment.served_model_name
    try:  # read only now: a key is never sent to an endpoint that is not trusted
        api_key = api_key or secret_store(deployment, clients).current_value()
    except Qwen3vlError as exc:
        api_key, key_problem = None, f"no API key to send ({exc})"
    with pinned_client(deployment, api_key) as http:
        results = [tls, check_health_endpoint(http)]
        if api_key is None:
            return results + [_not_attempted(n, key_problem) for n in names[1:]]
        results.append(check_models(http, served))
        if results[-1].detail.endswith(KEY_WRONG):
            return results + [_not_attempted(n, KEY_WRONG) for n in names[2:]]
        results += [check_chat(http, served), check_image_chat(http, served)]
    return results
