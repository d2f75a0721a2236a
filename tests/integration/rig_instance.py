"""The instance's scripts run here against the emulator with the instance role's credentials."""

from __future__ import annotations

from pathlib import Path

from rig.gateway import Gateway, emulator_env, write_deploy_env
from rig.iam.emulator import Credentials


def instance_rig(root: Path, url: str, creds: Credentials, secret_arn: str) -> Gateway:
    """The instance's files rendered in ``root``, reading ``secret_arn`` as the role ``creds``."""
    env = {**emulator_env(url, root), **creds.env()}
    gateway = Gateway(root / "root", 8443, 8000, "qwen3-vl", env)
    gateway.render()
    gateway.secret_arn = secret_arn
    write_deploy_env(gateway.root, gateway.settings())
    return gateway
