"""The userdata module rendered by real Terraform: valid cloud-config far under EC2's 16 KB
limit, holding stage 0 and settings that survive shell quoting; the bundle stage 0 fetches
carrying the repository's files verbatim."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from qwen3vl_aws.contract import instance_contract
from qwen3vl_aws.paths import userdata_dir
from qwen3vl_aws.serving.versions import pinned_versions
from userdata_render import DEFAULT_INPUTS, Rendered, RenderFailed, render, stage

from rig.gateway import install_instance

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


def test_gzip_output_is_the_document_and_far_under_ec2_limit(rendered: Rendered):
    """The user data carries only stage 0, deploy.env and the boot unit: it must leave the
    instance's files all the room to grow in the bundle, so a quarter of EC2's limit at most."""
    raw = base64.b64decode(rendered.base64gzip)
    assert gzip.decompress(raw).decode() == rendered.text
    assert len(raw) <= EC2_USER_DATA_LIMIT // 4, f"{len(raw)} bytes of gzip'd user data"


def test_user_data_holds_stage0_deploy_env_and_the_boot_unit_verbatim(rendered: Rendered):
    files = write_files(rendered.text)
    source = userdata_dir()
    contract = instance_contract()
    boot_unit = f"/etc/systemd/system/{contract.units['bootstrap']}"
    assert set(files) == {*contract.stage0, contract.paths["deploy_env"], boot_unit}
    for path, spec in contract.stage0.items():
        assert files[path]["content"] == (source / spec.source).read_text(), path
        assert files[path]["permissions"] == spec.mode
    unit = (source / "share" / contract.units["bootstrap"]).read_text()
    assert files[boot_unit]["content"] == unit.replace("@ROOT@", "")


def test_the_bundle_is_exactly_the_contracts_files_as_in_the_repository(rendered: Rendered):
    bundle = json.loads(rendered.bundle)
    source = userdata_dir()
    expected = instance_contract().files
    assert set(bundle) == set(expected)
    for path, spec in expected.items():
        assert bundle[path] == {"mode": spec.mode, "content": (source / spec.source).read_text()}
    assert rendered.bundle_sha256 == hashlib.sha256(rendered.bundle.encode()).hexdigest()


def test_the_rig_installs_exactly_what_the_bundle_carries(rendered: Rendered, tmp_path: Path):
    """The node tests install from the repository (rig.gateway.install_instance), the instance
    from the bundle: both are the contract's files (the rig adds the fleet agent's, which a
    single instance's bundle leaves out)."""
    install_instance(tmp_path, {"DEPLOYMENT_NAME": "rig"})
    installed = {"/" + str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
    contract = instance_contract()
    assert (
        installed - {contract.paths["deploy_env"]} - set(contract.fleet_files)
        == set(json.loads(rendered.bundle))
        == set(contract.files)
    )


def test_the_stage0_scripts_pass_shellcheck_and_py_compile(rendered: Rendered, tmp_path: Path):
    """What the instance runs before anything else, as the user data carries it."""
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is missing: apt-get install shellcheck"
    checked = []
    for path, entry in write_files(rendered.text).items():
        copy = tmp_path / Path(path).name
        copy.write_text(entry["content"])
        if entry["content"].startswith("#!/usr/bin/env bash"):
            checker = [shellcheck, "--severity=style"]
        elif path.endswith(".py"):
            checker = [sys.executable, "-m", "py_compile"]
        else:
            continue
        result = subprocess.run([*checker, str(copy)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, (path, result.stdout + result.stderr)
        checked.append(path)
    assert sorted(checked) == sorted(p for p in instance_contract().stage0 if "/sbin/" in p), (
        "both stage-0 scripts are checked"
    )


def test_the_stage0_drop_in_runs_the_fetch_before_the_bootstrap(rendered: Rendered):
    contract = instance_contract()
    (drop_in,) = [p for p in contract.stage0 if p.endswith(".conf")]
    assert drop_in.startswith(f"/etc/systemd/system/{contract.units['bootstrap']}.d/")
    content = write_files(rendered.text)[drop_in]["content"]
    (fetch,) = [p for p in contract.stage0 if p.endswith("fetch-bundle")]
    assert f"ExecStartPre={fetch}" in content.splitlines()


def test_deploy_env_round_trips_through_bash(rendered: Rendered, tmp_path: Path):
    env_file = tmp_path / "deploy.env"
    env_file.write_text(write_files(rendered.text)["/etc/qwen3vl/deploy.env"]["content"])
    names = (
        "ENGINE_ARGS",
        "DOMAIN",
        "SECRET_ARN",
        "MAX_IMAGE_PIXELS",
        "BUNDLE_BUCKET",
        "BUNDLE_KEY",
        "BUNDLE_SHA256",
        "BUNDLE_BOTO3_VERSION",
    )
    script = f'set -eu; source {env_file}; printf "%s\\n" ' + " ".join(f'"${n}"' for n in names)
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [
        " ".join(PLAN_FLAGS),
        "llm.example.com",
        DEFAULT_INPUTS["secret_arn"],
        str(DEFAULT_INPUTS["max_image_pixels"]),
        DEFAULT_INPUTS["bundle_bucket"],
        DEFAULT_INPUTS["bundle_key"],
        DEFAULT_INPUTS["bundle_sha256"],
        pinned_versions()["BOTO3_VERSION"],  # versions.env is in the bundle: stage 0 needs a copy
    ]


def test_an_eagle3_draft_and_its_revision_reach_deploy_env(
    caller: tuple[Path, Path], tmp_path: Path
):
    draft, revision = "taobao-mnn/Qwen3-VL-8B-Instruct-Eagle3", "0123456789abcdef" * 2 + "0" * 8
    env_file = tmp_path / "deploy.env"
    rendered = render(*caller, draft_model_id=draft, draft_model_revision=revision)
    env_file.write_text(write_files(rendered.text)["/etc/qwen3vl/deploy.env"]["content"])
    script = f'set -eu; source {env_file}; printf "%s\\n" "$DRAFT_MODEL_ID" "$DRAFT_MODEL_REVISION"'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [draft, revision]


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
        ({"draft_model_revision": "main"}, "draft_model_revision must be empty or a 40-character"),
        ({"bundle_sha256": "AB" * 32}, "bundle_sha256 must be 64 lowercase hex digits"),
        ({"bundle_bucket": "Bad_Bucket"}, "bundle_bucket must be an S3 bucket name"),
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


def test_a_fleet_replicas_bundle_carries_the_agent_and_its_user_data_still_fits(caller):
    fleet = render(
        *caller, engine_args=PLAN_FLAGS, public_host="fleettest-1.us-east-1.elb.amazonaws.com",
        fleet=FLEET,
    )  # fmt: skip
    assert len(base64.b64decode(fleet.base64gzip)) <= 16384
    bundle = json.loads(fleet.bundle)
    source = userdata_dir()
    for name in ("bin/qwen3vl-fleet", "share/qwen3vl-fleet-publish.service",
                 "share/qwen3vl-fleet-publish.timer", "share/qwen3vl-fleet-drain.service",
                 "share/qwen3vl-fleet-drain.timer"):  # fmt: skip
        path = f"/opt/qwen3vl/{name}"
        assert bundle[path]["content"] == (source / name).read_text(), path
    deploy_env = write_files(fleet.text)["/etc/qwen3vl/deploy.env"]["content"]
    assert "FLEET_GROUP='qwen3vl-fleet'" in deploy_env
