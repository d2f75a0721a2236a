"""What the CLI remembers about a deployment between commands.

One directory per deployment under ``paths.state_home()``: ``deployment.json`` (below), the
Terraform state and data directory, and the pinned TLS certificate. Nothing secret is stored here.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .contract import instance_contract
from .errors import NotDeployedError, UsageError
from .paths import state_home

NAME_PATTERN = instance_contract().name_pattern
#: ``extra`` key: the ACM certificate the CLI made and imported for a fleet's listener.
IMPORTED_CERTIFICATE_KEY = "imported_certificate_arn"
DEFAULT_NAME = "qwen3vl"


def validate_name(name: str) -> str:
    """Deployment names become AWS resource names and tags: keep them short and plain."""
    if not NAME_PATTERN.match(name):
        raise UsageError(f"Invalid deployment name {name!r}: use {instance_contract().name_rule}.")
    return name


def deployment_dir(name: str) -> Path:
    """The state directory of deployment ``name`` (not created)."""
    return state_home() / validate_name(name)


@dataclass
class Deployment:
    """Settings and Terraform outputs of one deployment (no secrets)."""

    name: str
    region: str
    instance_type: str
    engine: str = "vllm"
    instance_id: str | None = None
    public_ip: str | None = None
    endpoint: str | None = None
    port: int = 443
    secret_arn: str | None = None
    transport: str = "ssm"  # or "ssh"
    ssh_user: str | None = None
    ssh_key_path: str | None = None
    served_model_name: str = "Qwen/Qwen3-VL-8B-Instruct"
    launched_at: str | None = None  # ISO 8601, UTC
    # Terraform's `fleet` output (group, load balancer, listener, target group, ...); None for a
    # single instance.
    fleet: dict[str, Any] | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def is_fleet(self) -> bool:
        return self.fleet is not None

    @property
    def publicly_trusted(self) -> bool:
        """A fleet whose listener certificate ACM issued for ``--domain`` (DNS-validated): the
        public CAs vouch for it, so clients use the system's trust store; nothing is pinned."""
        if not self.fleet or not self.fleet.get("certificate_arn"):
            return False
        return self.fleet["certificate_arn"] != self.extra.get(IMPORTED_CERTIFICATE_KEY)

    @property
    def directory(self) -> Path:
        return deployment_dir(self.name)

    @property
    def cert_path(self) -> Path:
        """The endpoint's TLS certificate, fetched from the instance and pinned by clients."""
        return self.directory / "endpoint-cert.pem"

    def save(self) -> Path:
        """Write ``deployment.json`` atomically."""
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / "deployment.json"
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        os.replace(tmp, target)
        return target


def load_deployment(name: str) -> Deployment:
    """Read a recorded deployment, or say how to create one."""
    path = deployment_dir(name) / "deployment.json"
    if not path.is_file():
        raise NotDeployedError(
            f"No deployment named {name!r} is recorded in {path.parent}. "
            "Run `qwen3vl-aws apply` first, or pass --name."
        )
    raw = json.loads(path.read_text())
    known = {f.name for f in fields(Deployment)}
    return Deployment(**{k: v for k, v in raw.items() if k in known})
