"""SSH transport through paramiko, for deployments made with a key pair.

The host key is verified against the deployment's own ``known_hosts`` file and never accepted
silently. On the first connection a key is learnt only when its SHA256 fingerprint comes from a
trusted source: the fingerprints cloud-init prints to the instance's console (read with EC2
GetConsoleOutput, which only the account can see) or one the user passes explicitly after
checking it. A key that differs from the recorded one is refused.
"""

from __future__ import annotations

import base64
import hashlib
import re
import select
import time
from collections.abc import Callable
from pathlib import Path

import paramiko

from ...errors import ChannelError
from .base import CommandResult

FINGERPRINT_RE = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")
_KEY_LINE_RE = re.compile(r"\b((?:ssh|ecdsa|sk)-[\w@.-]+)\s+(AAAA[A-Za-z0-9+/]+={0,3})")
_BLOCK_RE = re.compile(
    r"-----BEGIN SSH HOST KEY (FINGERPRINTS|KEYS)-----(.*?)-----END SSH HOST KEY \1-----",
    re.DOTALL,
)

TrustSource = Callable[[], set[str]]


def fingerprint_of_blob(blob: bytes) -> str:
    """OpenSSH's SHA256 fingerprint of a public key blob (as ``ssh-keygen -l`` prints it)."""
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def console_fingerprints(console_text: str) -> set[str]:
    """Host key fingerprints from cloud-init's blocks in the console output.

    cloud-init prints a ``SSH HOST KEY FINGERPRINTS`` block and a ``SSH HOST KEY KEYS`` block;
    both are read (a key line is turned into its fingerprint). Text outside the blocks is ignored.
    """
    found: set[str] = set()
    for kind, body in _BLOCK_RE.findall(console_text):
        if kind == "FINGERPRINTS":
            found.update(FINGERPRINT_RE.findall(body))
            continue
        for _key_type, b64 in _KEY_LINE_RE.findall(body):
            try:
                found.add(fingerprint_of_blob(base64.b64decode(b64, validate=True)))
            except ValueError:
                continue
    return found


def ec2_console_trust(ec2, instance_id: str) -> TrustSource:
    """A trust source reading the instance's console output (only when first needed)."""

    def read() -> set[str]:
        output = ec2.get_console_output(InstanceId=instance_id, Latest=True).get("Output") or ""
        return console_fingerprints(output)

    return read


class _VerifyFirstUse(paramiko.MissingHostKeyPolicy):
    """Learn an unknown host key only if a trusted source vouches for its fingerprint."""

    def __init__(self, known_hosts: Path, trusted: TrustSource) -> None:
        self._known_hosts = known_hosts
        self._trusted = trusted

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey):
        offered = fingerprint_of_blob(key.asbytes())
        if offered not in self._trusted():
            raise ChannelError(
                f"The SSH host key of {hostname} ({key.get_name()} {offered}) is not known and no "
                "trusted source confirms it (the instance's console output has no matching "
                "cloud-init fingerprint yet). Compare it with `aws ec2 get-console-output "
                "--instance-id ...` and, if it matches, pass --accept-host-key "
                f"{offered}."
            )
        client.get_host_keys().add(hostname, key.get_name(), key)
        self._known_hosts.parent.mkdir(parents=True, exist_ok=True)
        client.save_host_keys(str(self._known_hosts))


class SshChannel:
    """Runs scripts as root on one host over SSH (``sudo -n`` unless the user is root)."""

    def __init__(
        self,
        host: str,
        *,
        user: str,
        known_hosts: Path,
        key_path: str | None = None,
        port: int = 22,
        trusted: TrustSource = set,
        accept_fingerprint: str | None = None,
        connect_timeout: float = 15.0,
    ) -> None:
        if accept_fingerprint is not None and not FINGERPRINT_RE.fullmatch(accept_fingerprint):
            raise ChannelError(
                f"{accept_fingerprint!r} is not an SSH fingerprint: expected SHA256: followed by "
                "43 base64 characters, as `ssh-keygen -lf` prints it."
            )
        self._host = host
        self._port = port
        self._user = user
        self._key_path = key_path
        self._known_hosts = known_hosts
        self._connect_timeout = connect_timeout

        def trust() -> set[str]:
            explicit = {accept_fingerprint} if accept_fingerprint else set()
            return explicit | trusted()

        self._trust = trust

    def run(self, script: str, *, timeout: float = 120.0) -> CommandResult:
        client = self._connect()
        try:
            command = "bash -s" if self._user == "root" else "sudo -n bash -s"
            chan = client.get_transport().open_session()
            chan.exec_command(command)
            chan.sendall(script.encode())
            chan.shutdown_write()
            return _collect(chan, timeout)
        except (paramiko.SSHException, OSError) as exc:
            raise ChannelError(f"SSH session to {self._where} broke: {exc}") from exc
        finally:
            client.close()

    @property
    def _where(self) -> str:
        return f"{self._user}@{self._host}:{self._port}"

    def _connect(self) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        if self._known_hosts.is_file():
            client.load_host_keys(str(self._known_hosts))
        client.set_missing_host_key_policy(_VerifyFirstUse(self._known_hosts, self._trust))
        try:
            client.connect(
                self._host,
                port=self._port,
                username=self._user,
                key_filename=self._key_path,
                look_for_keys=self._key_path is None,
                allow_agent=self._key_path is None,
                timeout=self._connect_timeout,
                banner_timeout=self._connect_timeout,
                auth_timeout=self._connect_timeout,
            )
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise ChannelError(
                f"The SSH host key of {self._host} CHANGED (now {exc.key.get_name()} "
                f"{fingerprint_of_blob(exc.key.asbytes())}); refusing to connect. If you replaced "
                f"the instance, delete its line from {self._known_hosts} and connect again; "
                "otherwise someone may be intercepting the connection."
            ) from exc
        except paramiko.AuthenticationException as exc:
            client.close()
            raise ChannelError(
                f"SSH authentication as {self._user} on {self._host} failed: check the key pair "
                f"({self._key_path or 'ssh-agent / ~/.ssh'}) matches the instance's."
            ) from exc
        except ChannelError:
            client.close()  # the host key policy refused an unconfirmed key
            raise
        except (paramiko.SSHException, OSError) as exc:
            client.close()
            raise ChannelError(
                f"Cannot open SSH to {self._where}: {exc}. Check the instance is running and its "
                "security group allows port 22 from your address."
            ) from exc
        return client


def _collect(chan: paramiko.Channel, timeout: float) -> CommandResult:
    """Read stdout and stderr as they come until both end, within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    out: list[bytes] = []
    err: list[bytes] = []
    while True:
        while chan.recv_ready():
            out.append(chan.recv(65536))
        while chan.recv_stderr_ready():
            err.append(chan.recv_stderr(65536))
        if chan.exit_status_ready() and chan.eof_received:
            if not chan.recv_ready() and not chan.recv_stderr_ready():
                break
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            chan.close()
            raise ChannelError(f"The command did not finish within {timeout:.0f} s over SSH.")
        select.select([chan], [], [], min(remaining, 0.1))
    return CommandResult(
        exit_code=chan.recv_exit_status(),
        stdout=b"".join(out).decode(errors="replace"),
        stderr=b"".join(err).decode(errors="replace"),
    )
