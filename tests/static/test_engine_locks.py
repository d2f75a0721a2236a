"""The engines' hashed locks (userdata/locks, made by scripts/lock-engines.sh): every
distribution the instance installs is pinned and checked by sha256, the locks pin exactly the
versions in versions.env, and a changed lock makes the bootstrap install again."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from qwen3vl_aws.paths import userdata_dir
from qwen3vl_aws.serving.versions import pinned_versions
from test_userdata_scripts import calls, installed_instance, run_bootstrap

LOCKS = userdata_dir() / "locks"
REQUIREMENT = re.compile(r"^([A-Za-z0-9._-]+)(\[[^\]]*\])?==(\S+)")


def pins(lock: Path) -> dict[str, list[str]]:
    """name -> the sha256 digests recorded for it (a requirement and its --hash lines)."""
    found: dict[str, list[str]] = {}
    name = None
    for line in lock.read_text().splitlines():
        if match := REQUIREMENT.match(line):
            name = f"{match[1].lower()}=={match[3]}"
            found[name] = []
        elif line.strip().startswith("--hash=sha256:") and name:
            found[name].append(line.strip().removeprefix("--hash=sha256:").rstrip(" \\"))
    return found


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_every_pin_in_the_lock_carries_a_sha256(engine: str) -> None:
    locked = pins(LOCKS / f"{engine}.txt")
    assert len(locked) > 100, "a lock of the whole environment, not of the engine alone"
    unhashed = [name for name, digests in locked.items() if not digests]
    assert unhashed == []
    assert all(re.fullmatch(r"[0-9a-f]{64}", d) for ds in locked.values() for d in ds)


def test_the_locks_pin_the_versions_in_versions_env() -> None:
    versions = pinned_versions()
    vllm, sglang = pins(LOCKS / "vllm.txt"), pins(LOCKS / "sglang.txt")
    assert f"vllm=={versions['VLLM_VERSION']}" in vllm, "run scripts/lock-engines.sh"
    assert f"runai-model-streamer=={versions['RUNAI_STREAMER_VERSION']}" in vllm
    assert f"sglang=={versions['SGLANG_VERSION']}" in sglang, "run scripts/lock-engines.sh"


@pytest.mark.slow
def test_a_changed_lock_is_installed_again_and_an_unchanged_one_is_not(tmp_path: Path) -> None:
    root, stubs, log, state = installed_instance(tmp_path)
    assert run_bootstrap(root, stubs, log, state).returncode == 0
    lock = root / "opt/qwen3vl/share/locks/vllm.txt"
    installs = f"--require-hashes -r {lock}"

    assert run_bootstrap(root, stubs, log, state).returncode == 0
    assert not any(installs in c for c in calls(log))

    lock.write_text(lock.read_text() + "# relocked\n")
    assert run_bootstrap(root, stubs, log, state).returncode == 0
    assert any(installs in c for c in calls(log))
