"""The ``local`` transport: the rig's "instance" is this machine under a scratch root."""

from __future__ import annotations

from pathlib import Path

import pytest
from qwen3vl_aws.deployment import Deployment
from qwen3vl_aws.errors import UsageError
from qwen3vl_aws.instance.channel.factory import channel_for

from rig.local import LocalChannel, register


@pytest.fixture(autouse=True)
def local_transport() -> None:
    register()  # what the rig does before it runs the CLI


class NoClients:
    """The local transport must not ask AWS for anything."""

    def client(self, service: str):
        raise AssertionError(f"the local transport asked for an AWS {service} client")


def local_deployment(**extra: object) -> Deployment:
    return Deployment(
        name="qwen3vl",
        region="us-east-1",
        instance_type="g5.xlarge",
        instance_id="i-0123456789abcdef0",
        transport="local",
        extra=dict(extra),
    )


def test_scripts_run_under_the_root_with_stand_ins_first_on_path(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "marker").write_text("rig\n")
    tools = tmp_path / "stand-ins"
    tools.mkdir()
    (tools / "nvidia-smi").write_text("#!/bin/bash\necho stand-in GPU\n")
    (tools / "nvidia-smi").chmod(0o755)

    deployment = local_deployment(local_root=str(root), local_path=str(tools))
    channel = channel_for(deployment, NoClients())

    assert isinstance(channel, LocalChannel)
    result = channel.run('cat "$QWEN3VL_ROOT/etc/marker"; nvidia-smi; exit 3')
    assert result.exit_code == 3
    assert result.stdout == "rig\nstand-in GPU\n"


def test_without_stand_ins_path_is_unchanged(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    channel = channel_for(local_deployment(local_root=str(tmp_path)), NoClients())
    assert channel.run('echo "$PATH"').stdout == "/usr/bin:/bin\n"


@pytest.mark.parametrize("root", [None, "", "/nonexistent/qwen3vl-root"])
def test_a_missing_root_is_refused(root: str | None) -> None:
    extra = {} if root is None else {"local_root": root}
    with pytest.raises(UsageError, match=r"local transport but its root .* is not a directory"):
        channel_for(local_deployment(**extra), NoClients())
