"""The bootstrap's S3 model-cache glue, run for real against moto with the tools' real boto3
(system commands stubbed): the first instance downloads from the hub and fills the cache after
ready; the next instance pulls from S3, never touches the hub, and looks for its compile cache."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from qwen3vl_aws.keys.keygen import generate_key
from qwen3vl_aws.serving.versions import pinned_versions
from test_userdata_scripts import settings, stub_path

from rig.gateway import install_instance

pytestmark = pytest.mark.slow

BUCKET = "qwen3vl-models-123456789012-us-east-1"
REVISION = "c" * 40
PREFIX = f"models/Qwen/Qwen3-VL-8B-Instruct/{REVISION}/"


def boot(
    tmp_path: Path, name: str, moto: str
) -> tuple[Path, list[str], subprocess.CompletedProcess]:
    """A fresh instance root booted once; returns (root, the stubbed calls, the run). Its key
    sync (real boto3 too) reads a secret made here."""
    root = tmp_path / name
    secret = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name=f"qwen3vl/{name}", SecretString=generate_key()
    )["ARN"]
    install_instance(
        root,
        settings(
            root,
            MODEL_CACHE_BUCKET=BUCKET,
            MODEL_REVISION=REVISION,
            SECRET_ARN=secret,
            KEYSYNC_ATTEMPTS="2",
        ),
    )
    tools = root / "opt/qwen3vl/tools/bin"
    tools.mkdir(parents=True)
    (tools / "python").symlink_to(sys.executable)  # the dev venv's python: it has boto3
    work = tmp_path / f"{name}-work"
    work.mkdir()
    bin_dir = stub_path(work)
    log = work / "calls.jsonl"
    log.write_text("")
    state = work / "state"
    state.mkdir()
    env = {
        "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
        "QWEN3VL_ROOT": str(root),
        "STUB_LOG": str(log),
        "STUB_STATE": str(state),
        "STUB_UV_VERSION": pinned_versions()["UV_VERSION"],
        "HOME": str(root),
        "AWS_ENDPOINT_URL": moto,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": str(work / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(work / "none"),
    }
    run = subprocess.run(
        [str(root / "opt/qwen3vl/bin/qwen3vl-bootstrap")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    calls = [" ".join(json.loads(line)["argv"]) for line in log.read_text().splitlines()]
    return root, calls, run


def status(root: Path) -> dict:
    return json.loads((root / "var/lib/qwen3vl/status.json").read_text())


def test_first_instance_fills_the_cache_and_the_next_one_loads_from_it(
    aws_env: str, tmp_path: Path
) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)

    first, calls, run = boot(tmp_path, "first", aws_env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert any(
        c.startswith("hf download Qwen/Qwen3-VL-8B-Instruct ") and f"--revision {REVISION}" in c
        for c in calls
    )
    assert status(first)["weights"]["source"] == "hub"
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    assert keys == [PREFIX + ".qwen3vl-complete", PREFIX + "model.safetensors"]
    engine_env = (first / "etc/qwen3vl/engine.env").read_text()
    assert "--load-format runai_streamer --model-loader-extra-config" in engine_env

    second, calls, run = boot(tmp_path, "second", aws_env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert not any(c.startswith("hf ") for c in calls)  # no hub traffic at all
    record = status(second)
    assert record["weights"]["source"] == "s3" and record["weights"]["bytes"] == 4096
    model = second / "nvme/models/Qwen/Qwen3-VL-8B-Instruct/model.safetensors"
    assert model.read_bytes() == b"\0" * 4096
    assert record["compile_cache"] == {
        "key": record["compile_cache"]["key"],
        "restored": False,
        "reason": "no cache for this key",
    }
    assert record["compile_cache"]["key"].startswith("vllm-")
    # Nothing was uploaded twice: the cache is as the first instance left it.
    versions = s3.list_object_versions(Bucket=BUCKET)["Versions"]
    assert len(versions) == 2
