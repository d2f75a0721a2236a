"""Where the toolkit finds its bundled Terraform and user-data, and where it keeps state."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def bundle_dir(name: str) -> Path:
    """Return the ``terraform`` or ``userdata`` directory.

    A wheel carries them under ``_bundle/``; a source checkout (editable install) has them at the
    repository root, two levels above the package.
    """
    packaged = _PACKAGE_DIR / "_bundle" / name
    if packaged.is_dir():
        return packaged
    return _PACKAGE_DIR.parents[1] / name


def terraform_dir() -> Path:
    """The root module that ``apply`` applies."""
    return bundle_dir("terraform")


def userdata_dir() -> Path:
    """Everything that runs on the instance."""
    return bundle_dir("userdata")


def data_file(name: str) -> Path:
    """A data file shipped inside the package (catalogs, model configs)."""
    return _PACKAGE_DIR / "data" / name


def state_home() -> Path:
    """Root of per-deployment state: ``$QWEN3VL_AWS_HOME`` or the XDG state directory."""
    explicit = os.environ.get("QWEN3VL_AWS_HOME")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "qwen3vl-aws"
