"""The SSH transport against a real OpenSSH server on loopback, started with its own config.

Needs Debian's openssh-server (``apt-get install openssh-server``) and root (the channel runs
scripts as root: directly when the SSH user is root, else through ``sudo -n``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from qwen3vl_aws.errors import ChannelError
from qwen3vl_aws.instance.channel.ssh import SshChannel, console_fingerprints

from rig.net import free_port

pytestmark = [pytest.mark.node, pytest.mark.slow]

SSHD = "/usr/sbin/sshd"


def require_tools() -> None:
    missing = [tool for tool in (SSHD, "ssh-keygen") if not shutil.which(tool)]
    if missing:
        pytest.fail(f"{missing} not found: install them with `apt-get install openssh-server`.")
    if os.geteuid() != 0:
        pytest.fail("The SSH channel test logs in as root to run scripts as root: run it as root.")


def keygen(path: Path) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(path)], check=True
    )
    return path


def cloud_init_console(host_pub: Path) -> str:
    """Console output shaped as cloud-init's write-ssh-key-fingerprints prints it."""
    listed = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(host_pub)], capture_output=True, text=True, check=True
    ).stdout.strip()
    return "\n".join(
        [
            "[   12.345678] cloud-init[812]: Cloud-init v. 24.1 running 'modules:final'",
            "<14>Nov 24 21:00:01 cloud-init: ####################################################",
            "<14>Nov 24 21:00:01 cloud-init: -----BEGIN SSH HOST KEY FINGERPRINTS-----",
            f"<14>Nov 24 21:00:01 cloud-init: {listed}",
            "<14>Nov 24 21:00:01 cloud-init: -----END SSH HOST KEY FINGERPRINTS-----",
            "-----BEGIN SSH HOST KEY KEYS-----",
            host_pub.read_text().strip(),
            "-----END SSH HOST KEY KEYS-----",
        ]
    )


class Sshd:
    """One sshd process (foreground, logging to a file) with its own host key and port."""

    def __init__(self, workdir: Path, client_pub: Path, port: int | None = None) -> None:
        require_tools()
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
        self.dir = workdir
        self.dir.mkdir(parents=True)
        self.host_key = keygen(self.dir / "ssh_host_ed25519_key")
        self.port = port or free_port()
        (self.dir / "authorized_keys").write_text(client_pub.read_text())
        config = self.dir / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.host_key}\n"
            f"PidFile {self.dir / 'sshd.pid'}\nAuthorizedKeysFile {self.dir / 'authorized_keys'}\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            "PermitRootLogin prohibit-password\nStrictModes no\nAllowUsers root\n"
        )
        self.log = self.dir / "sshd.log"
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("w"),
        )
        self._wait_listening()

    def _wait_listening(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"sshd exited: {self.log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        pytest.fail(
            f"sshd did not listen on {self.port} within {timeout} s: {self.log.read_text()}"
        )

    @property
    def console(self) -> str:
        return cloud_init_console(self.host_key.with_suffix(".pub"))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def client_key(tmp_path: Path) -> Path:
    return keygen(tmp_path / "client_ed25519")


@pytest.fixture
def start_sshd(tmp_path: Path, client_key: Path) -> Iterator[Callable[..., Sshd]]:
    started: list[Sshd] = []

    def start(port: int | None = None) -> Sshd:
        server = Sshd(tmp_path / f"sshd{len(started)}", client_key.with_suffix(".pub"), port)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.stop()


def channel(server: Sshd, known_hosts: Path, client_key: Path, trusted=set, **kwargs) -> SshChannel:
    return SshChannel(
        "127.0.0.1",
        port=server.port,
        user="root",
        key_path=str(client_key),
        known_hosts=known_hosts,
        trusted=trusted,
        **kwargs,
    )


def test_unknown_host_key_without_a_trusted_source_is_refused(start_sshd, client_key, tmp_path):
    server = start_sshd()
    known_hosts = tmp_path / "state" / "known_hosts"

    with pytest.raises(ChannelError, match="is not known and no trusted source confirms it"):
        channel(server, known_hosts, client_key).run("echo should-not-run")

    assert not known_hosts.exists()


def test_key_learnt_from_console_then_command_output_and_exit_code_come_back(
    start_sshd, client_key, tmp_path
):
    server = start_sshd()
    known_hosts = tmp_path / "state" / "known_hosts"
    assert len(console_fingerprints(server.console)) == 1

    result = channel(
        server, known_hosts, client_key, trusted=lambda: console_fingerprints(server.console)
    ).run('echo "to stdout as $(id -un)"\necho "to stderr" >&2\nexit 3')

    assert (result.exit_code, result.stdout, result.stderr) == (
        3,
        "to stdout as root\n",
        "to stderr\n",
    )
    assert f"[127.0.0.1]:{server.port}" in known_hosts.read_text()

    def must_not_be_asked() -> set[str]:
        raise AssertionError("a recorded host key needs no trusted source")

    big = channel(server, known_hosts, client_key, trusted=must_not_be_asked).run(
        "head -c 300000 /dev/zero | tr '\\0' x; echo; cat <<'EOF'\nheredoc line\nEOF"
    )
    assert big.ok and big.stdout == "x" * 300_000 + "\nheredoc line\n"


def test_explicit_fingerprint_is_trusted_and_a_wrong_one_is_not(start_sshd, client_key, tmp_path):
    server = start_sshd()
    (real,) = console_fingerprints(server.console)
    wrong = "SHA256:" + "A" * 43

    with pytest.raises(ChannelError, match="is not known"):
        channel(server, tmp_path / "kh1", client_key, accept_fingerprint=wrong).run("true")
    result = channel(server, tmp_path / "kh2", client_key, accept_fingerprint=real).run("echo ok")

    assert result.stdout == "ok\n"


def test_a_changed_host_key_is_refused(start_sshd, client_key, tmp_path):
    first = start_sshd()
    known_hosts = tmp_path / "known_hosts"
    channel(
        first,
        known_hosts,
        client_key,
        accept_fingerprint=None,
        trusted=lambda: console_fingerprints(first.console),
    ).run("true")
    first.stop()
    # The "same" host comes back on the same address with a different key (a new instance, or
    # someone in the middle); even a trust source vouching for the new key must not override.
    second = start_sshd(port=first.port)
    recorded = known_hosts.read_text()

    with pytest.raises(ChannelError, match=r"CHANGED.*refusing to connect"):
        channel(
            second, known_hosts, client_key, trusted=lambda: console_fingerprints(second.console)
        ).run("echo should-not-run")
    assert known_hosts.read_text() == recorded


def test_a_command_running_past_its_timeout_is_cut_off(start_sshd, client_key, tmp_path):
    server = start_sshd()
    (real,) = console_fingerprints(server.console)

    with pytest.raises(ChannelError, match="did not finish within 1 s"):
        channel(server, tmp_path / "kh", client_key, accept_fingerprint=real).run(
            "sleep 30", timeout=1
        )
