"""The engine's environment as its systemd unit gets it: engine.env rendered by the real
bootstrap (qwen3vl-bootstrap render) in a scratch instance root, read the way systemd reads an
EnvironmentFile. The rig's vLLM servers run with it, so the node tests exercise the instance's
pixel cap, media guard and fetch settings, not looser defaults."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

from .gateway import GatewayRigError, install_instance, run_script
from .vllm import server_env

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


def unit_environment(root: Path) -> dict[str, str]:
    """engine.env as systemd passes it (bash parses the same quoting), over the CPU rig's
    settings (offline, no thread pinning on this shared machine)."""
    script = f"set -a; source {root}/etc/qwen3vl/engine.env; env -0"
    out = subprocess.run(["env", "-i", "bash", "-c", script], capture_output=True, check=True)
    unit_env = dict(item.split("=", 1) for item in out.stdout.decode().split("\0") if item)
    for name in ("PWD", "SHLVL", "_"):
        unit_env.pop(name, None)
    return {**server_env(), **unit_env}


def served_engine_env(root: Path) -> dict[str, str]:
    """The unit's environment minus the launcher's keys: what `vllm serve` runs with."""
    env = unit_environment(root)
    for name in _LAUNCHER_KEYS:
        env.pop(name, None)
    return env
