"""The compile cache in S3: keyed by engine version, GPU type and a hash of the engine flags.

Saved by the instance's qwen3vl-modelcache after the first ready, restored before the engine
starts; any change of version, GPU or flags is another key, and a key never restores another's
files (its manifest must name it).
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import boto3
import pytest

from rig import modelcache

BUCKET = "qwen3vl-models-123456789012-us-east-1"
URL = f"s3://{BUCKET}/compile-cache"
FLAGS = "--max-model-len 5120 --max-num-batched-tokens 4096 --gpu-memory-utilization 0.92"
SAVED = ("vllm", "0.32.0", "NVIDIA A10G", FLAGS)


@pytest.fixture
def s3(aws_env: str) -> Any:
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def script() -> Any:
    return modelcache.load()


@pytest.fixture
def saved(s3: Any, script: Any, tmp_path: Path) -> str:
    compiled = tmp_path / "compiled" / "torch_compile_cache" / "abc"
    compiled.mkdir(parents=True)
    (compiled / "artifact.bin").write_bytes(b"inductor output")
    key = script.compile_key(*SAVED)
    assert script.compile_save(s3, tmp_path / "compiled", URL, key)["saved"] is True
    return key


def test_the_same_version_gpu_and_flags_restore_the_cache(
    s3: Any, script: Any, saved: str, tmp_path: Path
) -> None:
    target = tmp_path / "restored"
    result = script.compile_restore(s3, URL, script.compile_key(*SAVED), target)
    assert result["restored"] is True
    restored = target / "torch_compile_cache" / "abc" / "artifact.bin"
    assert restored.read_bytes() == b"inductor output"


@pytest.mark.parametrize(
    "changed",
    [
        ("vllm", "0.32.1", "NVIDIA A10G", FLAGS),
        ("sglang", "0.32.0", "NVIDIA A10G", FLAGS),
        ("vllm", "0.32.0", "NVIDIA L4", FLAGS),
        ("vllm", "0.32.0", "NVIDIA A10G", FLAGS.replace("5120", "8192")),
        ("vllm", "0.32.0", "NVIDIA A10G", FLAGS + " --kv-cache-dtype fp8"),
    ],
    ids=["version", "engine", "gpu", "flag-value", "added-flag"],
)
def test_any_change_never_restores(
    s3: Any, script: Any, saved: str, tmp_path: Path, changed: tuple[str, ...]
) -> None:
    key = script.compile_key(*changed)
    assert key != saved
    target = tmp_path / "restored"
    result = script.compile_restore(s3, URL, key, target)
    assert result == {"key": key, "restored": False, "reason": "no cache for this key"}
    assert not target.exists()


def test_whitespace_alone_is_not_a_change(script: Any) -> None:
    assert script.compile_key(*SAVED[:3], "  " + FLAGS.replace(" ", "   ") + "\n") == (
        script.compile_key(*SAVED)
    )


def test_an_object_whose_manifest_names_another_key_is_not_restored(
    s3: Any, script: Any, saved: str, tmp_path: Path
) -> None:
    """A cache copied under the wrong key (by hand, or a bug) is refused, not used."""
    other = script.compile_key("vllm", "0.32.0", "NVIDIA L4", FLAGS)
    body = s3.get_object(Bucket=BUCKET, Key=f"compile-cache/{saved}.tar.gz")["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=f"compile-cache/{other}.tar.gz", Body=body)
    target = tmp_path / "restored"
    result = script.compile_restore(s3, URL, other, target)
    assert result == {"key": other, "restored": False, "reason": f"manifest names {saved}"}
    assert not target.exists()


def test_a_second_save_of_the_same_key_writes_nothing(
    s3: Any, script: Any, saved: str, tmp_path: Path
) -> None:
    (tmp_path / "later").mkdir()
    (tmp_path / "later" / "other.bin").write_bytes(b"different")
    result = script.compile_save(s3, tmp_path / "later", URL, saved)
    assert result == {"key": saved, "saved": False, "reason": "already cached"}
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix="compile-cache/")["Versions"]
    assert len(versions) == 1


def test_members_outside_the_cache_are_not_extracted(s3: Any, script: Any, tmp_path: Path) -> None:
    key = script.compile_key(*SAVED)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in (
            ("qwen3vl-compile-cache.json", json.dumps({"key": key}).encode()),
            ("cache/ok.bin", b"ok"),
            ("elsewhere.bin", b"not ours"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    s3.put_object(Bucket=BUCKET, Key=f"compile-cache/{key}.tar.gz", Body=buffer.getvalue())
    target = tmp_path / "restored"
    assert script.compile_restore(s3, URL, key, target)["restored"] is True
    assert sorted(p.name for p in target.rglob("*")) == ["ok.bin"]
