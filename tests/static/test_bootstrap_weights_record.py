"""What the bootstrap records for the timeline and for status/health: where the weights came
from, and the first start kept across later boots (the real script, system commands stubbed)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from test_userdata_scripts import installed_instance, read_status, run_bootstrap

pytestmark = pytest.mark.slow


def status_json(root: Path) -> dict:
    return json.loads((root / "var/lib/qwen3vl/status.json").read_text())


def test_weights_source_is_recorded_and_the_first_start_survives_a_reboot(tmp_path: Path):
    root, stubs, log, state = installed_instance(tmp_path)
    first = run_bootstrap(root, stubs, log, state)
    assert first.returncode == 0, first.stdout + first.stderr
    after_first = status_json(root)
    assert after_first["weights"]["source"] == "hub"
    assert after_first["weights"]["bytes"] == 4096  # what the stubbed download wrote
    assert read_status(root).weights == after_first["weights"]
    assert "first_start" not in after_first
    assert after_first["booted_at"] <= after_first["stages"][0]["started_at"]

    second = run_bootstrap(root, stubs, log, state)  # the next boot
    assert second.returncode == 0, second.stdout + second.stderr
    after_second = status_json(root)
    assert after_second["weights"] == {"source": "local-disk", "bytes": 4096, "seconds": 0}
    kept = after_second["first_start"]
    assert kept["stages"] == after_first["stages"]
    assert kept["weights"] == after_first["weights"]

    third = run_bootstrap(root, stubs, log, state)
    assert third.returncode == 0
    assert status_json(root)["first_start"] == kept  # the first, not the previous, start


def test_seal_takes_the_secrets_off_the_disk_and_unseal_puts_them_back(tmp_path: Path):
    """What `bake` relies on: no key file, TLS key or instance record in the image."""
    root, stubs, log, state = installed_instance(tmp_path)
    assert run_bootstrap(root, stubs, log, state).returncode == 0
    secret_files = [
        root / "etc/qwen3vl/keys.conf",
        root / "etc/qwen3vl/tls/key.pem",
        root / "var/lib/qwen3vl/status.json",
        root / "var/log/qwen3vl/bootstrap.log",
    ]
    before = {p: p.read_bytes() for p in secret_files}
    assert before[root / "etc/qwen3vl/keys.conf"]  # the stubbed key sync wrote a key
    env = {"PATH": f"{stubs}:/usr/bin:/bin", "QWEN3VL_ROOT": str(root), "HOME": str(root)}
    bootstrap = str(root / "opt/qwen3vl/bin/qwen3vl-bootstrap")

    sealed = subprocess.run([bootstrap, "seal"], env=env, capture_output=True, text=True)
    assert sealed.returncode == 0, sealed.stderr
    on_disk = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert not [p for p in secret_files if str(p.relative_to(root)) in on_disk]
    assert len(list((root / "run/qwen3vl-sealed").iterdir())) == len(secret_files)
    assert (root / "etc/qwen3vl/tls/cert.pem").is_file()  # public: stays

    unsealed = subprocess.run([bootstrap, "unseal"], env=env, capture_output=True, text=True)
    assert unsealed.returncode == 0, unsealed.stderr
    assert {p: p.read_bytes() for p in secret_files} == before
