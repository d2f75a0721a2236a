"""The AWS emulator as the integration tests see it: constants, an SDK/CLI handle, inventory."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rig.emulator import (  # noqa: F401 (re-exported for the tests)
    MOTO_DLAMI,
    MOTO_DLAMI_NAME,
    MOTO_DLAMI_OWNER,
    REGION,
    leftover_resources,
)
from rig.iam.emulator import EnforcingEmulator

CLI = str(Path(sys.executable).parent / "qwen3vl-aws")


@dataclass
class Emulator:
    """The AWS emulator and an environment pointing every SDK (and Terraform) at it."""

    url: str
    env: dict[str, str]
    home: Path
    #: The enforcing emulator (rig.iam) the CLI runs against as the operator.
    iam: EnforcingEmulator

    def client(self, service: str, region: str = REGION) -> Any:
        """A client for the tests' own setup and inspection (the admin, under enforcement)."""
        import boto3

        creds = self.iam.admin
        return boto3.session.Session(
            aws_access_key_id=creds.access_key_id,
            aws_secret_access_key=creds.secret_access_key,
            region_name=region,
        ).client(service, endpoint_url=self.url)

    def run(self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None):
        """Run the installed ``qwen3vl-aws`` like a user would; returns the CompletedProcess."""
        return subprocess.run(
            [CLI, *args],
            input=stdin if stdin is not None else "",
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )


def created_resources(emulator: Emulator, region: str = REGION) -> dict[str, list[str]]:
    """Everything an apply could have left behind, by kind (empty lists = nothing created)."""
    return leftover_resources(lambda service: emulator.client(service, region))


def nothing_created(emulator: Emulator, region: str = REGION) -> bool:
    return not any(created_resources(emulator, region).values())
