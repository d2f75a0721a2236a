"""Install an instance's files from its real user-data into a scratch root, as cloud-init would.

The rig's ``install_instance`` copies userdata/ directly; this takes what ``apply`` actually
gave the instance (EC2's user-data: gzip, then the cloud-config's ``write_files``), so the demo
runs exactly the scripts and settings Terraform rendered.
"""

from __future__ import annotations

import gzip
import shlex
from pathlib import Path

DEPLOY_ENV = "etc/qwen3vl/deploy.env"


class UserDataError(RuntimeError):
    """The user-data is not the cloud-config the userdata module renders."""


def cloud_config(user_data: bytes) -> dict:
    """The cloud-config document in EC2 user-data (gzip-compressed or plain)."""
    import yaml

    if user_data[:2] == b"\x1f\x8b":
        user_data = gzip.decompress(user_data)
    text = user_data.decode()
    if not text.startswith("#cloud-config"):
        raise UserDataError("the user-data is not a #cloud-config document")
    return yaml.safe_load(text)


def install_write_files(root: Path, config: dict) -> list[Path]:
    """Write every ``write_files`` entry under ``root`` with its permissions; return the paths."""
    entries = config.get("write_files") or []
    if not entries:
        raise UserDataError("the cloud-config has no write_files")
    written = []
    for entry in entries:
        if entry.get("encoding"):
            raise UserDataError(f"unexpected encoding {entry['encoding']!r} for {entry['path']}")
        target = root / entry["path"].lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(entry.get("content", ""))
        target.chmod(int(str(entry.get("permissions", "0644")), 8))
        written.append(target)
    return written


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY='value'`` lines (deploy.env's format) as a dict."""
    settings = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            words = shlex.split(value)
            settings[key.strip()] = words[0] if words else ""
    return settings
