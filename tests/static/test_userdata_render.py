"""The userdata module rendered by real Terraform: valid cloud-config, under EC2's 16 KB limit,
carrying the repository's files verbatim and settings that survive shell quoting."""

from __future__ import annotations

import base64
import gzip
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from qwen3vl_aws.paths import userdata_dir
from userdata_render import DEFAULT_INPUTS, Rendered, RenderFailed, render, stage

EC2_USER_DATA_LIMIT = 16384
PLAN_FLAGS = [
    "--tensor-parallel-size", "1",
    "--max-model-len", "5120",
    "--gpu-memory-utilization", "0.9",
    "--enable-prefix-caching",
    "--limit-mm-per-prompt.video", "0",
    "--mm-processor-kwargs", '{"images_kwargs":{"max_pixels":4454400}}',
]  # fmt: skip


@pytest.fixture(scope="module")
def caller(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("userdata-render")
    return stage(work), work


@pytest.fixture(scope="module")
def rendered(caller: tuple[Path, Path]) -> Rendered:
    return render(*caller, engine_args=PLAN_FLAGS, domain="llm.example.com")


def write_files(doc: str) -> dict[str, dict[str, str]]:
    return {f["path"]: f for f in yaml.safe_load(doc)["write_files"]}


def test_cloud_init_schema_accepts_the_rendered_document(rendered: Rendered, tmp_path: Path):
    cloud_init = shutil.which("cloud-init")
    assert cloud_init, "cloud-init is missing: apt-get install cloud-init"
    path = tmp_path / "user-data.yaml"
    path.write_text(rendered.text)
    result = subprocess.run(
        [cloud_init, "schema", "-c", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid cloud-config" in result.stdout


def test_gzip_output_is_the_document_and_fits_ec2_limit(rendered: Rendered):
    raw = base64.b64decode(rendered.base64gzip)
    assert gzip.decompress(raw).decode() == rendered.text
    assert len(raw) <= EC2_USER_DATA_LIMIT, f"{len(raw)} bytes of gzip'd user data"


#: The userdata module's pattern (modules/userdata/main.tf, local.comment_line), in Python.
COMMENT_LINE = re.compile(r"(?m)^[ \t]*#([^!\n][^\n]*)?\n")


def test_instance_files_are_the_repository_files(rendered: Rendered):
    files = write_files(rendered.text)
    source = userdata_dir()
    guard = "qwen3vl_media_guard-1.0.dist-info"
    expected = {
        "/opt/qwen3vl/bin/qwen3vl-bootstrap": source / "bin" / "qwen3vl-bootstrap",
        "/opt/qwen3vl/bin/qwen3vl-keysync": source / "bin" / "qwen3vl-keysync",
        "/opt/qwen3vl/bin/qwen3vl-secret": source / "bin" / "qwen3vl-secret",
        "/opt/qwen3vl/bin/qwen3vl-engine": source / "bin" / "qwen3vl-engine",
        "/opt/qwen3vl/bin/qwen3vl-modelcache": source / "bin" / "qwen3vl-modelcache",
        "/opt/qwen3vl/share/versions.env": source / "versions.env",
        "/opt/qwen3vl/share/gateway.conf": source / "share" / "gateway.conf",
        "/opt/qwen3vl/share/qwen3vl-engine.service": source / "share" / "qwen3vl-engine.service",
        "/opt/qwen3vl/share/qwen3vl-gateway.service": source / "share" / "qwen3vl-gateway.service",
        "/opt/qwen3vl/share/qwen3vl-bootstrap.service": (
            source / "share" / "qwen3vl-bootstrap.service"
        ),
        "/opt/qwen3vl/share/logrotate.conf": source / "share" / "logrotate.conf",
        "/opt/qwen3vl/lib/python/qwen3vl_media_guard.py": source / "lib" / "qwen3vl_media_guard.py",
        f"/opt/qwen3vl/lib/python/{guard}/METADATA": source / "lib" / guard / "METADATA",
        f"/opt/qwen3vl/lib/python/{guard}/entry_points.txt": (
            source / "lib" / guard / "entry_points.txt"
        ),
    }
    boot_unit = (source / "share" / "qwen3vl-bootstrap.service").read_text()
    assert files["/etc/systemd/system/qwen3vl-bootstrap.service"]["content"] == strip_comments(
        boot_unit.replace("@ROOT@", "")
    )
    assert set(files) == {
        *expected,
        "/etc/qwen3vl/deploy.env",
        "/etc/systemd/system/qwen3vl-bootstrap.service",
    }
    for path, origin in expected.items():
        assert files[path]["content"] == strip_comments(origin.read_text()), path
        assert files[path]["permissions"] == ("0755" if "/bin/" in path else "0644")


def strip_comments(text: str) -> str:
    """The instance's copy of a file: full-line comments dropped (shebangs kept)."""
    return COMMENT_LINE.sub("", text)


def test_comment_stripping_keeps_shebangs_code_and_trailing_comments() -> None:
    text = "#!/bin/bash\n# a comment\n  # indented\nx=1  # trailing\n#\necho '#x'\n"
    assert strip_comments(text) == "#!/bin/bash\nx=1  # trailing\necho '#x'\n"


def test_the_instance_copies_of_the_scripts_still_parse(rendered: Rendered, tmp_path: Path):
    """What the instance runs is the stripped copy: bash and Python must still accept it."""
    for path, entry in write_files(rendered.text).items():
        if "/bin/" not in path:
            continue
        copy = tmp_path / Path(path).name
        copy.write_text(entry["content"])
        checker = (
            ["bash", "-n"]
            if entry["content"].startswith("#!/usr/bin/env bash")
            else [sys.executable, "-m", "py_compile"]
        )
        result = subprocess.run([*checker, str(copy)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, (path, result.stderr)


def test_deploy_env_round_trips_through_bash(rendered: Rendered, tmp_path: Path):
    env_file = tmp_path / "deploy.env"
    env_file.write_text(write_files(rendered.text)["/etc/qwen3vl/deploy.env"]["content"])
    names = ("ENGINE_ARGS", "DOMAIN", "SECRET_ARN", "MAX_IMAGE_PIXELS")
    script = f'set -eu; source {env_file}; printf "%s\\n" ' + " ".join(f'"${n}"' for n in names)
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [
        " ".join(PLAN_FLAGS),
        "llm.example.com",
        DEFAULT_INPUTS["secret_arn"],
        str(DEFAULT_INPUTS["max_image_pixels"]),
    ]


def test_an_eagle3_draft_reaches_deploy_env(caller: tuple[Path, Path], tmp_path: Path):
    draft = "taobao-mnn/Qwen3-VL-8B-Instruct-Eagle3"
    env_file = tmp_path / "deploy.env"
    rendered = render(*caller, draft_model_id=draft)
    env_file.write_text(write_files(rendered.text)["/etc/qwen3vl/deploy.env"]["content"])
    script = f'set -eu; source {env_file}; printf "%s\\n" "$DRAFT_MODEL_ID"'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [draft]


def test_bootstrap_unit_is_enabled_and_started_without_blocking_cloud_init(rendered: Rendered):
    runcmd = yaml.safe_load(rendered.text)["runcmd"]
    assert runcmd == [
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "--now", "--no-block", "qwen3vl-bootstrap.service"],
    ]
    unit = write_files(rendered.text)["/etc/systemd/system/qwen3vl-bootstrap.service"]
    assert "ExecStart=/opt/qwen3vl/bin/qwen3vl-bootstrap" in unit["content"].splitlines()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"engine_args": ["--api-key", "sk-x"]}, "nor --api-key"),
        ({"engine_args": ["--model", "x"]}, "must not set --model"),
        ({"engine_args": ["--max-model-len 8192"]}, "without whitespace"),
        ({"engine_args": ["--x=$(reboot)"]}, "without whitespace"),
        ({"engine": "tgi"}, 'engine must be "vllm" or "sglang"'),
        ({"public_host": "not-an-ip"}, "public_host must be an IPv4 address"),
        ({"domain": "Bad_Domain"}, "domain must be a lowercase DNS name"),
        ({"port": 8000}, "other than 8000"),
        ({"secret_arn": "arn:aws:s3:::bucket"}, "secret_arn must be a Secrets Manager"),
        ({"served_model_name": "a'b"}, "served_model_name must be"),
        ({"allowed_media_domains": ["*.example.com"]}, "allowed_media_domains entry"),
        ({"model_cache": "tmpfs"}, 'model_cache must be "ebs" or "instance-store"'),
        ({"max_image_pixels": 1000}, "max_image_pixels must be a whole number between"),
        ({"max_image_pixels": 2.5e8}, "max_image_pixels must be a whole number between"),
        ({"draft_model_id": "no-owner"}, "draft_model_id must be empty or look like owner/name"),
    ],
)
def test_bad_inputs_fail_with_a_clear_message(
    caller: tuple[Path, Path], override: dict[str, object], message: str
):
    with pytest.raises(RenderFailed) as failure:
        render(*caller, **override)
    assert message in " ".join(str(failure.value).split())


FLEET = {
    "group_name": "qwen3vl-fleet",
    "drain_hook_name": "drain",
    "metric_namespace": "qwen3vl-aws/qwen3vl",
}


def test_a_fleet_replicas_user_data_carries_the_agent_and_still_fits(caller, tmp_path: Path):
    fleet = render(
        *caller, engine_args=PLAN_FLAGS, public_host="fleettest-1.us-east-1.elb.amazonaws.com",
        fleet=FLEET,
    )  # fmt: skip
    assert len(base64.b64decode(fleet.base64gzip)) <= 16384
    files = write_files(fleet.text)
    source = userdata_dir()
    for name in ("bin/qwen3vl-fleet", "share/qwen3vl-fleet-publish.service",
                 "share/qwen3vl-fleet-publish.timer", "share/qwen3vl-fleet-drain.service",
                 "share/qwen3vl-fleet-drain.timer"):  # fmt: skip
        path = f"/opt/qwen3vl/{name}"
        assert files[path]["content"] == (source / name).read_text(), path
    assert "FLEET_GROUP='qwen3vl-fleet'" in files["/etc/qwen3vl/deploy.env"]["content"]
