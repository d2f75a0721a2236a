"""The instance contract: its paths, unit names, bootstrap stages, installed files, name rule.

One source, ``userdata/instance.json``: read here, by ``terraform/modules/userdata`` (the files
cloud-init installs) and by the test rig (what it installs under its scratch root). The copies
that cannot read it (the Terraform variables' name validation, the bootstrap script's constants)
are held to it by ``tests/static/test_instance_contract.py``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache

from .paths import userdata_dir

#: A Hugging Face commit: what every pinned checkpoint revision (deploy.env's MODEL_REVISION,
#: DRAFT_MODEL_REVISION, versions.env's MODEL_REVISION_*) must be.
HF_COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class InstalledFile:
    """A file the instance gets from ``userdata/<source>``: stage 0 in the user data, the rest
    in the bundle stage 0 fetches from S3."""

    source: str
    mode: str


@dataclass(frozen=True)
class InstanceContract:
    name_pattern: re.Pattern[str]
    name_rule: str
    paths: dict[str, str]
    units: dict[str, str]
    stages: tuple[str, ...]
    stage0: dict[str, InstalledFile]  # in the user data: fetches and installs the bundle
    files: dict[str, InstalledFile]  # path on the instance -> where it comes from (the bundle)
    fleet_files: dict[str, InstalledFile]  # in the bundle of a fleet's replicas only


@cache
def instance_contract() -> InstanceContract:
    """The contract as ``userdata/instance.json`` states it."""
    raw = json.loads((userdata_dir() / "instance.json").read_text())
    return InstanceContract(
        name_pattern=re.compile(raw["deployment_name"]["pattern"]),
        name_rule=raw["deployment_name"]["rule"],
        paths=dict(raw["paths"]),
        units=dict(raw["units"]),
        stages=tuple(raw["stages"]),
        stage0={path: InstalledFile(**spec) for path, spec in raw["stage0"].items()},
        files={path: InstalledFile(**spec) for path, spec in raw["files"].items()},
        fleet_files={path: InstalledFile(**spec) for path, spec in raw["fleet_files"].items()},
    )
