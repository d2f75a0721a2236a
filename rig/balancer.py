"""HAProxy standing in for the fleet's Application Load Balancer, configured from the target
group the Terraform module builds (terraform/fleet.tf): the same health check (GET /health over
HTTPS, interval, thresholds, timeout), least-outstanding routing (HAProxy: leastconn), HTTPS to
the gateways without verifying their certificates (as an ALB does), the load balancer's idle
timeout, and draining a target (ALB deregistration = HAProxy's "drain" state: no new requests,
the ones in flight finish). The listener presents a certificate made the way `apply` makes the
ALB's, which clients pin. Every response carries ``X-Served-By`` (the replica's name) so the
fleet bench can tell which replica served what.
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from qwen3vl_aws.fleet.certificate import make_certificate
from qwen3vl_aws.paths import terraform_dir

from .net import free_port
from .procs import held_signals


@dataclass(frozen=True)
class TargetGroup:
    """The settings of the module's target group and load balancer that HAProxy reproduces."""

    health_path: str
    interval_s: int
    timeout_s: int
    healthy_threshold: int
    unhealthy_threshold: int
    algorithm: str
    idle_timeout_s: int


def _block(text: str, header: str) -> str:
    start = text.index(header)
    depth, i = 0, text.index("{", start)
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i : j + 1]
    raise ValueError(f"unbalanced block {header}")


def _setting(block: str, name: str) -> str:
    match = re.search(rf"^\s*{name}\s*=\s*\"?([^\"\n]+)\"?\s*$", block, re.M)
    if match is None:
        raise ValueError(f"{name} not found")
    return match.group(1).strip()


def target_group() -> TargetGroup:
    """Read the target group's settings from terraform/fleet.tf (and the idle timeout's default
    from fleet_variables.tf), so the stand-in follows the module rather than a copy."""
    fleet = (terraform_dir() / "fleet.tf").read_text()
    variables = (terraform_dir() / "fleet_variables.tf").read_text()
    group = _block(fleet, 'resource "aws_lb_target_group" "this"')
    health = _block(group, "health_check")
    idle = _block(variables, 'variable "idle_timeout_seconds"')
    return TargetGroup(
        health_path=_setting(health, "path"),
        interval_s=int(_setting(health, "interval")),
        timeout_s=int(_setting(health, "timeout")),
        healthy_threshold=int(_setting(health, "healthy_threshold")),
        unhealthy_threshold=int(_setting(health, "unhealthy_threshold")),
        algorithm=_setting(group, "load_balancing_algorithm_type"),
        idle_timeout_s=int(_setting(idle, "default")),
    )


# ALB's least_outstanding_requests routes to the target with the fewest requests in flight;
# HAProxy's leastconn does the same with connections (one request per connection here).
ALGORITHMS = {"least_outstanding_requests": "leastconn", "round_robin": "roundrobin"}


def render_config(
    tg: TargetGroup, port: int, pem: Path, socket_path: Path, servers: Mapping[str, int]
) -> str:
    lines = [
        "global",
        f"    stats socket {socket_path} mode 600 level admin",
        "    log stderr format raw local0 warning",
        "defaults",
        "    mode http",
        "    log global",
        "    timeout connect 5s",
        f"    timeout client {tg.idle_timeout_s}s",
        f"    timeout server {tg.idle_timeout_s}s",
        "frontend listener",
        f"    bind 127.0.0.1:{port} ssl crt {pem}",
        "    default_backend gateways",
        "backend gateways",
        f"    balance {ALGORITHMS[tg.algorithm]}",
        f"    option httpchk GET {tg.health_path}",
        "    http-check expect status 200",
        f"    timeout check {tg.timeout_s}s",
        "    http-response set-header X-Served-By %s",
        f"    default-server check ssl verify none inter {tg.interval_s}s"
        f" fall {tg.unhealthy_threshold} rise {tg.healthy_threshold}",
    ]
    lines += [f"    server {name} 127.0.0.1:{p}" for name, p in servers.items()]
    return "\n".join(lines) + "\n"


@dataclass
class Balancer:
    """A running HAProxy: ``base_url`` (https://localhost:port), ``cert_path`` to pin."""

    directory: Path
    port: int
    target_group: TargetGroup
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"https://localhost:{self.port}"

    @property
    def cert_path(self) -> Path:
        return self.directory / "listener-cert.pem"

    @property
    def socket_path(self) -> Path:
        return self.directory / "admin.sock"

    def command(self, line: str) -> str:
        """One command on HAProxy's admin socket (``set server gateways/r1 state drain``...)."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(self.socket_path))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def status(self) -> dict[str, str]:
        """Each server's state as HAProxy sees it: UP, DOWN, DRAIN, ..."""
        lines = self.command("show stat").splitlines()
        header = lines[0].lstrip("# ").split(",")
        found = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(","), strict=False))
            if row.get("pxname") == "gateways" and row.get("svname") not in ("BACKEND", None):
                found[row["svname"]] = row["status"]
        return found

    def drain(self, server: str) -> None:
        """What deregistering a target does on an ALB: no new requests, in-flight ones finish."""
        self.command(f"set server gateways/{server} state drain")

    def ready(self, server: str) -> None:
        self.command(f"set server gateways/{server} state ready")

    def wait_status(self, server: str, wanted: str, timeout: float) -> float:
        """Seconds until ``server`` shows ``wanted`` (UP, DOWN, ...)."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.status().get(server, "").startswith(wanted):
                return time.monotonic() - start
            time.sleep(0.2)
        raise TimeoutError(f"{server} not {wanted} within {timeout:.0f} s: {self.status()}")


@contextmanager
def run_balancer(directory: Path, servers: Mapping[str, int]) -> Iterator[Balancer]:
    """HAProxy in front of ``servers`` (name -> gateway port on 127.0.0.1); always stops."""
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(haproxy).exists():
        raise RuntimeError("`haproxy` is missing: run scripts/setup-system.sh")
    directory.mkdir(parents=True, exist_ok=True)
    balancer = Balancer(directory, free_port(), target_group())
    certificate = make_certificate("localhost")
    balancer.cert_path.write_bytes(certificate.cert_pem)
    pem = directory / "listener.pem"
    pem.write_bytes(certificate.cert_pem + certificate.key_pem)
    pem.chmod(0o600)
    config = directory / "haproxy.cfg"
    config.write_text(
        render_config(balancer.target_group, balancer.port, pem, balancer.socket_path, servers)
    )
    subprocess.run([haproxy, "-c", "-q", "-f", str(config)], check=True)
    log = directory / "haproxy.log"
    with held_signals(), log.open("wb") as out:
        balancer.process = subprocess.Popen(
            [haproxy, "-db", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 15
        while not balancer.socket_path.exists():
            if balancer.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"haproxy did not start: {log.read_text()}")
            time.sleep(0.1)
        yield balancer
    finally:
        balancer.process.send_signal(signal.SIGUSR1)  # soft stop: finish what is in flight
        try:
            balancer.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            balancer.process.kill()
            balancer.process.wait()
