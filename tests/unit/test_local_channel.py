"""The ``local`` transport: the rig's "instance" is this machine under a scratch root."""

from __future__ import annotations

import os
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


def test_the_rigs_cli_reaches_a_local_deployment(tmp_path: Path, state_home: Path) -> None:
    """`python -m rig.cli` (what `make demo` runs) is qwen3vl-aws with `local` registered."""
    import subprocess
    import sys

    root = tmp_path / "root"
    root.mkdir()
    local_deployment(local_root=str(root)).save()
    env = {**os.environ, "QWEN3VL_AWS_HOME": str(state_home)}
    repo = Path(__file__).resolve().parents[2]

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=60)

    ran = run(sys.executable, "-m", "rig.cli", "exec", "--", "bash", "-c", 'echo "$QWEN3VL_ROOT"')
    assert (ran.returncode, ran.stdout) == (0, f"{root}\n"), ran.stderr
    plain = run(str(Path(sys.executable).parent / "qwen3vl-aws"), "exec", "--", "true")
    assert plain.returncode == 2 and "Unknown transport 'local'" in plain.stderr
