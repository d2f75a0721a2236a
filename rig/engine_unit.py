"""The engine's environment as its systemd unit gets it: engine.env rendered by the real
bootstrap (qwen3vl-bootstrap render) in a scratch instance root, read the way systemd reads an
EnvironmentFile. The rig's vLLM servers run with it, so the node tests exercise the instance's
pixel cap, media guard and fetch settings, not looser defaults."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from .gateway import GatewayRigError, install_instance, instance_env, run_script
from .tools_env import link_tools
from .vllm import READY_TIMEOUT_S, VLLM_VENV, VllmServer, serve, server_env, vllm_python

ENGINE_ENV = "etc/qwen3vl/engine.env"
ENGINE_UNIT = "etc/systemd/system/qwen3vl-engine.service"

#: engine.env's own keys: the rig runs `vllm serve` with its flags, not the unit's ExecStart.
_LAUNCHER_KEYS = ("ENGINE", "ENGINE_PYTHON", "ENGINE_ENTRYPOINT", "ENGINE_ARGS", "ENGINE_PORT")


def engine_settings(
    model_id: str, engine_port: int, engine_args: str, **overrides: str
) -> dict[str, str]:
    """deploy.env of an instance whose engine the rig runs (no secret, no public face)."""
    return {
        "DEPLOYMENT_NAME": "engine-unit",
        "REGION": "us-east-1",
        "SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:unused",
        "ENGINE": "vllm",
        "MODEL_ID": model_id,
        "SERVED_MODEL_NAME": model_id,
        "ENGINE_ARGS": engine_args,
        "PUBLIC_HOST": "127.0.0.1",
        "DOMAIN": "",
        "PORT": "8443",
        "ALLOWED_MEDIA_DOMAINS": "",
        "ENGINE_PORT": str(engine_port),
        "GATEWAY_USER": "nobody",
        "ENGINE_USER": "nobody",
        **overrides,
    }


def render_engine(root: Path, settings: Mapping[str, str]) -> None:
    """Install the instance's files under ``root`` and run the bootstrap's render stage."""
    install_instance(root, settings)
    rendered = run_script(root, "qwen3vl-bootstrap", "render")
    if rendered.returncode != 0:
        raise GatewayRigError(f"qwen3vl-bootstrap render failed:\n{rendered.stderr}")


def engine_file_env(root: Path) -> dict[str, str]:
    """engine.env's variables as systemd passes them (bash parses the same quoting)."""
    script = f"set -a; source {root}/{ENGINE_ENV}; env -0"
    out = subprocess.run(["env", "-i", "bash", "-c", script], capture_output=True, check=True)
    unit_env = dict(item.split("=", 1) for item in out.stdout.decode().split("\0") if item)
    for name in ("PWD", "SHLVL", "_"):
        unit_env.pop(name, None)
    return unit_env


def unit_environment(root: Path) -> dict[str, str]:
    """engine.env over the CPU rig's settings (offline, no thread pinning on this shared
    machine)."""
    return {**server_env(), **engine_file_env(root)}


def served_engine_env(root: Path) -> dict[str, str]:
    """The unit's environment minus the launcher's keys: what `vllm serve` runs with."""
    env = unit_environment(root)
    for name in _LAUNCHER_KEYS:
        env.pop(name, None)
    return env


def exec_start_pre(root: Path) -> list[list[str]]:
    """The rendered engine unit's ExecStartPre commands, split as systemd splits them: prefixes
    such as ``+`` dropped (the rig runs everything as the tests' user) and ``$$`` a literal
    ``$``."""
    unit = (root / ENGINE_UNIT).read_text().splitlines()
    prefix = "ExecStartPre="
    lines = [line[len(prefix) :].lstrip("+-@:!") for line in unit if line.startswith(prefix)]
    return [[word.replace("$$", "$") for word in shlex.split(line)] for line in lines]


def run_exec_start_pre(root: Path, env: Mapping[str, str]) -> None:
    """Run the unit's ExecStartPre commands with engine.env and ``env`` (the instance role's
    credentials, the emulator's endpoint) over the instance's base environment, as systemd runs
    them before the engine; the bootstrap's tools environment is where it installs it."""
    link_tools(root)
    for command in exec_start_pre(root):
        done = subprocess.run(
            command,
            env=instance_env(root, {**engine_file_env(root), **env}),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise GatewayRigError(f"ExecStartPre {command} failed:\n{done.stderr}")


def link_engine_venv(root: Path) -> None:
    """Put the rig's CPU vLLM venv where the bootstrap installs the engine's: engine.env's
    ENGINE_PYTHON then names it."""
    vllm_python()  # fails with how to create the CPU venv when it is missing
    link = root / "opt" / "qwen3vl" / "engine"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(VLLM_VENV, target_is_directory=True)


@contextmanager
def start_engine_unit(
    root: Path,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = READY_TIMEOUT_S,
) -> Iterator[VllmServer]:
    """The unit's ExecStart, the instance's own qwen3vl-engine, with engine.env as systemd
    passes it (rendered from CPU-ready flags: :func:`rig.vllm.cpu_engine_args`) and the rig's
    vLLM venv as the engine's. No AWS variable of the tests' own environment reaches it: only
    engine.env's and ``env``'s. Yields once the engine answers /health; always stops it."""
    link_engine_venv(root)
    rig_env = {k: v for k, v in server_env().items() if not k.startswith("AWS_")}
    unit_env = {**rig_env, **engine_file_env(root), **(env or {})}
    args = unit_env["ENGINE_ARGS"].split()
    server = VllmServer(
        port=int(unit_env["ENGINE_PORT"]),
        served_model_name=_value(args, "--served-model-name"),
        model_dir=_value(args, "--model"),
        log_path=log_path,
        pid=0,
    )
    with serve([str(root / "opt/qwen3vl/bin/qwen3vl-engine")], server, unit_env, timeout) as up:
        yield up


def _value(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]
