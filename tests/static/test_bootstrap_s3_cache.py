"""The bootstrap's S3 model-cache glue, run for real against moto with the tools' real boto3
(system commands stubbed): the first instance downloads from the hub and fills the cache after
ready; the next one never touches the hub and looks for its compile cache. vLLM then streams the
weights from S3 with the reader role (engine.env says how); SGLang pulls them onto local disk."""

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

from rig.engine_unit import engine_file_env
from rig.gateway import install_instance

pytestmark = pytest.mark.slow

BUCKET = "qwen3vl-models-123456789012-us-east-1"
REVISION = "c" * 40
PREFIX = f"models/Qwen/Qwen3-VL-8B-Instruct/{REVISION}/"
READER = "arn:aws:iam::123456789012:role/qwen3vl/qwen3vl-reader-0123"


def boot(
    tmp_path: Path, name: str, moto: str, **overrides: str
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
            **overrides,
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


def test_first_instance_fills_the_cache_and_the_next_one_streams_from_it(
    aws_env: str, tmp_path: Path
) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)

    first, calls, run = boot(tmp_path, "first", aws_env, MODEL_READER_ROLE_ARN=READER)
    assert run.returncode == 0, run.stdout + run.stderr
    assert any(
        c.startswith("hf download Qwen/Qwen3-VL-8B-Instruct ") and f"--revision {REVISION}" in c
        for c in calls
    )
    assert status(first)["weights"]["source"] == "hub"
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    assert keys == [PREFIX + ".qwen3vl-complete", PREFIX + "model.safetensors"]
    # The first instance's engine reads the downloaded files, with no S3 session at all.
    first_env = engine_file_env(first)
    assert f"--model {first}/nvme/models/Qwen/Qwen3-VL-8B-Instruct " in first_env["ENGINE_ARGS"]
    assert "--load-format runai_streamer --model-loader-extra-config" in first_env["ENGINE_ARGS"]
    assert "MODEL_READER_ROLE_ARN" not in first_env

    second, calls, run = boot(tmp_path, "second", aws_env, MODEL_READER_ROLE_ARN=READER)
    assert run.returncode == 0, run.stdout + run.stderr
    assert not any(c.startswith("hf ") for c in calls)  # no hub traffic at all
    record = status(second)
    assert record["weights"]["source"] == "s3-stream" and record["weights"]["bytes"] == 4096
    assert not list((second / "nvme").rglob("*.safetensors"))  # nothing copied to disk
    env = engine_file_env(second)
    assert f"--model s3://{BUCKET}/{PREFIX.rstrip('/')} " in env["ENGINE_ARGS"]
    assert "--load-format runai_streamer" in env["ENGINE_ARGS"]
    # The unit's ExecStartPre takes a session of this role and writes it where the wrapper reads.
    assert env["MODEL_READER_ROLE_ARN"] == READER
    assert env["ENGINE_S3_CREDENTIALS"] == f"{second}/run/qwen3vl-engine/s3.env"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["VLLM_ASSETS_CACHE"].startswith(f"{second}/var/lib/qwen3vl/engine/")
    assert record["compile_cache"] == {
        "key": record["compile_cache"]["key"],
        "restored": False,
        "reason": "no cache for this key",
    }
    assert record["compile_cache"]["key"].startswith("vllm-")
    # Nothing was uploaded twice: the cache is as the first instance left it.
    versions = s3.list_object_versions(Bucket=BUCKET)["Versions"]
    assert len(versions) == 2


@pytest.mark.parametrize(
    "overrides",
    [{"ENGINE": "sglang", "MODEL_READER_ROLE_ARN": READER}, {}],
    ids=["sglang", "vllm-without-reader-role"],
)
def test_without_an_s3_loader_the_weights_are_pulled_onto_local_disk(
    aws_env: str, tmp_path: Path, overrides: dict[str, str]
) -> None:
    """SGLang has no S3 loader, and a deployment made before the reader role has no session to
    stream with: both pull the filled cache onto the cache disk, still without the hub."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=PREFIX + "model.safetensors", Body=b"\1" * 2048)
    manifest = {"files": {"model.safetensors": 2048}, "bytes": 2048}
    s3.put_object(Bucket=BUCKET, Key=PREFIX + ".qwen3vl-complete", Body=json.dumps(manifest))

    root, calls, run = boot(tmp_path, "puller", aws_env, **overrides)
    assert run.returncode == 0, run.stdout + run.stderr
    assert not any(c.startswith("hf ") for c in calls)
    assert status(root)["weights"]["source"] == "s3"
    model = root / "nvme/models/Qwen/Qwen3-VL-8B-Instruct/model.safetensors"
    assert model.read_bytes() == b"\1" * 2048
    env = engine_file_env(root)
    assert str(model.parent) in env["ENGINE_ARGS"] and "s3://" not in env["ENGINE_ARGS"]
    assert "ENGINE_S3_CREDENTIALS" not in env
