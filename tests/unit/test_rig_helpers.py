"""The rig's small helpers: user-data installed as cloud-init would, signals held over a start,
the fleet's failures grouped for a report."""

from __future__ import annotations

import gzip
import signal
import stat
from pathlib import Path

import pytest

from rig.cloudinit import UserDataError, cloud_config, install_write_files, read_env_file
from rig.fleet import failure_groups
from rig.procs import held_signals

CLOUD_CONFIG = """#cloud-config
write_files:
  - path: /etc/qwen3vl/deploy.env
    permissions: "0644"
    content: |
      ENGINE_ARGS='--max-model-len 4608 --mm-processor-kwargs {"a":1}'
      PORT='443'
  - path: /opt/qwen3vl/bin/qwen3vl-bootstrap
    permissions: "0755"
    content: |
      #!/usr/bin/env bash
      echo hi
runcmd:
  - [systemctl, daemon-reload]
"""


@pytest.mark.parametrize("encode", [str.encode, lambda text: gzip.compress(text.encode())])
def test_user_data_files_land_under_the_root_with_their_modes(tmp_path: Path, encode) -> None:
    written = install_write_files(tmp_path, cloud_config(encode(CLOUD_CONFIG)))

    assert written == [
        tmp_path / "etc/qwen3vl/deploy.env",
        tmp_path / "opt/qwen3vl/bin/qwen3vl-bootstrap",
    ]
    assert stat.S_IMODE(written[1].stat().st_mode) == 0o755
    assert stat.S_IMODE(written[0].stat().st_mode) == 0o644
    assert written[1].read_text() == "#!/usr/bin/env bash\necho hi\n"
    assert read_env_file(written[0]) == {
        "ENGINE_ARGS": '--max-model-len 4608 --mm-processor-kwargs {"a":1}',
        "PORT": "443",
    }


@pytest.mark.parametrize(
    ("user_data", "message"),
    [
        (b"#!/bin/bash\necho not cloud-config\n", "not a #cloud-config"),
        (b"#cloud-config\nruncmd: []\n", "no write_files"),
    ],
)
def test_other_user_data_is_refused(tmp_path: Path, user_data: bytes, message: str) -> None:
    with pytest.raises(UserDataError, match=message):
        install_write_files(tmp_path, cloud_config(user_data))


def test_ctrl_c_while_held_arrives_after_the_block() -> None:
    reached_end_of_block = False
    with pytest.raises(KeyboardInterrupt), held_signals():
        signal.raise_signal(signal.SIGINT)
        reached_end_of_block = True
    assert reached_end_of_block
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_fleet_failures_are_grouped_by_replica_and_status() -> None:
    t0 = 100.0
    failures = [
        (150.0, 150.5, "r2", 503),
        (140.0, 140.2, "r2", 500),
        (141.0, 152.0, "r2", 503),
        (145.0, 145.1, "?", "ReadTimeout"),
        (149.0, 149.5, "r2", 503),
    ]
    assert failure_groups(failures, t0) == [
        "1 x r2 -> 500, t=+40.0..40.2s",
        "3 x r2 -> 503, t=+41.0..52.0s",
        "1 x ? -> ReadTimeout, t=+45.0..45.1s",
    ]
    assert failure_groups([], t0) == []
